"""Preference pairs for recipes/smollm2-135m/dpo.yml from a finished run (SPIN; medqa/spin.py): for each of the
first N training questions, the reference answer is chosen and the run's own greedy answer rejected.

    python scripts/spin_data.py outputs/smollm2-135m/qlora --data data/medqa --out data/medqa-spin [--n 2000]

Writes OUT/train.jsonl (rows {"id", "prompt", "chosen", "rejected"}, in the run's chat template) and
OUT/manifest.json (the run, the decoding, how many pairs, how many rows left out because the run already wrote the
reference); the folder appears whole or not at all.
"""

import argparse
import dataclasses
import json
from pathlib import Path

from medqa.data import read_jsonl
from medqa.errors import UserError, cli
from medqa.fsutil import atomic_dir
from medqa.generation import generate_answers
from medqa.runs import Run
from medqa.spin import GREEDY, pairs


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by make finetune")
    parser.add_argument("--data", type=Path, default=Path("data/medqa"), help="prepared data (its train.jsonl)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=2000, help="training questions to make pairs of")
    args = parser.parse_args()
    run = Run.open(args.run)
    rows = read_jsonl(args.data / "train.jsonl")[: args.n]
    if not rows:
        raise UserError(args.data / "train.jsonl", "no training rows")
    model, tokenizer = run.load_model("merged")
    answers = generate_answers(model, tokenizer, [r["question"] for r in rows], GREEDY)
    made, same = pairs(tokenizer, rows, [a.text for a in answers])
    manifest = {
        "run": str(run.path),
        "data": str(args.data / "train.jsonl"),
        "questions": len(rows),
        "pairs": len(made),
        "left_out_same_as_reference": same,
        "rejected_decoding": dataclasses.asdict(GREEDY),
        "rejected_hit_max_new_tokens": sum(a.hit_max_new_tokens for a in answers),
    }
    with atomic_dir(args.out) as tmp:
        (tmp / "train.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in made))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{args.out / 'train.jsonl'}: {len(made)} pairs ({same} left out: the run wrote the reference)")


if __name__ == "__main__":
    main()
