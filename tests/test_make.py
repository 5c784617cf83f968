"""The Makefile passes only what the user gave: every default is the library's (medqa/paths.py, each command's
options). Read with `make -n`, which prints a target's commands without running them."""

import subprocess

import pytest
from conftest import REPO


def commands(*args) -> list[str]:
    result = subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.replace("\\\n", " ").splitlines()  # a command continued over lines is one


def line_of(script: str, *args) -> str:
    [line] = [c for c in commands(*args) if script in c]
    return line


def test_make_finetune_trains_on_the_data_folder_given_whatever_its_name():
    assert "--data 'data/medqa'" in line_of("scripts/finetune.py", "finetune", "DATA=data/medqa")
    assert "--data 'data/mine'" in line_of("scripts/finetune.py", "finetune", "DATA=data/mine")
    assert "--data" not in line_of("scripts/finetune.py", "finetune")  # the recipe's own sources
    assert "--data 'data/medqa'" in line_of("scripts/plan.py", "plan", "DATA=data/medqa")


def test_make_passes_no_default_of_its_own():
    line = line_of("scripts/finetune.py", "finetune")
    assert line.split("scripts/finetune.py")[1].split() == []  # the recipe and every option: the command's defaults
    data = line_of("scripts/data.py", "data")
    assert data.split("scripts/data.py")[1].split() == []
    given = line_of("scripts/data.py", "data", "SEED=7", "KEEP=page_title", "LIMIT=100")
    assert "--seed '7'" in given and "--keep 'page_title'" in given and "--limit '100'" in given
    dpo = line_of("scripts/dpo.py", "dpo", "RUN=outputs/x")
    assert dpo.split("scripts/dpo.py")[1].split() == ["outputs/x"]


@pytest.mark.parametrize("target", ["eval", "merge", "dpo", "gguf", "ask", "push", "benchmark"])
def test_a_target_that_needs_a_run_says_so_in_one_line(target):
    result = subprocess.run(["make", target], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and f"error: RUN is not set: make {target} RUN=outputs/<run folder>" in result.stderr


def test_make_lint_checks_the_format_too():
    lines = commands("lint")
    assert any("ruff check" in c for c in lines) and any("ruff format --check" in c for c in lines)
