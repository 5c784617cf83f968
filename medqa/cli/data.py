"""Prepare every source the recipes read (make data): MedQuAD twice, as the seed's 5,000 rows uncleaned (data/medqa)
and every row cleaned (data/medqa-all), with the same validation and test questions; then the sets of people's
questions, LiveQA-Med (data/liveqa, grouped by question and twin), MEDIQA 2019 (data/mediqa, its own split) and K-QA's
patients' questions without answers (data/kqa) and its physician-answered ones with their must-have statements
(data/kqa-golden). Each source, its folder and the options that read it are in
medqa/sources.py.

    python scripts/data.py [--input FILE|HUB-ID] [--limit 5000] [--seed 42] [--keep RULE,...] [--answer-words N]
        [--liveqa FILE] [--mediqa FILE] [--kqa FILE] [--kqa-golden FILE] [--name NAME --license ID]

A set of people's questions is prepared where its file is there beside the checkout (../shared/data/consumer/), or
where one is named; a named file that is not there is an error. --keep and --answer-words set the cleaning of every
cleaned source's training answers (medqa/cleaning.py).
"""

import argparse
from pathlib import Path

from medqa.cleaning import RULES
from medqa.cli import command
from medqa.cli.prepare_data import keep_rules, say
from medqa.data import SEED, looks_like_hub_id, prepare, prepare_questions
from medqa.errors import UserError
from medqa.sources import SEED_ROWS, sources


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=None, help="MedQuAD, or your own Q/A file or Hub id, for data/medqa(-all)")
    parser.add_argument("--name", default=None, help="--input's name, for model cards (MedQuAD's is known)")
    parser.add_argument("--license", default=None, help="--input's licence, a Hub licence id (MedQuAD's is known)")
    parser.add_argument("--limit", type=int, default=None, help=f"data/medqa's training rows (default {SEED_ROWS})")
    parser.add_argument("--seed", type=int, default=None, help=f"the splits' seed (default {SEED})")
    parser.add_argument(
        "--keep", action="append", default=[], metavar="RULE", help=f"cleaning rules to turn off ({', '.join(RULES)})"
    )
    parser.add_argument(
        "--answer-words",
        type=int,
        default=None,
        help="long_answer's budget of words (default 150; --keep long_answer keeps answers whole)",
    )
    for source in sources():
        if source.people:
            parser.add_argument(
                f"--{source.name}", dest=source.name, default=None, help=f"{source.title} (default {source.input})"
            )
    args = parser.parse_args()
    keep = keep_rules(args.keep)
    seed = SEED if args.seed is None else args.seed
    todo = []  # every named file checked before any source is prepared
    for source in sources():
        given = getattr(args, source.name, None) if source.people else args.input
        source_input = given or source.input
        if source.people and given is None and not Path(source_input).is_file():
            print(f"skipped {source.title}: {source_input} is not there (--{source.name} FILE or Hub id)")
            continue
        if given is not None and not Path(given).exists() and not looks_like_hub_id(given):
            raise UserError(given, "no such file")
        todo.append((source, given, source_input))
    for source, given, source_input in todo:
        title, license_ = source.title, source.license
        if not source.people and given is not None:  # their own data: their name and licence, or none
            title, license_ = args.name, args.license
        if source.questions_only:
            manifest = prepare_questions(source_input, source.out, "val", title, license_)
        else:
            options = dict(source.options)
            if "limit" in options and args.limit is not None:
                options["limit"] = args.limit
            if "split_column" not in options:
                options["seed"] = seed
            manifest = prepare(
                source_input,
                source.out,
                name=title,
                license=license_,
                keep=keep if source.cleaned else tuple(RULES),
                answer_words=args.answer_words if source.cleaned else None,
                **options,
            )
        say(source_input, source.out, manifest)


if __name__ == "__main__":
    main()
