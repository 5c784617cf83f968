"""Score predictions against references; with --baseline, the paired difference with a bootstrap CI.

    python eval/score.py tuned.jsonl --baseline base.jsonl --out DIR

Writes DIR/metrics.json: {"n", "metrics": {metric: {"mean", "ci95"}}, "delta": {metric: {"mean", "ci95"}}}
(delta = predictions minus baseline, matched by id).
"""

import argparse
import json
from pathlib import Path

from medqa.data import read_jsonl
from medqa.errors import UserError, cli
from medqa.fsutil import atomic_write_text
from medqa.scoring import METRICS, per_example, summarise

FIELDS = ("id", "question", "reference", "prediction")


def load_predictions(path: Path) -> list[dict]:
    rows = read_jsonl(path)
    if not rows:
        raise UserError(path, "no predictions (empty file)")
    for i, row in enumerate(rows, 1):
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise UserError(path, f"row {i}: missing field(s) {', '.join(missing)}")
        if not isinstance(row["prediction"], str) or not isinstance(row["reference"], str):
            raise UserError(path, f"row {i}: prediction and reference must be strings")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise UserError(path, "duplicate ids")
    return rows


def score(pred_path: Path, baseline_path: Path | None = None, seed: int = 0, encoder=None) -> dict:
    from medqa.scoring import embedder

    rows = load_predictions(pred_path)
    encoder = encoder or embedder()
    per = per_example([r["prediction"] for r in rows], [r["reference"] for r in rows], encoder)
    result = {"n": len(rows), "predictions": str(pred_path), "metrics": {m: summarise(per[m], seed) for m in METRICS}}
    if baseline_path is not None:
        base_rows = {r["id"]: r for r in load_predictions(baseline_path)}
        missing = [r["id"] for r in rows if r["id"] not in base_rows]
        if missing:
            raise UserError(baseline_path, f"{len(missing)} ids of {pred_path} are missing (first: {missing[0]})")
        base = [base_rows[r["id"]] for r in rows]
        base_per = per_example([r["prediction"] for r in base], [r["reference"] for r in base], encoder)
        result["baseline"] = {
            "predictions": str(baseline_path),
            "metrics": {m: summarise(base_per[m], seed) for m in METRICS},
        }
        result["delta"] = {m: summarise(per[m] - base_per[m], seed) for m in METRICS}
    return result


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args()
    result = score(args.predictions, args.baseline, args.seed)
    atomic_write_text(args.out / "metrics.json", json.dumps(result, indent=2) + "\n")
    for m in METRICS:
        line = f"{m:10s} {result['metrics'][m]['mean']:8.4f}"
        if "delta" in result:
            d = result["delta"][m]
            line += f"   delta {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
        print(line)
    print(f"wrote {args.out / 'metrics.json'}")


if __name__ == "__main__":
    main()
