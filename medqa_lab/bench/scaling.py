"""The multi-GPU check of `make scale-check`: the recipe on 1 GPU, DDP and ZeRO-2, each run metered by
medqa_lab.bench.meter.Meter, then resumed as after a crash; the report rows and the markdown table.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from medqa.recipe import load_recipe
from medqa.runs import ADAPTER_WEIGHTS, complete_checkpoints, finished
from medqa_lab.bench.report import write_section


def run_folder(work: Path, name: str) -> Path:
    return work / re.sub(r"\W+", "-", name).strip("-").lower()


RUNS = ("1gpu", "ddp", "zero2", "nodes")  # scale-check's runs, in order
# two machines simulated on one: each process sees one GPU and talks to the other through sockets, as across a
# network (no shared memory, no peer-to-peer copies between the GPUs)
TWO_MACHINES_ENV = {"NCCL_P2P_DISABLE": "1", "NCCL_SHM_DISABLE": "1"}


def finetune_command(
    recipe: Path, model: Path, data: Path, run: Path, work: Path, steps: int, save_steps: int, extra: list[str]
) -> list[str]:
    """make finetune's command line (medqa.cli.finetune) for the recipe, made short and metered."""
    overrides = {
        "base_model": str(model),
        "datasets": [{**d, "path": str(data / "train.jsonl")} for d in load_recipe(recipe)["datasets"]],
        "test_datasets": None,  # Axolotl evaluates at step 0 when there is an eval set: not what is measured here
        "output_dir": str(run),
        "dataset_prepared_path": str(work / "prepared"),
        "max_steps": steps,
        "save_steps": save_steps,
        "logging_steps": 1,
        "plugins": [*load_recipe(recipe)["plugins"], "medqa_lab.bench.meter.BenchPlugin"],
    }
    cmd = [sys.executable, "-m", "medqa.cli.finetune", str(recipe), *extra]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]  # JSON is YAML
    return cmd


def finetune(
    run: Path,
    recipe: Path,
    model: Path,
    data: Path,
    work: Path,
    steps: int,
    save_steps: int,
    extra: list[str],
    log: Path,
    nodes: int = 1,
) -> tuple[int, str]:
    """make finetune's command (medqa.cli.finetune) on the recipe, made short and metered; (exit code, its output).
    With nodes > 1, one process per simulated machine (`--nodes N --node-rank r --main-address 127.0.0.1`), each with
    one GPU of its own, started together; the exit code is the worst of theirs and the output the first machine's."""
    cmd = finetune_command(recipe, model, data, run, work, steps, save_steps, extra)
    if nodes == 1:
        with open(log, "w") as out:
            rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
        return rc, log.read_text(errors="replace")
    procs, logs = [], [log.with_name(f"{log.stem}-node{r}{log.suffix}") for r in range(nodes)]
    for rank, path in enumerate(logs):
        node = ["--gpus", "1", "--nodes", str(nodes), "--node-rank", str(rank), "--main-address", "127.0.0.1"]
        env = {**os.environ, **TWO_MACHINES_ENV, "CUDA_VISIBLE_DEVICES": str(rank)}
        with open(path, "w") as out:
            procs.append(subprocess.Popen([*cmd, *node], stdout=out, stderr=subprocess.STDOUT, env=env))
        time.sleep(2 if rank == 0 else 0)  # the first machine writes the run's recipe.yml first
    codes = [p.wait() for p in procs]
    shutil.copyfile(logs[0], log)
    return max(codes, key=abs), log.read_text(errors="replace")


def measured_row(name: str, rc: int, run: Path) -> dict:
    bench = json.loads((run / "bench.json").read_text()) if (run / "bench.json").is_file() else {}
    losses = bench.get("losses", [])
    return {
        "name": name,
        "rc": rc,
        "gpus": bench.get("world_size"),
        "tokens_per_s": bench.get("tokens_per_s"),
        "step_s": bench.get("step_s"),
        "peak_gib_per_gpu": bench.get("peak_allocated_gib_per_rank"),
        "peak_reserved_gib": bench.get("peak_reserved_gib"),
        "losses": losses,
        "losses_finite": bool(losses) and all(math.isfinite(x) for x in losses),
        "checkpoints": [int(c.name.split("-")[-1]) for c in complete_checkpoints(run)],
    }


