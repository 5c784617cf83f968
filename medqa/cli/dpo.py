"""The preference stage after make finetune (make dpo): preference pairs from the run's own answers, then DPO with
the preference recipe of the run's model.

    python scripts/dpo.py outputs/smollm2-135m/qlora [--recipe recipes/smollm2-135m/dpo.yml] [--rule ends]
        [--n 1000] [--out outputs/smollm2-135m/qlora-dpo] [--set KEY=VALUE ...]

The recipe is `recipes/<model>/dpo.yml`, the one beside a recipe that trains the run's base model (`--recipe` names
another). It starts from the run in one of two ways, by what it says:
- with `lora_model_dir` (recipes/llama2-7b/dpo.yml): the run's own adapter trained further on the base it was
  trained on, in 4 bits, the run itself the reference (medqa.continue_adapter);
- without (recipes/smollm2-135m/dpo.yml): a new LoRA on the run merged in full precision (`RUN/merged`, made by
  `make merge` first where it is not there).
The pairs (`RUN/pairs-RULE`, scripts/pairs.py) are made where they are not there. Each step runs as a process of its
own, as `make merge`, `scripts/pairs.py` and `make finetune` would; the time of each is printed at the end.
"""

import argparse
import time
from pathlib import Path

from medqa import paths
from medqa.cli import command, run_module
from medqa.errors import UserError
from medqa.integrity import read_json
from medqa.lock import run_lock
from medqa.preference import DEFAULT_RULE, PAIR_QUESTIONS, RULES
from medqa.recipe import load_recipe
from medqa.runs import Run


def preference_recipe(base_model: str) -> Path:
    """recipes/<model>/dpo.yml beside a recipe of that folder that trains `base_model`."""
    for dpo in sorted(paths.RECIPES.glob("*/dpo.yml")):
        folder = dpo.parent
        for recipe in sorted(folder.rglob("*.yml")):
            if recipe == dpo or "levers" in recipe.parts:
                continue
            if str(load_recipe(recipe).get("base_model")) == base_model:
                return dpo
    raise UserError(base_model, "no recipes/<model>/dpo.yml beside a recipe of this base model: name one (RECIPE=)")


def step(name: str, argv: list[str], times: dict) -> None:
    """Run one step as its own process (medqa.cli.run_module), timed."""
    start = time.time()
    try:
        run_module(argv)
    finally:
        times[name] = time.time() - start


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished run folder of make finetune")
    parser.add_argument("--recipe", type=Path, default=None, help="the preference recipe (default: the model's)")
    parser.add_argument("--rule", choices=RULES, default=DEFAULT_RULE)
    parser.add_argument("--n", type=int, default=PAIR_QUESTIONS, help="training questions to make pairs of")
    parser.add_argument("--out", type=Path, default=None, help="the preference stage's run (default: RUN-dpo)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    run = Run.open(args.run)
    run.adapter  # noqa: B018  (an unfinished run: one line, before anything runs)
    recipe = args.recipe or preference_recipe(run.base_model)
    cfg = load_recipe(recipe)
    if not cfg.get("rl"):
        raise UserError(recipe, "not a preference recipe (no rl:)")
    with run_lock(run.path):  # one writer for each run folder: its merge and pairs go into it
        stage(args, run, recipe, cfg)


def stage(args, run: Run, recipe: Path, cfg: dict) -> None:
    times: dict[str, float] = {}
    if "lora_model_dir" in cfg:  # the run's adapter trained further, on its own base
        first = read_json(run.path / "adapter_config.json", "the run's adapter is damaged: train it again")
        ours = {"r": cfg.get("lora_r"), "lora_alpha": cfg.get("lora_alpha"),
                "target_modules": sorted(cfg.get("lora_target_modules") or [])}  # fmt: skip
        theirs = {"r": first.get("r"), "lora_alpha": first.get("lora_alpha"),
                  "target_modules": sorted(first.get("target_modules") or [])}  # fmt: skip
        differ = [k for k in ours if ours[k] != theirs[k]]
        if differ:
            raise UserError(
                recipe,
                f"its LoRA ({', '.join(f'{k} {ours[k]}' for k in differ)}) is not the run's "
                f"({', '.join(f'{k} {theirs[k]}' for k in differ)}): the stage trains the run's adapter further",
            )
        start = [f"base_model={run.base_model}", f"lora_model_dir={run.path}"]
    else:  # a new adapter on the run merged in full precision
        merged = run.path / "merged"
        if not (merged / "config.json").is_file():
            step("merge", ["medqa.cli.merge", str(run.path), "--out", str(merged)], times)
        start = [f"base_model={merged}"]
    pairs = run.path / f"pairs-{args.rule}"
    if not (pairs / "train.jsonl").is_file():
        argv = ["medqa.cli.pairs", str(run.path), "--out", str(pairs), "--rule", args.rule, "--n", str(args.n)]
        step("pairs", argv, times)
    out = args.out or run.path.with_name(run.path.name + "-dpo")
    argv = ["medqa.cli.finetune", str(recipe), "--data", str(pairs), "--output-dir", str(out)]
    argv += [a for kv in [*start, *args.overrides] for a in ("--set", kv)]
    step("DPO", argv, times)
    spent = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items())
    print(f"{out}: the preference stage of {run.path} ({spent}; {sum(times.values()):.0f} s in all)")


if __name__ == "__main__":
    main()
