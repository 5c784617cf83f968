"""make plan: the recipe and data checked, and the run described, before any GPU time."""

import re

from conftest import prepare_demo_data, run_main


def test_plan_counts_rows_steps_and_checkpoints(tmp_path):
    data = tmp_path / "data"
    prepare_demo_data(data)
    n_train = len((data / "train.jsonl").read_text().splitlines())
    result = run_main(
        "scripts/plan.py",
        "recipes/smollm2-135m/qlora.yml",
        "--data",
        data,
        "--set",
        "sample_packing=false",
        "--set",
        "save_steps=2",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{n_train:,} rows" in result.stdout
    steps = -(-n_train // 8)  # micro-batch 2 x accumulation 4, no packing
    assert f"about {steps:,} optimizer steps per epoch" in result.stdout
    assert re.search(r"checkpoints at steps 2, 4, 6\b", result.stdout)


def test_plan_refuses_bad_recipes_in_one_line(tmp_path):
    result = run_main("scripts/plan.py", "recipes/smollm2-135m/qlora.yml", "--data", tmp_path / "none")
    assert result.returncode == 2 and "no such data file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
