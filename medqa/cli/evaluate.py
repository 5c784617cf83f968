"""Base against tuned on the run's held-out split and on each set of people's questions (make eval): both models
answer every question (eval/generate.py, a process each, with the decoding the merged model ships with), the answers
are scored against the references with paired differences (eval/score.py), and RUN/eval/report.md gets a table per
set (eval/report.py).

    python eval/evaluate.py outputs/<run> [--split test] [--n N]
        [--consumer data/mediqa data/liveqa data/kqa-golden data/kqa] [--consumer-split test]

Answers go to RUN/eval/<split>/ and RUN/eval/<folder>-<split>/. A set held out whole (K-QA's, `make data` writes it
all into one split) is answered in that split whatever --consumer-split says. A set of people's questions left at its
default is left out, with a note, where `make data` has not prepared it; one that is named must be there.
"""

import argparse
import json
from pathlib import Path

from medqa import paths
from medqa.cli import command, run_module
from medqa.errors import UserError
from medqa.runs import Run


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by make finetune")
    parser.add_argument("--split", default="test", help="the run's own split to answer (default test)")
    parser.add_argument("--n", type=int, default=None, help="the first N questions of each set (default all)")
    parser.add_argument(
        "--consumer",
        type=Path,
        nargs="*",
        default=None,
        help=f"prepared sets of people's questions (default {' '.join(map(str, paths.PEOPLE))}; none: no set)",
    )
    parser.add_argument("--consumer-split", default="test", help="their split (default test)")
    args = parser.parse_args()
    run = Run.open(args.run)
    run.adapter  # noqa: B018  (an unfinished run: one line, before anything runs)
    people = []
    for folder in paths.PEOPLE if args.consumer is None else args.consumer:
        split = held_out_split(folder) or args.consumer_split
        if (folder / f"{split}.jsonl").is_file():
            people.append((folder, split))
        elif args.consumer is None:
            print(f"note: {folder / (split + '.jsonl')} not there: those people's questions left out "
                  "(make data prepares them)")  # fmt: skip
        else:
            raise UserError(folder / f"{split}.jsonl", "no such file (a folder from make data)")
    sets = [(run.path / "eval" / args.split, [], args.split)]
    sets += [(run.path / "eval" / f"{f.name}-{split}", ["--data", str(f)], split) for f, split in people]
    n = ["--n", str(args.n)] if args.n else []
    for out, data, split in sets:
        for model in ("base", "tuned"):
            run_module(["medqa.cli.generate", str(run.path), "--model", model, *data, "--split", split, *n,
                  "--out", str(out / f"{model}.jsonl")])  # fmt: skip
        run_module(
            ["medqa.cli.score", str(out / "tuned.jsonl"), "--baseline", str(out / "base.jsonl"), "--out", str(out)]
        )
    run_module(["medqa.cli.report", *(str(out) for out, _, _ in sets), "--run", str(run.path)])


def held_out_split(folder: Path) -> str | None:
    """The one split of a set held out whole (its manifest's `held_out`: K-QA's), or None."""
    manifest = folder / "manifest.json"
    try:
        return json.loads(manifest.read_text()).get("held_out") if manifest.is_file() else None
    except (OSError, ValueError, AttributeError):
        raise UserError(manifest, "not a manifest make data wrote (run make data again)") from None


if __name__ == "__main__":
    main()
