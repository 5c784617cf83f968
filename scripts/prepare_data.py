"""Turn a question/answer dataset into the recipes' format: train/val/test JSONL and a manifest.

    python scripts/prepare_data.py ../shared/data/medquad/medquad_qa.csv --out data/medquad --limit 5000 --seed 42

INPUT is a CSV (.csv, .csv.gz, .tsv), a JSONL file, or a hub dataset id. Rows that share a question,
an answer or a source document land in one split only. Dropped rows are counted in the manifest.
"""

import argparse
import json
from pathlib import Path

from medqa.data import prepare
from medqa.errors import cli


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="CSV/JSONL file or hub dataset id")
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced whole, atomically)")
    parser.add_argument("--limit", type=int, default=None, help="keep at most N training rows")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--name", default=None, help="the data's name, for model cards (default: the input)")
    parser.add_argument("--license", default=None, help="the data's licence (a Hub licence id, e.g. cc-by-4.0)")
    args = parser.parse_args()
    manifest = prepare(
        args.input,
        args.out,
        limit=args.limit,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        name=args.name,
        license=args.license,
    )
    rows = manifest["rows"]
    dropped = ", ".join(f"{n} {reason}" for reason, n in manifest["dropped"].items()) or "none"
    print(f"{args.input}: {rows['read']} rows read, {rows['kept']} kept; dropped: {dropped}")
    print(
        f"{args.out}: train {rows['train']}, val {rows['val']}, test {rows['test']}"
        + (
            f" ({rows['train_unused_by_limit']} training rows left out by --limit)"
            if rows["train_unused_by_limit"]
            else ""
        )
    )
    print(json.dumps(manifest["columns"]))


if __name__ == "__main__":
    main()
