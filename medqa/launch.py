"""How a recipe is launched: `accelerate launch` with one of the configs in recipes/accelerate/, and the
training process watched for running out of GPU memory.

one GPU                      single_gpu.yaml
GPUS=N (DDP)                 multi_gpu.yaml       --num_processes N x NODES
GPUS=N DIST=zero2            deepspeed_zero2.yaml --num_processes N x NODES, recipe key deepspeed: zero2.json
NODES=M NODE_RANK=r MAIN_ADDR=host [MAIN_PORT=29500]   the same on each of M machines
no CUDA                      one CPU process (CPU-safe recipes only)
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from medqa import paths, quiet
from medqa.checks import cuda_needs, for_cpu
from medqa.errors import UserError
from medqa.recipe import apply_overrides, is_run_recipe, load_recipe, load_run_recipe, setting, validate

ACCELERATE_DIR = paths.ACCELERATE
CONFIGS = {
    "single": ACCELERATE_DIR / "single_gpu.yaml",
    "ddp": ACCELERATE_DIR / "multi_gpu.yaml",
    "zero2": ACCELERATE_DIR / "deepspeed_zero2.yaml",
}
ZERO2_JSON = ACCELERATE_DIR / "zero2.json"
CPU_FLAGS = ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


@dataclass
class Topology:
    gpus: int | None = None  # GPUs on each machine; None: 1 where CUDA is present
    dist: str = "ddp"  # ddp | zero2 (several GPUs), zero2 also on one
    nodes: int = 1
    node_rank: int = 0
    main_address: str | None = None
    main_port: int = 29500


def accelerate_args(
    cfg: dict, topo: Topology, cuda_devices: int, config: Path | None = None, configs: Path = ACCELERATE_DIR
) -> list[str]:
    """`accelerate launch` options for this topology, with the configs in `configs` (or `config`, one of the
    user's own); sets cfg["deepspeed"] for ZeRO-2 (Axolotl's switch)."""
    if topo.dist not in ("ddp", "zero2"):
        raise UserError("DIST", f"unknown value {topo.dist!r}: use ddp or zero2")
    if topo.nodes < 1 or not 0 <= topo.node_rank < topo.nodes:
        raise UserError("NODE_RANK", f"must be 0..{topo.nodes - 1} for NODES={topo.nodes}, got {topo.node_rank}")
    zero2 = topo.dist == "zero2" or bool(cfg.get("deepspeed"))
    if cuda_devices == 0:
        if (topo.gpus or 1) > 1 or topo.nodes > 1 or zero2:
            raise UserError("GPUS", "several GPUs, machines or DeepSpeed need CUDA, and this machine has none")
        return ["--config_file", str(config)] if config else list(CPU_FLAGS)
    gpus = topo.gpus or 1
    if gpus < 1 or gpus > cuda_devices:
        raise UserError("GPUS", f"asked for {gpus} GPUs, this machine has {cuda_devices}")
    if zero2:
        ds_json = Path(cfg.get("deepspeed") or configs / ZERO2_JSON.name).resolve()
        if not ds_json.is_file():
            raise UserError(ds_json, "no such DeepSpeed config")
        cfg["deepspeed"] = str(ds_json)
    if config is None:
        config = configs / CONFIGS["zero2" if zero2 else "ddp" if gpus * topo.nodes > 1 else "single"].name
    args = ["--config_file", str(config)]
    if zero2:
        args += ["--deepspeed_config_file", cfg["deepspeed"]]
    if zero2 or gpus * topo.nodes > 1:
        args += ["--num_processes", str(gpus * topo.nodes), "--num_machines", str(topo.nodes)]
    if topo.nodes > 1:
        if not topo.main_address:
            raise UserError("MAIN_ADDR", f"NODES={topo.nodes} needs the address of the machine with NODE_RANK=0")
        args += [
            "--machine_rank",
            str(topo.node_rank),
            "--main_process_ip",
            topo.main_address,
            "--main_process_port",
            str(topo.main_port),
        ]
    return args


@dataclass
class Resolved:
    recipe: dict  # the recipe that runs, validated: what RUN/recipe.yml holds
    accelerate: list[str]  # `accelerate launch`'s options ([] where nothing is launched)
    changed: list[str]  # what the machine changed in it (no CUDA: bf16 and the LoRA kernels off)


def resolve(
    recipe: str | Path,
    *,
    data: Path | None = None,
    output_dir: Path | None = None,
    overrides: list[str] | tuple = (),
    gpus: int | None = None,
    topology: Topology | None = None,
    accelerate_config: Path | None = None,
) -> Resolved:
    """The one step from a recipe file to the recipe that runs: the file read (a run's recipe.yml as such), --data,
    --output-dir and --set applied, made to fit the machine (`gpus`: its CUDA devices, 0 for none, where the recipe
    is set for a GPU and a CPU turns bf16 and the Triton LoRA kernels off; None: as written, for a GPU, as make plan
    reads it) and the launch mode (`topology`: one GPU, DDP or ZeRO-2 on one machine or several, which sets the
    DeepSpeed key; None: nothing launched), then validated once with Axolotl's schema. A recipe that needs CUDA on a
    machine without it is refused in one line."""
    path = Path(recipe)
    cfg = (load_run_recipe if path.is_file() and is_run_recipe(path) else load_recipe)(path)
    cfg = apply_overrides(cfg, data, output_dir, list(overrides))
    changed: list[str] = []
    if gpus == 0:
        cfg, changed = for_cpu(cfg)
    accelerate = accelerate_args(cfg, topology, gpus or 0, accelerate_config) if topology is not None else []
    validate(cfg, str(recipe))
    needs = cuda_needs(cfg) if gpus == 0 else []
    if needs:
        raise UserError(
            recipe,
            f"needs a CUDA GPU ({', '.join(needs)}) and this machine has none; "
            f"on a CPU run `make demo` or `make finetune RECIPE={paths.RECIPE}`",
        )
    return Resolved(cfg, accelerate, changed)


OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError")


def oom_advice(cfg: dict) -> str:
    packing = "on" if cfg.get("sample_packing") else "off (turn it on)"
    return (
        f"the GPU ran out of memory; lower sequence_len (now {cfg.get('sequence_len')}) or micro_batch_size "
        f"(now {cfg.get('micro_batch_size')}, raise gradient_accumulation_steps to keep the batch), keep "
        f"gradient_checkpointing on (now {bool(cfg.get('gradient_checkpointing'))}); sample packing is {packing}"
    )


DISK_MARKERS = ("No space left on device", "Disk quota exceeded", "Read-only file system")


def train(launch: list[str], cfg: dict, recipe: Path) -> int:
    """Run Axolotl, passing its output through; an out-of-memory death ends with one line naming the levers, and a
    disk that fills (or turns read-only) under a checkpoint with one line naming the folder, the checkpoint it lost
    (removed: half-written) and the newest whole one (a rerun resumes from it), without the traceback."""
    oom = disk = False
    held: list[str] = []  # a traceback, shown only if it is not one of those
    env = {**os.environ, **quiet.child_env()}
    with subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as proc:
        # newline="": a progress bar's "\r" updates pass through as they are, redrawn in place, not one line each
        for line in io.TextIOWrapper(proc.stdout, encoding="utf-8", errors="replace", newline=""):
            oom = oom or any(m in line for m in OOM_MARKERS)
            disk = disk or any(m in line for m in DISK_MARKERS)
            if held or "Traceback (most recent call last)" in line:
                held.append(line)
            elif not quiet.noise(line):  # known third-party noise (VERBOSE=1 shows it)
                sys.stdout.write(line)
    if proc.returncode != 0 and disk:
        print(f"error: {disk_advice(cfg)}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(held))
    if proc.returncode != 0 and oom:
        print(f"error: {recipe}: {oom_advice(cfg)}", file=sys.stderr)
        return 2
    return proc.returncode


def disk_advice(cfg: dict) -> str:
    """After a run's disk filled: its half-written checkpoints removed, and what is left to resume from."""
    import shutil

    from medqa.fsutil import free_bytes, size_text
    from medqa.integrity import checkpoint_problem
    from medqa.runs import checkpoints

    out = Path(setting(cfg, "output_dir"))
    lost = [c for c in checkpoints(out) if checkpoint_problem(c)]
    for folder in lost:
        shutil.rmtree(folder, ignore_errors=True)
    whole = [c for c in checkpoints(out) if not checkpoint_problem(c)]
    return (
        f"{out}: the disk is full (or read-only): "
        + (f"{', '.join(c.name for c in lost)} could not be written and is removed; " if lost else
           "the run could not write its files; ")
        + (f"the newest whole checkpoint is {whole[-1].name}" if whole else "no checkpoint was saved")
        + f"; {size_text(free_bytes(out))} free. Free some space and run the same command again"
        + (" (it resumes)" if whole else "")
    )  # fmt: skip
