"""A rehearsal set: the base model's own answers to the training questions of prepared folders, kept where they are
faithful (medqa/rehearsal.py), as a prepared folder a recipe can list beside its sources.

    python scripts/rehearsal.py models/SmolLM2-135M-Instruct --data data/liveqa data/mediqa --out data/rehearsal

The base model answers in its own chat template with make eval's decoding (greedy, ended where an answer starts to
loop). Writes OUT/train.jsonl (rows as make data writes them, `answer` the base's, `answer_original` the reference)
and OUT/manifest.json (the model, the sources, how many answers were kept and why the others were not); the folder
appears whole or not at all.
"""

import argparse
import dataclasses
import json
from pathlib import Path

from medqa.cli import command
from medqa.data import read_jsonl
from medqa.decoding import add_arguments, from_arguments
from medqa.errors import UserError
from medqa.fsutil import atomic_dir
from medqa.generation import generate_answers
from medqa.inference import load_model
from medqa.prompts import messages
from medqa.rehearsal import MIN_COVERAGE, select


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the base model: a folder or Hub id")
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="prepared folders (their train.jsonl)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dtype", default="bfloat16", help="on a GPU (the CPU computes in float32)")
    add_arguments(parser)
    args = parser.parse_args()
    rows = []
    for folder in args.data:
        part = read_jsonl(folder / "train.jsonl")
        if not part:
            raise UserError(folder / "train.jsonl", "no training rows")
        rows += part
    model, tokenizer = load_model(args.model, dtype=args.dtype)
    if not tokenizer.chat_template:
        raise UserError(args.model, "the model has no chat template of its own to be asked in")
    settings = from_arguments(args)
    answers = generate_answers(model, tokenizer, [r["question"] for r in rows], settings)
    kept, left_out = select(rows, answers)
    if not kept:
        raise UserError(args.model, f"none of its {len(rows)} answers is faithful enough to keep ({left_out})")
    manifest = {
        "name": "rehearsal: the base model's own answers",
        "model": args.model,
        "sources": [str(f) for f in args.data],
        "rows": {"read": len(rows), "train": len(kept), "val": 0, "test": 0},
        "left_out": left_out,
        "min_coverage": MIN_COVERAGE,
        "decoding": dataclasses.asdict(settings),
    }
    with atomic_dir(args.out) as tmp:
        with open(tmp / "train.jsonl", "w", encoding="utf-8") as f:
            for row in kept:
                f.write(json.dumps({**row, "messages": messages(row["question"], row["answer"])}, ensure_ascii=False))
                f.write("\n")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"{args.out / 'train.jsonl'}: {len(kept)} of {len(rows)} base answers kept; left out: {left_out}")


if __name__ == "__main__":
    main()
