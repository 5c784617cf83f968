"""make dpo (scripts/dpo.py) for any recipe's run: the preference recipe found beside the run's first recipe, and the
7B flagship's stage, which trains the run's own adapter further in 4 bits with the run itself as DPO's reference
(medqa.continue_adapter), end to end on the CPU with the tiny model."""

import math

import pytest
from conftest import finished_run, run_main, run_script

from medqa.cli.dpo import preference_recipe
from medqa.errors import UserError


def test_the_preference_recipe_is_the_one_beside_a_recipe_of_the_runs_model():
    assert preference_recipe("models/SmolLM2-135M-Instruct").as_posix() == "recipes/smollm2-135m/dpo.yml"
    assert preference_recipe("abhishek/llama-2-7b-hf-small-shards").as_posix() == "recipes/llama2-7b/dpo.yml"
    with pytest.raises(UserError, match="no recipes/<model>/dpo.yml beside a recipe of this base model"):
        preference_recipe("someone/else")


def first_stage(tmp_path, tiny_model, r=64, targets=("q_proj", "v_proj")):
    """A finished run of the flagship's recipe on the tiny model: its LoRA (r 64 on q, v) with non-zero weights."""
    from peft import LoraConfig

    lora = LoraConfig(r=r, lora_alpha=16, lora_dropout=0.1, target_modules=list(targets), init_lora_weights=False)
    return finished_run(tmp_path / "run", "recipes/llama2-7b/qlora.yml", tiny_model, lora)


@pytest.mark.slow
def test_the_flagships_stage_trains_the_runs_adapter_further_with_the_run_as_reference(tmp_path, tiny_model):
    from conftest import prepare_demo_data
    from safetensors.torch import load_file

    run = first_stage(tmp_path, tiny_model)
    data = prepare_demo_data(tmp_path / "data")
    make_pairs = run_main(
        "scripts/pairs.py",
        run,
        "--data",
        data,
        "--out",
        run / "pairs-spin",
        "--rule",
        "spin",
        "--n",
        "4",
        "--max-new-tokens",
        "16",
    )  # fmt: skip  (make dpo's first step, in this process, on the demo's questions)
    assert make_pairs.returncode == 0, make_pairs.stderr[-2000:]
    out = tmp_path / "run-dpo"
    result = run_script("scripts/dpo.py", run, "--recipe", "recipes/llama2-7b/dpo.yml", "--rule", "spin", "--n", "4",
                        "--out", out, "--set", "tf32=false", "--set", "sequence_len=128", "--set", "save_strategy=no",
                        "--set", "logging_steps=1")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{out}: the preference stage of {run} (DPO" in result.stdout  # the pairs were there: not made again
    first_loss = next(float(line.split("'loss': '")[1].split("'")[0]) for line in result.stdout.splitlines()
                      if "'loss': '" in line)  # fmt: skip
    assert math.isclose(first_loss, math.log(2), abs_tol=2e-3)  # at step 0 the policy is its reference: the run
    before, after = load_file(run / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    for key in (k for k in before if "lora_B" in k):  # the run's adapter moved a little, not a fresh one
        assert 0 < (before[key] - after[key]).abs().max() < 0.05 * before[key].abs().max() + 1e-3
    assert not (out / "ref").exists()  # the reference copy is not saved beside the trained adapter
    cfg = (out / "recipe.yml").read_text()
    assert f"lora_model_dir: {run}" in cfg and "load_in_4bit: true" in cfg


def test_a_run_whose_lora_is_not_the_recipes_is_one_line(tmp_path, tiny_model):
    run = first_stage(tmp_path, tiny_model, r=8)
    result = run_main("scripts/dpo.py", run, "--recipe", "recipes/llama2-7b/dpo.yml")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "its LoRA (r 64) is not the run's (r 8)" in result.stderr
    assert not (run / "pairs-facttune").exists() and not (tmp_path / "run-dpo").exists()
