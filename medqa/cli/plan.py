"""Check a recipe and its data before any GPU time, and say what the run will be.

    python scripts/plan.py recipes/llama2-7b/qlora.yml [--data DIR] [--set KEY=VALUE]

Validates the recipe (Axolotl's schema, unknown keys), the data files and the base model, tokenises the
training rows with the recipe's own prompt format, and prints rows and tokens, optimizer steps per epoch,
the steps at which checkpoints will be saved, the disk space the checkpoints and adapter take against what is
free (make finetune refuses a run that will not fit unless told to go on). What a recipe measured on a GPU (memory,
time) is in its README.
"""

import argparse
from pathlib import Path

from medqa import paths
from medqa.checks import check_base_model, check_data, cuda_needs, disk_needs, space_problem
from medqa.cli import command
from medqa.fsutil import free_bytes, size_text
from medqa.launch import resolve
from medqa.preview import describe
from medqa.recipe import setting


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path, nargs="?", default=paths.RECIPE, help=f"default {paths.RECIPE}")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    cfg = resolve(args.recipe, data=args.data, overrides=args.overrides).recipe  # as it is set: for a GPU
    check_data(cfg, str(args.recipe))
    check_base_model(cfg)
    run = describe(cfg, str(args.recipe))
    template = cfg.get("chat_template_jinja") or "the tokenizer's"
    needs = ", ".join(cuda_needs(cfg)) or "no"
    print(f"recipe      {args.recipe}  (chat template {template}; needs CUDA: {needs})")
    for i, source in enumerate(run["sources"]):
        times = f" (x{source['times']})" if source["times"] > 1 else ""
        print(
            f"{'data' if i == 0 else '':12s}{source['path']}{times}: {source['rows']:,} rows, {source['tokens']:,} "
            f"tokens ({source['truncated']:,} rows truncated to {run['sequence_len']})"
        )
    if len(run["sources"]) > 1:
        print(f"{'':12s}in all: {run['rows']:,} rows, {run['tokens']:,} tokens an epoch")
    per_epoch = f"about {run['steps_per_epoch']:,} optimizer steps per epoch ({run['how']})"
    print(f"steps       {per_epoch}; {run['steps']:,} in all")
    n, every = run["checkpoints"], run["save_steps"]
    shown = [every * i for i in range(1, n + 1)] if n <= 12 else [every, 2 * every, 3 * every, "...", n * every]
    checkpoints = ", ".join(map(str, shown)) + (f" ({n:,} in all)" if n > 12 else "") or "none before the end"
    print(f"checkpoints at steps {checkpoints}, and the final adapter")
    needs = disk_needs(cfg, run["steps"])
    out = setting(cfg, "output_dir")  # Axolotl's ./model-out where the recipe names none
    if needs:
        short = space_problem(cfg, needs)
        print(
            f"disk        about {size_text(needs['bytes'])} in {out}: {needs['kept']} of "
            f"{needs['checkpoints']} checkpoint(s) kept (save_total_limit {cfg.get('save_total_limit') or 'unset'}) "
            f"of {size_text(needs['checkpoint_bytes'])} each, the adapter {size_text(needs['adapter_bytes'])}; "
            f"{size_text(free_bytes(Path(out)))} free"
            + (f"\nwarning     {short}: make finetune will refuse it (GO_ON=1 trains anyway)" if short else "")
        )
    print(f"output      {out}")
    print(f"measured    {Path(args.recipe).parent / 'README.md'} (memory and time on a GPU, where measured)")


if __name__ == "__main__":
    main()
