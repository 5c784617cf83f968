"""The multi-GPU check of `make scale-check`: the recipe on 1 GPU, DDP and ZeRO-2, each run metered by
medqa.bench.Meter, then resumed as after a crash; the report rows and the markdown table.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

from medqa.fsutil import atomic_write_text
from medqa.recipe import load_recipe
from medqa.runs import complete_checkpoints


def run_dir(work: Path, name: str) -> Path:
    return work / re.sub(r"\W+", "-", name).strip("-").lower()


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
) -> tuple[int, str]:
    """scripts/finetune.py on the recipe, made short and metered; (exit code, its output)."""
    overrides = {
        "base_model": str(model),
        "datasets": [{"path": str(data / "train.jsonl"), "ds_type": "json", "type": "medqa.strategy"}],
        "test_datasets": None,  # Axolotl evaluates at step 0 when there is an eval set: not what is measured here
        "output_dir": str(run),
        "dataset_prepared_path": str(work / "prepared"),
        "max_steps": steps,
        "save_steps": save_steps,
        "logging_steps": 1,
        "plugins": [*load_recipe(recipe)["plugins"], "medqa.bench.BenchPlugin"],
    }
    cmd = [sys.executable, "scripts/finetune.py", str(recipe), *extra]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]  # JSON is YAML
    with open(log, "w") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
    return rc, log.read_text(errors="replace")


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
    (run / "adapter_model.safetensors").unlink()
    for step in row["checkpoints"][1:]:
        shutil.rmtree(run / f"checkpoint-{step}")
    return row["checkpoints"][0]


def passed(rows: list[dict]) -> bool:
    return all(
        r["rc"] == 0 and r["losses_finite"] and r.get("resume", {"finished": bool(r["gpus"] == 1)})["finished"]
        for r in rows
    )


def write_report(rows: list[dict], out: Path, gpu: str, stem: str, steps: int) -> None:
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
    report = {"date": datetime.date.today().isoformat(), "gpu": gpu, "steps": steps, "runs": rows}
    atomic_write_text(out / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print(lines[-1], flush=True)
