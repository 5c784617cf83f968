import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if os.environ.get("PYTEST_XDIST_WORKER"):  # one of make test's workers, one core each
    import torch

    torch.set_num_threads(1)
os.chdir(REPO)  # recipes and defaults name paths relative to the repository root, where make runs
MEDQUAD = REPO.parent / "shared" / "data" / "medquad" / "medquad_qa.csv"
EMBEDDED_MODEL = REPO / "models" / "SmolLM2-135M-Instruct"
RECIPES = sorted(  # every recipe, the baselines and the preference stage included (not the lever studies' records)
    p for p in (REPO / "recipes").rglob("*.yml") if "\nbase_model:" in "\n" + p.read_text() and "levers" not in p.parts
)
# as make sets them, before any library reads them, for the scripts run here (run_main) and those they start
os.environ.update(HF_HUB_OFFLINE="1", AXOLOTL_DO_NOT_TRACK="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false")
# make test runs two workers on two cores: one thread and no dataset worker processes each
os.environ.update(OMP_NUM_THREADS="1", AXOLOTL_DATASET_NUM_PROC="1")
ENV = dict(os.environ)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # what nearly every test imports, imported once (medqa first, as every command does: its quiet settings) and
    # then left out of the cycle collector's full passes, which would walk these libraries' 600,000 objects again
    # each time (0.4 s a pass here, some 20 s of a worker's time)
    import gc  # noqa: I001  (medqa first)

    import medqa  # noqa: F401
    import peft  # noqa: F401  (transformers, its model classes, bitsandbytes)
    from axolotl.utils import config  # noqa: F401  (Axolotl's loaders and schema)

    gc.freeze()


def run_script(*args, cwd=REPO, timeout=900, env=None):
    """Run a project script as a user would; returns the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout
    )


def run_main(*args, input=None):
    """Run a project script as `make` runs it (the file as __main__), in this test process: the same code path as
    run_script without a new interpreter's imports (`input`: its standard input). Returns a CompletedProcess
    (text)."""
    import contextlib
    import io
    import runpy
    import signal

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    old_argv, old_stdin, old_sigterm = sys.argv, sys.stdin, signal.getsignal(signal.SIGTERM)
    code = 0
    try:
        sys.argv, sys.stdin = argv, io.StringIO(input or "")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(REPO / argv[0]), run_name="__main__")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:  # the command's SIGTERM handler (medqa.errors.cli) is the command's, not this process's
        sys.argv, sys.stdin = old_argv, old_stdin
        signal.signal(signal.SIGTERM, old_sigterm)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


_PREPARED: dict[tuple, Path] = {}


def prepare_demo_data(out, *options):
    """The project's demo set, prepared by scripts/prepare_data.py into `out` (10% val and 10% test). Prepared once
    a test process for each set of options (the command is tested in test_data.py), then copied."""
    import shutil
    import tempfile

    key = tuple(map(str, options))
    if key not in _PREPARED:
        made = Path(tempfile.mkdtemp(prefix="medqa-demo-")) / "data"
        result = run_script(
            "scripts/prepare_data.py",
            REPO / "data" / "sample" / "medqa_demo.csv",
            "--out",
            made,
            "--val-fraction",
            "0.1",
            "--test-fraction",
            "0.1",
            *options,
        )
        assert result.returncode == 0, result.stderr
        _PREPARED[key] = made
    shutil.copytree(_PREPARED[key], out, dirs_exist_ok=True)
    return out


@pytest.fixture(scope="session")
def medquad():
    if not MEDQUAD.is_file():
        pytest.skip(f"MedQuAD not found at {MEDQUAD}")
    return MEDQUAD


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    if not (EMBEDDED_MODEL / "tokenizer.json").is_file():
        pytest.fail(f"{EMBEDDED_MODEL} is missing: run `make setup`")
    return AutoTokenizer.from_pretrained(EMBEDDED_MODEL)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tokenizer):
    """A randomly initialised 2-layer Llama with the embedded model's tokenizer (vocabulary sized to it)."""
    from medqa_lab.bench.random_model import make_model

    path = tmp_path_factory.mktemp("tiny-llama")
    make_model("tiny", path, EMBEDDED_MODEL)
    return path


def finished_run(run: Path, recipe_path: str, base_model: Path, lora) -> Path:
    """A run folder as make finetune leaves it: the recipe (on `base_model`) as recipe.yml, a LoRA adapter (peft's
    `lora` config) with non-zero weights, and the tokenizer with the recipe's chat template."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from medqa.prompts import recipe_tokenizer
    from medqa.recipe import load_recipe, run_recipe_text

    recipe = {**load_recipe(REPO / recipe_path), "base_model": str(base_model)}
    if recipe.get("chat_template_jinja"):
        recipe["chat_template_jinja"] = str(REPO / recipe["chat_template_jinja"])
    run.mkdir(parents=True, exist_ok=True)
    (run / "recipe.yml").write_text(run_recipe_text(recipe, recipe_path))
    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_model), lora)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    model.save_pretrained(run)
    recipe_tokenizer(recipe).save_pretrained(run)
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_model):
    """A finished run of the embedded recipe on the tiny model: its LoRA on every linear layer."""
    from peft import LoraConfig

    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    return finished_run(tmp_path_factory.mktemp("tiny-run"), "recipes/smollm2-135m/qlora.yml", tiny_model, lora)


def pytest_sessionfinish(session, exitstatus):
    """make fuzz: the table of what each reader and command met (docs/robustness.md), from this run's tallies; each
    worker leaves its own beside it, and the controller merges them."""
    report = os.environ.get("MEDQA_FUZZ_REPORT")
    if not report:
        return
    from fuzzing import merge_parts, save_part, write_table

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        save_part(Path(f"{report}.{worker}.part"))
        return
    parts = sorted(Path(report).parent.glob(Path(report).name + ".*.part"))
    tally, kills = merge_parts(parts)
    if tally or kills:
        write_table(Path(report), tally, kills)
    for part in parts:
        part.unlink()
