"""The lever study: a spec becomes training and generation jobs, bad specs get one line, the driver trains
and answers on CPU, and the table compares every lever with the reference."""

import json
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, prepare_demo_data, run_script

from medqa.errors import UserError
from medqa.levers import Job, load_spec, plan, run_jobs
from medqa.recipe import load_recipe, resolve, validate

SPEC = REPO / "eval" / "levers" / "levers.yml"


def jobs_by_name(spec, work=Path("w"), data=Path("d")):
    return {j.name: j for j in plan(spec, work, data)}


def test_committed_spec_plans_valid_runs():
    spec = load_spec(SPEC)
    jobs = jobs_by_name(spec)
    trains = [j for j in jobs.values() if j.name.startswith("train-")]
    assert {f"train-{lv.name}" for lv in spec.levers if lv.trains} == {j.name for j in trains}
    for job in trains:  # every run's resolved recipe passes Axolotl's schema
        sets = [job.argv[i + 1] for i, a in enumerate(job.argv) if a == "--set"]
        validate(resolve(load_recipe(REPO / job.argv[2]), Path("d"), Path("o"), sets), job.name)

    # decoding levers reuse their model; base levers ask the base model with a trained run's prompt
    def arg(job, flag):
        return job.argv[job.argv.index(flag) + 1]

    rep = jobs["generate-val-rep-1.1"]
    assert rep.after == "train-reference" and arg(rep, "--repetition-penalty") == "1.1"
    assert arg(jobs["generate-val-reference"], "--no-repeat-ngram-size") == "0"  # greedy unless a lever says not
    base = jobs["generate-test-base-nrng-4"]
    assert base.after == "train-reference" and arg(base, "--model") == "base"
    assert arg(base, "--no-repeat-ngram-size") == "4" and arg(base, "--base-prompt") == "run"
    check = jobs["generate-test-seed-2048-x3-nrng-4-4bit"]
    assert arg(check, "--weights") == "4bit" and "generate-val-seed-2048-x3-nrng-4-4bit" not in jobs


def test_the_reference_is_the_recipe_as_it_was():
    spec = load_spec(SPEC)
    assert spec.reference.set == {} and Path(spec.recipe).name == "smollm2-135m-before.yml"


@pytest.mark.parametrize(
    "change,problem",
    [
        (lambda s: s["levers"].append(dict(s["levers"][0])), "unique"),
        (lambda s: s["levers"].insert(0, {"name": "x", "about": "", "model": "base"}), "reference"),
        (lambda s: s["levers"].append({"name": "x", "about": "", "model": "nope"}), "'nope' is not a lever"),
        (
            lambda s: s["levers"].append({"name": "x", "about": "", "model": "reference", "decode": {"topk": 3}}),
            "decode",
        ),
        (lambda s: s["test"]["levers"].append("nope"), "test lever 'nope'"),
        (lambda s: s.pop("levers"), "not a lever spec"),
    ],
)
def test_bad_specs_are_refused_in_one_line(tmp_path, change, problem):
    raw = yaml.safe_load(SPEC.read_text())
    change(raw)
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match=problem):
        load_spec(path)


@pytest.mark.slow
def test_driver_trains_answers_resumes_and_tabulates(tmp_path, tiny_model):
    data = prepare_demo_data(tmp_path / "data")
    spec = {
        "recipe": "recipes/smollm2-135m-medqa-qlora.yml",
        "split": "val",
        "n": 3,
        "train": {
            "base_model": str(tiny_model),
            "max_steps": 2,
            "sequence_len": 128,
            "eval_strategy": "no",
            "eval_steps": None,
            "test_datasets": None,
            "save_strategy": "no",
            "save_steps": None,
        },
        "decode": {"max_new_tokens": 4, "batch_size": 4},
        "levers": [
            {"name": "reference", "about": "the recipe"},
            {"name": "rep", "about": "repetition penalty", "model": "reference", "decode": {"repetition_penalty": 1.3}},
            {"name": "base-model", "about": "no fine-tuning", "model": "base"},
        ],
        "test": {"n": 2, "levers": ["reference"]},
    }
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(spec))
    work = tmp_path / "work"
    result = run_script("eval/levers.py", "run", path, "--data", data, "--work", work, "--parallel", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    jobs = json.loads((work / "jobs.json").read_text())
    assert set(jobs) == {
        "train-reference",
        "generate-val-reference",
        "generate-val-rep",
        "generate-val-base-model",
        "generate-test-reference",
    } and all(j["rc"] == 0 for j in jobs.values())
    rows = [json.loads(x) for x in (work / "preds" / "val" / "rep.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["settings"]["repetition_penalty"] == 1.3

    again = run_script("eval/levers.py", "run", path, "--data", data, "--work", work)  # finished: nothing to do
    assert again.returncode == 0 and "start" not in again.stdout

    out = tmp_path / "table" / "levers"
    result = run_script("eval/levers.py", "table", path, "--work", work, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    table = json.loads(out.with_suffix(".json").read_text())
    assert [r["name"] for r in table["rows"]] == ["reference", "rep", "base-model"]
    assert table["rows"][0]["delta"] is None and "rougeL" in table["rows"][1]["delta"]
    assert "| rep | repetition penalty |" in out.with_suffix(".md").read_text()
    assert (tmp_path / "table" / "levers-test.md").is_file()


BOOKKEEPING = {
    "dataloader_drop_last",  # only the evaluation loader: training batches come from the packing sampler
    "eval_strategy",
    "eval_steps",
    "eval_sample_packing",
    "test_datasets",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "output_dir",
    "dataset_prepared_path",
}


def test_recipe_is_the_lever_that_was_measured():
    """recipes/smollm2-135m-medqa-qlora.yml trains what the chosen lever trained: the recipe as it was plus the
    lever's settings (evaluation, checkpoints and logging aside)."""
    spec = load_spec(SPEC)
    chosen = spec.lever("seed-2048-x3")
    job = jobs_by_name(spec)[f"train-{chosen.name}"]
    sets = [job.argv[i + 1] for i, a in enumerate(job.argv) if a == "--set"]
    measured = resolve(load_recipe(REPO / spec.recipe), None, None, sets)
    recipe = load_recipe(REPO / "recipes" / "smollm2-135m-medqa-qlora.yml")
    keys = (set(measured) | set(recipe)) - BOOKKEEPING
    assert {k: measured.get(k) for k in keys} == {k: recipe.get(k) for k in keys}


def test_a_run_is_trained_only_while_answers_still_need_it(tmp_path):
    def touch(name, after=None):
        path = tmp_path / name
        return Job(name, [sys.executable, "-c", f"open({str(path)!r}, 'w')"], path, after)

    (tmp_path / "generate-a").touch()  # a's answers exist from an earlier call; its model is gone
    jobs = [touch("train-a"), touch("generate-a", "train-a"), touch("train-b"), touch("generate-b", "train-b")]
    record = run_jobs(jobs, tmp_path / "work", parallel=2, gpus=0)
    assert set(record) == {"train-b", "generate-b"}
    assert not (tmp_path / "train-a").exists() and (tmp_path / "generate-b").exists()
