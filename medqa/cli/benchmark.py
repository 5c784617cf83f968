"""The Open Medical-LLM Leaderboard's nine tasks, scored by lm-evaluation-harness, on a run's base and tuned models.

    python eval/benchmark.py outputs/<run> [--tasks medqa_4options,pubmedqa] [--limit 20] [--data DIR]

The tuned model is the one `make eval` scores (the adapter merged into the weights it was trained against). Each
model's lm-eval output (results.json, samples_<task>.jsonl) goes to RUN/benchmark/<model>/, written whole or not at
all; a model already scored with the same request is not scored again. Then RUN/benchmark/summary.json and
report.md: accuracy ± lm-eval's standard error, tuned minus base paired by question with a 95% CI, chance, the rate
of always answering the commonest right option, and where a model does no better than that. The model card
(make merge, make push) carries the tuned model's accuracies.

Offline (HF_HUB_OFFLINE=1, as make sets it) the tasks are eval/tasks/*.yaml, reading ../shared/data/benchmarks/ or
--data DIR; with HF_HUB_OFFLINE=0, lm-eval's stock tasks (any lm-eval task name) from the Hub.
"""

import argparse
import os
from pathlib import Path

if os.environ.get("VERBOSE") != "1":
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's bars (tqdm reads this at import)

from medqa import benchmark  # noqa: E402
from medqa.cli import command  # noqa: E402
from medqa.errors import UserError
from medqa.fsutil import pause_point  # noqa: E402
from medqa.runs import Run  # noqa: E402


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, nargs="?", help="run folder written by make finetune")
    parser.add_argument("--tasks", default=",".join(benchmark.TASKS), help="comma-separated (default: the nine)")
    parser.add_argument("--limit", type=int, default=None, help="the first N questions of each task (a quick look)")
    parser.add_argument("--data", type=Path, default=None, help=f"offline sets (default {benchmark.DATA_DIR})")
    parser.add_argument("--batch-size", default=None, help="lm-eval's: a number, or auto (default: auto on a GPU, 8)")
    parser.add_argument("--models", default="base,tuned", help="which to score, in order (base,tuned)")
    parser.add_argument("--out", type=Path, default=None, help="default: RUN/benchmark")
    parser.add_argument("--table", nargs="+", metavar="LABEL=DIR", default=None,
                        help="score nothing: one table from models already scored (RUN/benchmark/tuned ...), the "
                        "first the one the others are compared with; written to --out")  # fmt: skip
    args = parser.parse_args()
    if args.table:
        return print(benchmark.table_from_scored(args.table, args.out))
    if args.run is None:
        parser.error("give a run folder (or --table)")

    import logging

    import torch

    if os.environ.get("VERBOSE") != "1":
        logging.getLogger("lm_eval").setLevel(logging.ERROR)  # its INFO steps and its notes on how it was called
    run = Run.open(args.run)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not tasks or not models or set(models) - {"base", "tuned"}:
        raise UserError("--tasks/--models", "give tasks, and models among base,tuned")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit", "must be 1 or more")
    if "tuned" in models:
        run.adapter  # noqa: B018  (an unfinished run: one line, before any model loads)
    configs = benchmark.task_configs(tasks, args.data)
    import lm_eval

    source = "lm-eval's stock tasks, from the Hub" if not benchmark.offline() else (
        f"eval/tasks/ (lm-eval's stock tasks on {args.data or benchmark.DATA_DIR})")  # fmt: skip
    batch_size = args.batch_size or ("auto" if torch.cuda.is_available() else 8)
    if str(batch_size) != "auto":
        batch_size = int(batch_size)
    out = args.out or run.path / "benchmark"
    meta = {"run": str(run.path), "tasks": tasks, "limit": args.limit, "source": source,
            "lm_eval": lm_eval.__version__}  # fmt: skip
    for which in models:
        folder = out / which
        # a base model's scores hold for every run of it: its folder may be copied from another run's
        asked = {**meta, "run": run.base_model if which == "base" else str(run.path), "model": which,
                 "batch_size": str(batch_size)}  # fmt: skip
        if benchmark.done(folder, asked):
            print(f"{folder}: already scored ({len(tasks)} tasks); remove it to score again")
            continue
        model, tokenizer = benchmark.load(run, which)
        print(f"{which}: {len(tasks)} tasks{f', the first {args.limit} questions of each' if args.limit else ''} ...")
        results = benchmark.evaluate(model, tokenizer, configs, args.limit, batch_size)
        benchmark.save(folder, results, asked)
        pause_point("scored")  # a test's hook: a model's scores saved, the next not begun
        timing = results["medqa"]
        print(f"{folder}: {timing['seconds']:.0f} s, batch size {timing['batch_sizes'] or timing['batch_size']}")
        del model
    summary = benchmark.summarise({m: out / m for m in models}, meta)
    report = benchmark.write(out, summary)
    print(f"{report}\n" + benchmark.console_lines(summary, models), flush=True)


if __name__ == "__main__":
    main()
