"""How long `make benchmark` takes at the flagship's shape: lm-evaluation-harness on the nine leaderboard tasks, for a
base and a tuned model, on a Llama-2-7B-shaped model with random weights (the time does not depend on them).

    python scripts/bench_benchmark.py --make-model llama2-7b [--run outputs/<SmolLM2 run>]

The model is built on the GPU in bf16 with the embedded SmolLM2 tokenizer (vocabulary 49,152; the Llama-2 tokenizer
cannot be had offline) and evaluated twice, as make benchmark evaluates the base and the merged tuned model: the
same tasks (eval/tasks/ offline), lm-eval's automatic batch size. With --run, that run's own RUN/benchmark timings
(make benchmark on it) are added beside. Writes the "benchmark" section of results/bench/<date>-<gpu>.{json,md}.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

from medqa import (
    benchmark,  # noqa: E402
    paths,
)
from medqa.cli import command  # noqa: E402
from medqa.errors import UserError
from medqa_lab.bench.random_model import SHAPES, build_model  # noqa: E402
from medqa_lab.bench.report import (
    report_stem,  # noqa: E402
    write_section,  # noqa: E402
)


def table(rows: list[dict]) -> str:
    lines = ["| model | tasks | questions | seconds | batch size lm-eval used | peak GPU memory (GiB) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        sizes = ", ".join(map(str, r["batch_sizes"])) or str(r["batch_size"])
        lines.append(f"| {r['model']} | {r['tasks']} | {r['questions']:,} | {r['seconds']} | {sizes} | "
                     f"{r['peak_memory_gib']} |")  # fmt: skip
    return "\n".join(lines)


@command
def main():
    import logging

    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make-model", choices=sorted(SHAPES), default="llama2-7b",
                        help="the shape; each shape keeps its own rows in the report")  # fmt: skip
    parser.add_argument("--tasks", default=",".join(benchmark.TASKS))
    parser.add_argument("--data", type=Path, default=None, help=f"offline sets (default {benchmark.DATA_DIR})")
    parser.add_argument("--run", type=Path, default=None, help="a run make benchmark has scored: its timings too")
    parser.add_argument("--out", type=Path, default=paths.BENCH_RESULTS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise UserError("bench", "needs a GPU")
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    tasks = args.tasks.split(",")
    configs = benchmark.task_configs(tasks, args.data)
    start = time.perf_counter()
    model, tokenizer = build_model(args.make_model)
    model.eval()
    built = time.perf_counter() - start
    rows = []
    for label in ("base", "tuned"):
        results = benchmark.evaluate(model, tokenizer, configs)
        t = results["medqa"]
        questions = sum(len(v) for v in results["samples"].values())
        rows.append({"model": f"{args.make_model} (random), as {label}", "tasks": len(tasks), "questions": questions,
                     "seconds": t["seconds"], "batch_size": t["batch_size"], "batch_sizes": t["batch_sizes"],
                     "peak_memory_gib": t["peak_memory_gib"]})  # fmt: skip
        print(table(rows).splitlines()[-1], flush=True)
    if args.run:
        summary = json.loads((args.run / "benchmark" / "summary.json").read_text())
        n = sum(t["n"] for t in summary["tasks"])
        for label, t in summary["timing"].items():  # make benchmark's own figures on that run
            rows.append({"model": f"{args.run.name} ({label})", "tasks": len(summary["tasks"]), "questions": n,
                         "seconds": t["seconds"], "batch_size": t["batch_size"], "batch_sizes": t["batch_sizes"],
                         "peak_memory_gib": t["peak_memory_gib"]})  # fmt: skip
    gpu = torch.cuda.get_device_name(0)
    both = sum(r["seconds"] for r in rows[:2])
    shape = {"model": f"{args.make_model}, random weights, bf16, SmolLM2 tokenizer (vocab 49,152)",
             "source": "offline, eval/tasks/" if benchmark.offline() else "the Hub",
             "build_seconds": round(built, 1), "base_and_tuned_seconds": round(both, 1), "runs": rows[:2]}  # fmt: skip
    stem = args.out / report_stem(gpu)
    before = json.loads(stem.with_suffix(".json").read_text()) if stem.with_suffix(".json").is_file() else {}
    shapes = {**before.get("benchmark", {}).get("shapes", {}), args.make_model: shape}
    notes = [f"{name}: base and tuned together {s['base_and_tuned_seconds']:.0f} s (building the random model, "
             f"{s['build_seconds']:.0f} s, not counted)." for name, s in shapes.items()]  # fmt: skip
    note = (f"lm-evaluation-harness, zero-shot, {len(tasks)} tasks ({shape['source']}), batch size auto, each model "
            "evaluated as make benchmark evaluates it. " + " ".join(notes))  # fmt: skip
    trained = rows[2:] or before.get("benchmark", {}).get("trained", [])  # --run's, or the last ones
    all_rows = [r for s in shapes.values() for r in s["runs"]] + trained
    section = {"shapes": shapes, "trained": trained}
    stem = write_section(args.out, gpu, "benchmark", section, f"{note}\n\n{table(all_rows)}")
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
