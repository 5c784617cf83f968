"""Check the flagship recipe on several GPUs: 1 GPU, DDP and DeepSpeed ZeRO-2, on one machine.

    python scripts/scale_check.py --model /tmp/medqa-llama2-7b-random --data data/medqa --gpus 2 --out bench

Each run is `scripts/finetune.py recipes/llama2-7b-medqa-qlora.yml [--gpus N [--dist zero2]]` on a
Llama-2-7B-shaped model with random weights (made once, as in make bench), for --steps optimizer steps with a
checkpoint every --save-steps, metered by medqa.bench.Meter (tokens summed over the GPUs). Then each
multi-GPU run is resumed as after a crash: its final adapter and any checkpoint after the first are
removed and the same command runs again, which must load the first checkpoint and finish. Writes
bench/<date>-<gpu>-scaling.json and .md: tokens/s, scaling vs 1 GPU, peak memory per GPU, losses,
checkpoints, resume.
"""

import argparse
import datetime
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

from medqa.errors import UserError, cli
from medqa.fsutil import atomic_write_text
from medqa.random_model import make_model
from medqa.recipe import complete_checkpoints, load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "llama2-7b-medqa-qlora.yml"


def finetune(run: Path, args, extra: list[str], log: Path) -> tuple[int, str]:
    overrides = {
        "base_model": str(args.model),
        "datasets": [{"path": str(args.data / "train.jsonl"), "ds_type": "json", "type": "medqa.strategy"}],
        "test_datasets": None,  # Axolotl evaluates at step 0 when there is an eval set: not what is measured here
        "output_dir": str(run),
        "dataset_prepared_path": str(args.work / "prepared"),
        "max_steps": args.steps,
        "save_steps": args.save_steps,
        "logging_steps": 1,
        "plugins": [*load_recipe(RECIPE)["plugins"], "medqa.bench.BenchPlugin"],
    }
    cmd = [sys.executable, str(REPO / "scripts" / "finetune.py"), str(RECIPE), *extra]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]  # JSON is YAML
    with open(log, "w") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    return rc, log.read_text(errors="replace")


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model folder (made here if missing)")
    parser.add_argument("--data", type=Path, default=Path("data/medqa"))
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/medqa-scale-check"))
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--save-steps", type=int, default=5)
    args = parser.parse_args()
    import torch

    if torch.cuda.device_count() < args.gpus:
        raise UserError("--gpus", f"asked for {args.gpus} GPUs, this machine has {torch.cuda.device_count()}")
    if not (args.data / "train.jsonl").is_file():
        raise UserError(args.data / "train.jsonl", "no such file (run `make data` first)")
    if not (args.model / "config.json").is_file():
        make_model("llama2-7b", args.model)
    if args.save_steps >= args.steps:
        raise UserError("--save-steps", f"must be below --steps ({args.steps}) so that a checkpoint is written")

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    gpu = torch.cuda.get_device_name()
    stem = f"{datetime.date.today().isoformat()}-{re.sub(r'[^A-Za-z0-9]+', '-', gpu).strip('-').lower()}-scaling"
    plans = [("1 GPU", []), (f"{args.gpus} GPUs DDP", ["--gpus", str(args.gpus)])]
    plans.append((f"{args.gpus} GPUs ZeRO-2", ["--gpus", str(args.gpus), "--dist", "zero2"]))
    rows = []
    for name, extra in plans:  # all speed runs first, then the resumes: the report is rewritten after each
        run = args.work / re.sub(r"\W+", "-", name).strip("-").lower()
        rc, _ = finetune(run, args, extra, args.work / f"{run.name}.log")
        bench = json.loads((run / "bench.json").read_text()) if (run / "bench.json").is_file() else {}
        losses = bench.get("losses", [])
        rows.append(
            {
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
        )
        write_report(rows, args, gpu, stem)
    for (name, extra), row in zip(plans, rows, strict=True):
        if not extra or row["rc"] != 0 or not row["checkpoints"]:
            continue
        run = args.work / re.sub(r"\W+", "-", name).strip("-").lower()
        first = row["checkpoints"][0]  # resume as after a crash just after the first checkpoint
        (run / "adapter_model.safetensors").unlink()
        for step in row["checkpoints"][1:]:
            shutil.rmtree(run / f"checkpoint-{step}")
        rc, log = finetune(run, args, extra, args.work / f"{run.name}-resume.log")
        row["resume"] = {
            "from": first,
            "rc": rc,
            "finished": rc == 0
            and f"resuming from {run / f'checkpoint-{first}'}" in log
            and (run / "adapter_model.safetensors").is_file(),
        }
        write_report(rows, args, gpu, stem)
    ok = all(
        r["rc"] == 0 and r["losses_finite"] and r.get("resume", {"finished": bool(r["gpus"] == 1)})["finished"]
        for r in rows
    )
    sys.exit(0 if ok else 1)


def write_report(rows: list[dict], args, gpu: str, stem: str) -> None:
    base = rows[0]["tokens_per_s"]
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
    report = {"date": datetime.date.today().isoformat(), "gpu": gpu, "steps": args.steps, "runs": rows}
    atomic_write_text(args.out / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(args.out / f"{stem}.md", "\n".join(lines) + "\n")
    print(lines[-1], flush=True)


if __name__ == "__main__":
    main()
