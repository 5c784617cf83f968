"""Write a run's evaluation report: metrics table (base, tuned, delta with CI), plots, side-by-side answers.

    python eval/report.py outputs/demo/eval/test [outputs/demo/eval/mediqa-test ...] --run outputs/demo

Reads each DIR's metrics.json (eval/score.py), {base,tuned}.jsonl and .meta.json (eval/generate.py) and the
run's newest trainer_state.json; writes DIR/report/ (report.md, metrics.png, loss.png, lengths.png) atomically,
and RUN/eval/report.md: one table per set.
"""

import argparse
from pathlib import Path

from medqa.cli import command
from medqa.errors import UserError
from medqa.integrity import read_json
from medqa.predictions import load_predictions
from medqa.report import write_report, write_summary

AGAIN = "run make eval again"


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", type=Path, nargs="+", help="evaluation folders (metrics.json, base.jsonl, tuned.jsonl)")
    parser.add_argument("--run", type=Path, required=True)
    args = parser.parse_args()
    sets = []
    for folder in args.dirs:
        metrics = read_json(folder / "metrics.json", AGAIN)
        if not isinstance(metrics, dict) or "baseline" not in metrics:
            raise UserError(folder / "metrics.json", "not eval/score.py's with --baseline: nothing to compare")
        if not {"n", "metrics", "delta"} <= set(metrics) or not isinstance(metrics["metrics"], dict):
            raise UserError(folder / "metrics.json", f"not eval/score.py's output: {AGAIN}")
        base, tuned = load_predictions(folder / "base.jsonl"), load_predictions(folder / "tuned.jsonl")
        meta = {k: read_json(p, AGAIN) for k in ("base", "tuned") if (p := folder / f"{k}.meta.json").exists()}
        sets.append((folder, metrics, meta, base, tuned))
    for folder, metrics, meta, base, tuned in sets:  # every folder checked before any report is written
        print(f"wrote {write_report(folder, args.run, metrics, base, tuned, meta)}")
    print(f"wrote {write_summary(args.run, [s[:3] for s in sets])}")


if __name__ == "__main__":
    main()