def crash_after_first_checkpoint(run: Path, row: dict) -> int:
    """Leave the run as a crash just after its first checkpoint would: no adapter, no later checkpoint."""
    (run / ADAPTER_WEIGHTS).unlink()
    for step in row["checkpoints"][1:]:
        shutil.rmtree(run / f"checkpoint-{step}")
    return row["checkpoints"][0]


def passed(rows: list[dict]) -> bool:
    return all(
        r["rc"] == 0 and r["losses_finite"] and r.get("resume", {"finished": bool(r["gpus"] == 1)})["finished"]
        for r in rows
    )


def write_report(rows: list[dict], out: Path, gpu: str, steps: int) -> None:
    base = next((r["tokens_per_s"] for r in rows if r["name"] == "1 GPU"), None)
    for row in rows:
        row["scaling_vs_1_gpu"] = row["tokens_per_s"] / base if base and row["tokens_per_s"] else None
    lines = [
        "| run | tokens/s | vs 1 GPU | s/step | peak alloc GiB per GPU | losses finite | checkpoints | resume |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tps = f"{r['tokens_per_s']:,.0f}" if r["tokens_per_s"] else f"failed (exit {r['rc']})"
        scale = f"{r['scaling_vs_1_gpu']:.2f}×" if r["scaling_vs_1_gpu"] else "–"
        step = f"{r['step_s']:.2f}" if r["step_s"] else "–"
        peaks = " / ".join(f"{p:.2f}" for p in r["peak_gib_per_gpu"] or []) or "–"
        res = r.get("resume")
        resume = "–" if not res else f"from checkpoint-{res['from']}: " + ("ok" if res["finished"] else "failed")
        lines.append(
            f"| {r['name']} | {tps} | {scale} | {step} | {peaks} | {r['losses_finite']} "
            f"| {', '.join(map(str, r['checkpoints'])) or '–'} | {resume} |"
        )
    report = {"date": datetime.date.today().isoformat(), "gpu": gpu, "steps": steps, "runs": rows}
    write_section(out, gpu, "scaling", report, "\n".join(lines), suffix="-scaling")
    print(lines[-1], flush=True)


def check(
    recipe: Path,
    model: Path,
    data: Path,
    work: Path,
    out: Path,
    gpus: int,
    steps: int,
    save_steps: int,
    runs: list[str],
) -> bool:
    """The chosen runs of the recipe (RUNS), each metered, then each multi-GPU or multi-machine run resumed as
    after a crash; the report (out/<date>-<gpu>-scaling.{json,md}) rewritten after each. True when all passed."""
    import torch

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gpu = torch.cuda.get_device_name()
    plans = {
        "1gpu": ("1 GPU", [], 1),
        "ddp": (f"{gpus} GPUs DDP", ["--gpus", str(gpus)], 1),
        "zero2": (f"{gpus} GPUs ZeRO-2", ["--gpus", str(gpus), "--dist", "zero2"], 1),
        "nodes": (f"{gpus} machines x 1 GPU", [], gpus),
    }
    plans = [plans[r] for r in runs]
    rows = []
    short = (recipe, model, data, work, steps, save_steps)
    for name, extra, nodes in plans:  # all speed runs first, then the resumes: the report is rewritten after each
        run = run_folder(work, name)
        rc, _ = finetune(run, *short, extra, work / f"{run.name}.log", nodes)
        rows.append(measured_row(name, rc, run))
        write_report(rows, out, gpu, steps)
    for (name, extra, nodes), row in zip(plans, rows, strict=True):
        if not (extra or nodes > 1) or row["rc"] != 0 or not row["checkpoints"]:
            continue
        run = run_folder(work, name)
        first = crash_after_first_checkpoint(run, row)
        rc, log = finetune(run, *short, extra, work / f"{run.name}-resume.log", nodes)
        resumed = f"resuming from {run / f'checkpoint-{first}'}" in log
        row["resume"] = {
            "from": first,
            "rc": rc,
            "finished": rc == 0 and resumed and finished(run),
        }
        write_report(rows, out, gpu, steps)
    return passed(rows)
