"""Levers: train and evaluate variants of a recipe side by side, one change at a time (medqa_lab/levers/).

    python eval/levers.py run [results/smollm2-135m/levers/round-8.yml] [--parallel 16] [--deadline SECONDS]
        [--only JOB,...] [--data DIR] [--work DIR]
    python eval/levers.py table [results/smollm2-135m/levers/round-8.yml]
    python eval/levers.py plan [results/smollm2-135m/levers/round-8.yml]

The spec names its data folder (`data:`, default data/medqa; --data overrides it); runs, answers and logs go to
--work, by default outputs/levers/SPEC-NAME. `run` trains every lever that needs its own model (scripts/finetune.py;
a preference stage after the merge and the pairs it starts from) and answers the spec's split (eval/generate.py),
as many jobs at a time as --parallel, spread over the GPUs (CUDA_VISIBLE_DEVICES chooses which); finished jobs are
skipped, so running it again goes on where a stop (--deadline, a kill) left off. Two runners may share a work
folder with different --only selections (each on its own GPUs): a job waits for the other runner's jobs it needs.
`plan` checks the spec and prints its jobs (what each waits for, whether it has finished), running nothing. `table`
scores each lever against the one it is compared with, paired by question, and writes SPEC.json and SPEC.md
beside the spec (SPEC-test.* for the test split, SPEC-NAME.* for each of the spec's `sets:`), or --out PATH.json
and .md.
"""

import argparse
import json
from pathlib import Path

from medqa.cli import command
from medqa.data import write_seed_text
from medqa.errors import UserError
from medqa.fsutil import atomic_write_text
from medqa_lab.levers import lever_table, load_spec, plan, run_jobs, table_markdown
from medqa_lab.levers.spec import LATEST, seed_text_folders


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "table", "plan"))
    parser.add_argument("spec", type=Path, nargs="?", default=LATEST, help=f"default {LATEST}")
    parser.add_argument("--work", type=Path, default=None, help="default: outputs/levers/SPEC-NAME")
    parser.add_argument("--data", type=Path, default=None, help="default: the spec's data: (data/medqa)")
    parser.add_argument("--parallel", type=int, default=16, help="jobs at a time (a 135M run needs ~2 GiB)")
    parser.add_argument("--deadline", type=float, default=None, help="stop running jobs after this many seconds")
    parser.add_argument("--only", default=None, help="comma-separated job names (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="table: OUT.json and OUT.md (default: beside the spec)")
    parser.add_argument(
        "--clean-references",
        action="store_true",
        help="table: also score the spec's split and test against their references as the cleaning rules leave them "
        "(SPEC-clean-refs.*, SPEC-test-clean-refs.*)",
    )
    args = parser.parse_args()
    spec = load_spec(args.spec)
    work, data = args.work or spec.work, args.data or Path(spec.data)
    if args.command == "plan":
        for job in plan(spec, work, data):
            after = f" (after {', '.join(job.after)})" if job.after else ""
            state = "finished" if job.done.exists() else "to run"
            print(f"{job.name}: {state}{after}: {' '.join(job.argv[1:])}")
        return
    if args.command == "run":
        for folder in seed_text_folders(spec):  # plain Axolotl's rows, written from the prepared folder
            write_seed_text(folder)
        jobs = plan(spec, work, data)
        only = set(args.only.split(",")) if args.only else None
        unknown = sorted((only or set()) - {j.name for j in jobs})
        if unknown:
            raise UserError("--only", f"no such job(s): {', '.join(unknown)}")
        ran = run_jobs(jobs, work, args.parallel, gpu_count(), args.deadline, only)
        failed = [name for name, r in ran.items() if r["rc"] != 0]
        if failed:
            raise UserError(work / "logs", f"{len(failed)} job(s) failed: {', '.join(failed)}")
        return
    out = args.out or args.spec.with_suffix("")
    sets = [(spec.split, "", False), ("test", "-test", False), *((q.name, f"-{q.name}", False) for q in spec.sets)]
    if args.clean_references:
        sets += [(spec.split, "-clean-refs", True), ("test", "-test-clean-refs", True)]
    for split, suffix, clean_refs in sets:
        if split == "test" and not spec.test_n:
            continue
        table = lever_table(spec, work, split, clean_refs=clean_refs)
        if not table["rows"]:
            raise UserError(work, f"no predictions for the {split} split (run `eval/levers.py run` first)")
        path = out.with_name(out.name + suffix)
        atomic_write_text(path.with_suffix(".json"), json.dumps(table, indent=2) + "\n")
        atomic_write_text(
            path.with_suffix(".md"),
            table_markdown(
                table,
                f"Levers on the {split} split ({spec.path.name})"
                + (", against the references as the cleaning rules leave them" if clean_refs else ""),
            ),
        )
        print(f"wrote {path}.md and .json: {len(table['rows'])} levers")


if __name__ == "__main__":
    main()
