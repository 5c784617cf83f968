"""Generation speed of the flagship's shape: `make eval`'s path against the others tried
(medqa_lab/bench/generation.py).

    python scripts/bench_generation.py --make-model llama2-7b --model /tmp/medqa-llama2-7b-random

The model is Llama-2-7B-shaped with random weights and the embedded SmolLM2 tokenizer (vocabulary 49,152; the
Llama-2 tokenizer cannot be had offline), asked in the recipe's prompt with a random adapter of the recipe's
shape. Adds the rows under "generation" to results/bench/<date>-<gpu>.json and a section to the .md beside it.
"""

import argparse
from pathlib import Path

from medqa import paths
from medqa.cli import command
from medqa.errors import UserError
from medqa.recipe import load_recipe
from medqa_lab.bench.generation import PATHS, generation_table, make_adapter, run_paths
from medqa_lab.bench.random_model import add_model_arguments, model_from
from medqa_lab.bench.report import write_section


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--recipe", type=Path, default=paths.FLAGSHIP)
    parser.add_argument("--data", type=Path, default=paths.SEED_DATA, help="questions: DATA/test.jsonl")
    parser.add_argument("--out", type=Path, default=paths.BENCH_RESULTS)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--paths", default=",".join(p.name for p in PATHS), help="comma-separated path names")
    args = parser.parse_args()
    known = {p.name: p for p in PATHS}
    chosen = [known[name] for name in args.paths.split(",") if name in known]
    if not chosen:
        raise UserError("--paths", f"none of {args.paths!r} is a path; known: {', '.join(known)}")
    questions = args.data / "test.jsonl"
    if not questions.is_file():
        raise UserError(questions, "no such file (run `make data` first)")
    made = model_from(args)
    recipe = load_recipe(args.recipe)
    adapter = args.model.with_name(args.model.name + "-adapter")
    if not (adapter / "adapter_config.json").is_file():
        make_adapter(args.model, adapter, recipe, Path(recipe["chat_template_jinja"]).read_text())

    rows = []
    for row in run_paths(chosen, args.model, adapter, questions, args.n, args.max_new_tokens):
        rows.append(row)
        print(generation_table([row]).splitlines()[-1], flush=True)
    gpu = next((r["gpu"] for r in rows if "gpu" in r), "none")
    data = {
        "model": f"{made or args.model} (random weights) + random LoRA in {args.recipe}'s shape",
        "tokenizer": "SmolLM2-135M-Instruct (vocab 49,152)",
        "answers": args.n,
        "max_new_tokens": args.max_new_tokens,
        "runs": rows,
    }
    stem = write_section(
        args.out,
        gpu,
        "generation",
        data,
        f"{args.n} answers x {args.max_new_tokens} new tokens.\n\n{generation_table(rows)}",
    )
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
