"""Write a run's evaluation report: metrics table (base, tuned, delta with CI), plots, side-by-side answers.

    python eval/report.py outputs/demo/eval/test [outputs/demo/eval/mediqa-test ...] --run outputs/demo

Reads each DIR's metrics.json (eval/score.py), {base,tuned}.jsonl and .meta.json (eval/generate.py) and the
run's newest trainer_state.json; writes DIR/report/ (report.md, metrics.png, loss.png, lengths.png) atomically,
and RUN/eval/report.md: one table per set.
"""

import argparse
import json
from pathlib import Path

from medqa.data import read_jsonl
from medqa.errors import UserError, cli
from medqa.report import write_report, write_summary


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", type=Path, nargs="+", help="evaluation folders (metrics.json, base.jsonl, tuned.jsonl)")
    parser.add_argument("--run", type=Path, required=True)
    args = parser.parse_args()
    sets = []
    for folder in args.dirs:
        if not (folder / "metrics.json").is_file():
            raise UserError(folder, "no metrics.json (run eval/score.py with --baseline first)")
        metrics = json.loads((folder / "metrics.json").read_text())
        if "baseline" not in metrics:
            raise UserError(folder / "metrics.json", "scored without --baseline: nothing to compare")
        base, tuned = read_jsonl(folder / "base.jsonl"), read_jsonl(folder / "tuned.jsonl")
        meta = {k: json.loads(p.read_text()) for k in ("base", "tuned") if (p := folder / f"{k}.meta.json").is_file()}
        sets.append((folder, metrics, meta, base, tuned))
    for folder, metrics, meta, base, tuned in sets:  # every folder checked before any report is written
        print(f"wrote {write_report(folder, args.run, metrics, base, tuned, meta)}")
    print(f"wrote {write_summary(args.run, [s[:3] for s in sets])}")


if __name__ == "__main__":
    main()
