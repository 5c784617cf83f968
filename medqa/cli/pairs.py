"""Preference pairs for a preference recipe (recipes/<model>/dpo.yml) from a finished run (medqa/preference.py): for
each of the first N training questions of the run's sources, taken in turn from each source (so that the few
people's questions are all asked beside MedQuAD's many), by one rule:

    python scripts/pairs.py outputs/smollm2-135m/qlora --out outputs/smollm2-135m/qlora/pairs-ends
        [--rule ends|covers|facttune|spin|fidelity|shape] [--n 1000] [--samples 4] [--temperature T] [--data DIR ...]

ends (the default), covers and facttune: --samples answers sampled at --temperature (0.7; facttune 1.0, its
paper's), ranked by the rule, the best chosen and the worst rejected (covers: the one that addresses the least of the
question); spin: the reference chosen, the run's greedy answer
rejected; fidelity: where the greedy answer loops or states an unsupported fact, that answer rejected and the same
answer ended before its trouble (else the reference) chosen; shape: a greedy answer with a fault of shape rejected,
the reference chosen. Writes OUT/train.jsonl (rows {"id", "prompt", "chosen", "rejected", "rule"}, in the run's chat
template) and OUT/manifest.json (the run, the rule, the decoding, how many pairs, how many questions gave none); the
folder appears whole or not at all.
"""

import argparse
import dataclasses
import json
from collections import Counter
from pathlib import Path

from medqa.cli import command
from medqa.data import read_jsonl
from medqa.decoding import GenerationSettings
from medqa.errors import UserError
from medqa.fsutil import atomic_dir, check_writable
from medqa.generation import generate_answers
from medqa.lock import lock_for
from medqa.preference import DEFAULT_RULE, PAIR_QUESTIONS, RULES, SAMPLED, make_pairs
from medqa.runs import Run


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by make finetune")
    parser.add_argument(
        "--data", type=Path, nargs="+", default=None, help="prepared data (their train.jsonl; default: the run's)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rule", choices=RULES, default=DEFAULT_RULE)
    parser.add_argument("--n", type=int, default=PAIR_QUESTIONS, help="training questions to make pairs of")
    parser.add_argument("--samples", type=int, default=4, help="sampled rules: answers sampled per question")
    parser.add_argument(
        "--temperature", type=float, default=None, help="sampled rules: sampling temperature (0.7; facttune 1.0)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=GenerationSettings.max_new_tokens)
    args = parser.parse_args()
    run = Run.open(args.run)
    run.adapter  # noqa: B018  (an unfinished run: one line, before its data is read)
    folders = args.data or run.data_dirs
    rows = in_turn([read_jsonl(folder / "train.jsonl") for folder in folders], args.n)
    if not rows:
        raise UserError(folders[0] / "train.jsonl", "no training rows")
    # what the run writes by itself: no loop stop (a loop is what a pair may reject), no n-gram rule
    sampled = args.rule in SAMPLED
    if args.temperature is None:
        args.temperature = 1.0 if args.rule == "facttune" else 0.7
    check_writable(args.out.parent, args.out.name)  # before the model answers, not after
    with lock_for(run.path, args.out):  # one writer for each run folder (where the pairs go into it)
        write_pairs(args, run, folders, rows, sampled)


def in_turn(sources: list[list[dict]], n: int) -> list[dict]:
    """The first n rows taken in turn from each source (one of each, then the next of each, ...); a source that runs
    out leaves its turn to the others."""
    out = []
    for k in range(max(map(len, sources), default=0)):
        out += [rows[k] for rows in sources if k < len(rows)]
    return out[:n]


def write_pairs(args, run, folders, rows, sampled):
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        stop_on_loop=False,
        temperature=args.temperature if sampled else 0.0,
    )
    k = args.samples if sampled else 1
    model, tokenizer = run.load_model("merged")
    flat = generate_answers(model, tokenizer, [r["question"] for r in rows for _ in range(k)], settings)
    answers = [flat[i * k : (i + 1) * k] for i in range(len(rows))]
    made, none = make_pairs(tokenizer, args.rule, rows, answers)
    if not made:
        raise UserError(args.run, f"no {args.rule} pairs: no question's answers differ by the rule (more --n?)")
    first = folders[0] / "manifest.json"
    source = json.loads(first.read_text()) if first.is_file() else {}
    manifest = {
        "name": source.get("name"),  # the data's name and licence, for the model card of the preference stage
        "license": source.get("license"),
        "input": source.get("input"),
        "rows": {"train": len(made)},
        "run": str(run.path),
        "data": [str(folder / "train.jsonl") for folder in folders],
        "questions_by_source": dict(Counter(r.get("source", "?") for r in rows)),
        "rule": args.rule,
        "questions": len(rows),
        "answers_per_question": k,
        "pairs": len(made),
        "questions_without_a_pair": none,
        "decoding": dataclasses.asdict(settings),
        "answers_hit_max_new_tokens": sum(a.hit_max_new_tokens for a in flat),
    }
    with atomic_dir(args.out) as tmp:
        (tmp / "train.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in made))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{args.out / 'train.jsonl'}: {len(made)} {args.rule} pairs from {len(rows)} questions ({none} gave none)")


if __name__ == "__main__":
    main()
