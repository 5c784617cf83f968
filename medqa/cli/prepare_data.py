"""Turn a question/answer dataset into the recipes' format: train/val/test JSONL and a manifest.

    python scripts/prepare_data.py ../shared/data/medquad/medquad_qa.csv --out data/medquad --limit 5000

INPUT is a CSV (.csv, .csv.gz, .tsv), a JSONL file, or a hub dataset id. Rows that share a question,
an answer or a source document land in one split only (or --split-column names each row's split). Then the
cleaning rules (medqa/cleaning.py: page_title, restated_question, boilerplate, link_list, long_answer) clean the
training answers (held-out answers are references); `--keep RULE` turns one off, `--answer-words N` sets
long_answer's budget. Dropped rows and changed answers are counted in the manifest, by rule and source, and printed.
`--questions-only SPLIT`: questions held out whole (K-QA's), all into one split, for evaluation only: without answers
(the measures that need no reference), or with a reference answer and `must_have` / `nice_to_have` statements.
"""

import argparse
import json
from pathlib import Path

from medqa.cleaning import RULES
from medqa.cli import command
from medqa.data import SEED, prepare, prepare_questions


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="CSV/JSONL file or hub dataset id")
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced whole, atomically)")
    parser.add_argument("--limit", type=int, default=None, help="keep at most N training rows")
    parser.add_argument("--seed", type=int, default=SEED, help=f"the split's seed (default {SEED})")
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--name", default=None, help="the data's name, for model cards (default: the input)")
    parser.add_argument("--license", default=None, help="the data's licence (a Hub licence id, e.g. cc-by-4.0)")
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="RULE",
        help=f"leave what this cleaning rule would clean ({', '.join(RULES)}; comma-separated or repeated; "
        "`all`: no cleaning)",
    )
    parser.add_argument(
        "--answer-words",
        type=int,
        default=None,
        help="long_answer's budget: training answers cut where a sentence ends within it (default 150; "
        "--keep long_answer keeps them whole)",
    )
    parser.add_argument(
        "--questions-only",
        metavar="SPLIT",
        default=None,
        help="questions held out whole (K-QA's), all of them into SPLIT.jsonl, with their reference answer and "
        "must_have / nice_to_have statements where the file has them; no split, no cleaning",
    )
    parser.add_argument(
        "--split-column", default=None, help="a column that names each row's split (train/validation/test)"
    )
    parser.add_argument(
        "--references-column", default=None, help="a column with every reference answer (a JSON list), for scoring"
    )
    parser.add_argument(
        "--twins",
        action="store_true",
        help="people's questions: a question sent twice (nearly the same words) stays in one split",
    )
    parser.add_argument(
        "--merge-references",
        action="store_true",
        help="validation and test: a question answered by several rows becomes one row, its answers its references",
    )
    args = parser.parse_args()
    if args.questions_only:
        manifest = prepare_questions(args.input, args.out, args.questions_only, args.name, args.license)
        say(args.input, args.out, manifest)
        return
    manifest = prepare(
        args.input,
        args.out,
        limit=args.limit,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        name=args.name,
        license=args.license,
        keep=keep_rules(args.keep),
        split_column=args.split_column,
        references_column=args.references_column,
        twins=args.twins,
        merge_references=args.merge_references,
        answer_words=args.answer_words,
    )
    say(args.input, args.out, manifest)


def keep_rules(items: list[str]) -> tuple[str, ...]:
    """--keep's rules, comma-separated or repeated; `all`: every rule."""
    keep = tuple(rule for item in items for rule in item.split(",") if rule)
    return tuple(RULES) if "all" in keep else keep


def say(source, out, manifest: dict) -> None:
    """What was read, kept, dropped and cleaned, and the columns found."""
    rows = manifest["rows"]
    dropped = ", ".join(f"{n} {reason}" for reason, n in manifest["dropped"].items()) or "none"
    if manifest.get("held_out"):
        answered, statements = rows["with_answer"], rows["with_must_have"]
        print(f"{source}: {rows['read']} rows read; dropped: {dropped}")
        print(
            f"{out}: {manifest['held_out']} {rows['kept']} questions, "
            + (f"{answered} with a reference answer" if answered else "no answers")
            + (f", {statements} with must-have statements" if statements else "")
        )
        return
    print(f"{source}: {rows['read']} rows read, {rows['kept']} kept; dropped: {dropped}")
    merged = rows.get("held_out_answers")
    print(
        f"{out}: train {rows['train']}, val {rows['val']}, test {rows['test']}"
        + (f" (questions; {merged['val']} and {merged['test']} answers as their references)" if merged else "")
        + (
            f" ({rows['train_unused_by_limit']} training rows left out by --limit)"
            if rows["train_unused_by_limit"]
            else ""
        )
    )
    done = [
        f"{rule}: {kind} {', '.join(f'{n} {src}' for src, n in by_source.items())}"
        for rule, what in manifest["cleaning"]["counts"].items()
        for kind, by_source in what.items()
        if by_source
    ]
    print("cleaning the training answers: " + ("; ".join(done) or "nothing to clean"))
    if manifest["cleaning"]["off"]:
        print(f"cleaning rules off: {', '.join(manifest['cleaning']['off'])}")
    print(json.dumps(manifest["columns"]))


if __name__ == "__main__":
    main()
