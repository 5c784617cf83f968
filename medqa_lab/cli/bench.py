"""Benchmark the flagship 7B QLoRA recipe against the seed notebook's setup and Axolotl's example config.

    python scripts/bench.py --make-model llama2-7b --model /tmp/llama2-7b-random --data data/medqa

Every contender trains the same 5,000 prepared rows on one card, in its own process, for --steps optimizer
steps; `medqa_lab.bench.meter.Meter` counts the non-padding tokens of each batch trained on and times the steps after
a warm-up. Speed and memory do not depend on weight values, so the model is Llama-2-7B-shaped with random
weights, its vocabulary sized to the tokenizer used (the embedded SmolLM2 tokenizer, 49,152 tokens: the
Llama-2 tokenizer cannot be had offline). Writes results/bench/<date>-<gpu>.json and .md.
"""

import argparse
import datetime
import sys
from pathlib import Path

from medqa import paths
from medqa.cli import command
from medqa.data import write_seed_text
from medqa.errors import UserError
from medqa.paths import FLAGSHIP
from medqa_lab.bench.contenders import SWITCHES, run_contender, training_table
from medqa_lab.bench.random_model import add_model_arguments, model_from
from medqa_lab.bench.report import write_section


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--recipe", type=Path, default=FLAGSHIP, help=f"the recipe to bench (default {FLAGSHIP})")
    parser.add_argument("--data", type=Path, default=paths.SEED_DATA)
    parser.add_argument("--out", type=Path, default=paths.BENCH_RESULTS)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: OUT/work)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument(
        "--runs",
        default="seed,axolotl-example,recipe,recipe+sequence_len=8192",
        help="comma-separated: seed, axolotl-example, recipe, recipe+LEVER[+LEVER]; a lever is KEY=VALUE or "
        + ", ".join(SWITCHES),
    )
    parser.add_argument("--reuse", action="store_true", help="keep figures already in the work folder")
    args = parser.parse_args()

    if not (args.data / "train.jsonl").is_file():
        raise UserError(args.data / "train.jsonl", "no such file (run `make data` first)")
    made = model_from(args)
    write_seed_text(args.data)  # the seed's and Axolotl's example's rows
    work = args.work or args.out / "work"
    runs = []
    for name in args.runs.split(","):
        runs.append(run_contender(name, args.recipe, args.model, args.data, work, args.steps, args.reuse))
        print(training_table(runs[-1:]).splitlines()[-1], flush=True)
    by_name = {r["name"]: r for r in runs if "error" not in r}
    for r in by_name.values():
        for key, ref in (("speedup_vs_seed", "seed"), ("speedup_vs_axolotl", "axolotl-example")):
            if ref in by_name and r["tokens_per_s"] and by_name[ref]["tokens_per_s"]:
                r[key] = r["tokens_per_s"] / by_name[ref]["tokens_per_s"]
    gpu = next((r["gpu"] for r in by_name.values()), "none")
    report = {
        "date": datetime.date.today().isoformat(),
        "model": f"{made or args.model} (random weights)",
        "tokenizer": "SmolLM2-135M-Instruct (vocab 49,152)",
        "steps": args.steps,
        "runs": [
            {
                "name": r["name"],
                "gpu": r.get("gpu"),
                "tokens_per_s": r.get("tokens_per_s"),
                "step_s": r.get("step_s"),
                "peak_gib": r.get("peak_allocated_gib"),
                "peak_reserved_gib": r.get("peak_reserved_gib"),
                "epoch_s": r.get("epoch_s"),
                "speedup_vs_seed": r.get("speedup_vs_seed"),
                "speedup_vs_axolotl": r.get("speedup_vs_axolotl"),
                **({"error": r["error"]} if "error" in r else {}),
                "detail": r,
            }
            for r in runs
        ],
    }
    stem = write_section(args.out, gpu, "training", report, training_table(runs))
    print(training_table(runs))
    print(f"wrote {stem}.json and .md")
    sys.exit(1 if any("error" in r for r in runs) else 0)


if __name__ == "__main__":
    main()
