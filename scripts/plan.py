"""Check a recipe and its data before any GPU time, and say what the run will be.

    python scripts/plan.py recipes/llama2-7b/qlora.yml [--data DIR] [--set KEY=VALUE]

Validates the recipe (Axolotl's schema, unknown keys), the data files and the base model, tokenises the
training rows with the recipe's own prompt format, and prints rows and tokens, optimizer steps per epoch,
the steps at which checkpoints will be saved, and the peak GPU memory and epoch time that `make bench`
measured for this recipe (bench/*.json), where it has.
"""

import argparse
import math
from pathlib import Path

from medqa.checks import check_base_model, check_data, cuda_needs
from medqa.contenders import bench_figures
from medqa.data import read_jsonl
from medqa.errors import cli
from medqa.prompts import encode_example, recipe_tokenizer
from medqa.recipe import load_recipe, resolve, validate


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    cfg = resolve(load_recipe(args.recipe), args.data, None, args.overrides)
    validate(cfg, str(args.recipe))
    check_data(cfg, str(args.recipe))
    check_base_model(cfg)
    tokenizer = recipe_tokenizer(cfg, str(args.recipe))
    seq_len = int(cfg.get("sequence_len", 2048))
    train = Path(str(cfg["datasets"][0]["path"]))
    rows = read_jsonl(train)
    lengths = [len(encode_example(tokenizer, r["question"], r["answer"])["input_ids"]) for r in rows]
    tokens = sum(min(n, seq_len) for n in lengths)
    per_step = int(cfg["micro_batch_size"]) * int(cfg.get("gradient_accumulation_steps", 1))
    if cfg.get("sample_packing"):
        steps = math.ceil(tokens / (seq_len * per_step))
        how = f"packed into {seq_len}-token sequences, {per_step} a step (at least; packing is never perfect)"
    else:
        steps = math.ceil(len(rows) / per_step)
        how = f"{per_step} rows a step"
    total = int(cfg.get("max_steps") or steps * float(cfg.get("num_epochs", 1)))
    save = int(cfg.get("save_steps") or 0)
    saves = [s for s in range(save, total, save)] if save else []

    template = cfg.get("chat_template_jinja") or "the tokenizer's"
    needs = ", ".join(cuda_needs(cfg)) or "no"
    print(f"recipe      {args.recipe}  (chat template {template}; needs CUDA: {needs})")
    print(
        f"data        {train}: {len(rows):,} rows, {tokens:,} tokens "
        f"({sum(n > seq_len for n in lengths):,} rows truncated to {seq_len})"
    )
    print(f"steps       about {steps:,} optimizer steps per epoch ({how}); {total:,} in all")
    print(f"checkpoints at steps {', '.join(map(str, saves)) or 'none before the end'}, and the final adapter")
    print(f"output      {cfg['output_dir']}")
    figures = bench_figures(args.recipe)
    print(
        "measured    "
        + ("by make bench:\n" + "\n".join(figures) if figures else "no make bench figures for this recipe")
    )


if __name__ == "__main__":
    main()
