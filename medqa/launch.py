"""How a recipe is launched: `accelerate launch` with one of the configs in recipes/accelerate/.

one GPU                      single_gpu.yaml
GPUS=N (DDP)                 multi_gpu.yaml       --num_processes N x NODES
GPUS=N DIST=zero2            deepspeed_zero2.yaml --num_processes N x NODES, recipe key deepspeed: zero2.json
NODES=M NODE_RANK=r MAIN_ADDR=host [MAIN_PORT=29500]   the same on each of M machines
no CUDA                      one CPU process (CPU-safe recipes only)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medqa.errors import UserError

ACCELERATE_DIR = Path(__file__).resolve().parents[1] / "recipes" / "accelerate"
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


def accelerate_args(cfg: dict, topo: Topology, cuda_devices: int, config: Path | None = None) -> list[str]:
    """`accelerate launch` options for this topology; sets cfg["deepspeed"] for ZeRO-2 (Axolotl's switch)."""
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
        ds_json = Path(cfg.get("deepspeed") or ZERO2_JSON).resolve()
        if not ds_json.is_file():
            raise UserError(ds_json, "no such DeepSpeed config")
        cfg["deepspeed"] = str(ds_json)
    if config is None:
        config = CONFIGS["zero2" if zero2 else "ddp" if gpus * topo.nodes > 1 else "single"]
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
