"""Write a prepared split as the seed notebook's single `text` column, for Axolotl's `type: completion`.

    python scripts/export_seed_text.py data/medqa        # -> data/medqa/train_text.jsonl, val_text.jsonl

Used by recipes/smollm2-135m/baselines/: plain Axolotl, loss on the whole text, to compare the project's recipe against.
"""

import argparse
import json
from pathlib import Path

from medqa.cli import command
from medqa.data import read_jsonl
from medqa.fsutil import atomic_write_text
from medqa.prompts import SEED_TEXT, render


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    args = parser.parse_args()
    template = SEED_TEXT.read_text()
    for split in ("train", "val"):
        rows = read_jsonl(args.data / f"{split}.jsonl")
        text = "".join(
            json.dumps(
                {"id": r["id"], "text": render(template, r["question"], r["answer"], eos_token="")}, ensure_ascii=False
            )
            + "\n"
            for r in rows
        )
        atomic_write_text(args.data / f"{split}_text.jsonl", text)
        print(f"{args.data / f'{split}_text.jsonl'}: {len(rows)} rows")


if __name__ == "__main__":
    main()
