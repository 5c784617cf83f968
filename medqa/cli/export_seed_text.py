"""Write a prepared split as the seed notebook's single `text` column, for Axolotl's `type: completion`.

    python scripts/export_seed_text.py data/medqa        # -> data/medqa/train_text.jsonl, val_text.jsonl

Used by recipes/smollm2-135m/baselines/: plain Axolotl, loss on the whole text, to compare the project's recipe against.
"""

import argparse
from pathlib import Path

from medqa.cli import command
from medqa.data import write_seed_text


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    args = parser.parse_args()
    for split, n in write_seed_text(args.data).items():
        print(f"{args.data / f'{split}_text.jsonl'}: {n} rows")


if __name__ == "__main__":
    main()
