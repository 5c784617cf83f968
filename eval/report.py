"""Write a run's evaluation report: metrics table (base, tuned, delta with CI), plots, side-by-side answers.

    python eval/report.py outputs/demo/eval/test --run outputs/demo

Reads DIR/metrics.json (eval/score.py), DIR/{base,tuned}.jsonl and .meta.json (eval/generate.py) and the
run's newest trainer_state.json; writes DIR/report/ (report.md, metrics.png, loss.png, lengths.png) atomically.
"""

import argparse
import json
from pathlib import Path

from medqa.data import read_jsonl
from medqa.errors import UserError, cli
from medqa.report import write_report


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path, help="evaluation folder (metrics.json, base.jsonl, tuned.jsonl)")
    parser.add_argument("--run", type=Path, required=True)
    args = parser.parse_args()
    if not (args.dir / "metrics.json").is_file():
        raise UserError(args.dir, "no metrics.json (run eval/score.py with --baseline first)")
    metrics = json.loads((args.dir / "metrics.json").read_text())
    if "baseline" not in metrics:
        raise UserError(args.dir / "metrics.json", "scored without --baseline: nothing to compare")
    base, tuned = read_jsonl(args.dir / "base.jsonl"), read_jsonl(args.dir / "tuned.jsonl")
    meta = {k: json.loads(p.read_text()) for k in ("base", "tuned") if (p := args.dir / f"{k}.meta.json").is_file()}

    path = write_report(args.dir, args.run, metrics, base, tuned, meta)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
