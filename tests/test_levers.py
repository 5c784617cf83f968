"""The lever study: a spec becomes training and generation jobs, bad specs get one line, the driver trains
and answers on CPU, and the table compares every lever with the reference."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, prepare_demo_data, run_main

from medqa.checks import LORA_KERNELS
from medqa.errors import UserError
from medqa.launch import resolve
from medqa.recipe import load_recipe
from medqa_lab.levers import Job, load_spec, plan, run_jobs

SPEC = REPO / "results" / "smollm2-135m" / "levers" / "round-1-2.yml"
ROUND3 = REPO / "results" / "smollm2-135m" / "levers" / "round-3.yml"
ROUND4 = REPO / "results" / "smollm2-135m" / "levers" / "round-4.yml"
ROUND5 = REPO / "results" / "smollm2-135m" / "levers" / "round-5.yml"
SPECS = sorted((REPO / "results").glob("*/levers/round-*.yml"))


def jobs_by_name(spec, work=Path("w"), data=Path("d")):
    return {j.name: j for j in plan(spec, work, data)}


def sets_of(job):
    return [job.argv[i + 1] for i, a in enumerate(job.argv) if a == "--set"]


def arg(job, flag):
    return job.argv[job.argv.index(flag) + 1]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_committed_specs_plan_valid_runs(path):
    spec = load_spec(path)
    jobs = jobs_by_name(spec)
    trains = [j for j in jobs.values() if j.name.startswith("train-")]
    assert {f"train-{lv.name}" for lv in spec.levers if lv.trains} == {j.name for j in trains}
    for job in trains:  # every run's resolved recipe passes Axolotl's schema
        recipe = job.argv[job.argv.index("medqa.cli.finetune") + 1]
        resolve(REPO / recipe, data=Path("d"), output_dir=Path("o"), overrides=sets_of(job))
    for job in jobs.values():  # every job waits only for jobs of the plan
        assert all(a in jobs for a in job.after), job.name


def test_round_1_2_plans_as_it_ran():
    jobs = jobs_by_name(load_spec(SPEC))
    rep = jobs["generate-val-rep-1.1"]
    assert rep.after == ("train-reference",) and arg(rep, "--repetition-penalty") == "1.1"
    assert arg(jobs["generate-val-reference"], "--no-repeat-ngram-size") == "0"  # greedy unless a lever says not
    assert "--no-stop-on-loop" in jobs["generate-val-reference"].argv
    base = jobs["generate-test-base-nrng-4"]
    assert base.after == ("train-reference",) and arg(base, "--model") == "base"
    assert arg(base, "--no-repeat-ngram-size") == "4" and arg(base, "--base-prompt") == "run"
    check = jobs["generate-test-seed-2048-x3-nrng-4-4bit"]
    assert arg(check, "--weights") == "4bit" and "generate-val-seed-2048-x3-nrng-4-4bit" not in jobs


def test_round_3_plans_epochs_a_preference_stage_and_other_data():
    spec = load_spec(ROUND3)
    jobs = jobs_by_name(spec, Path("w"), Path("d"))
    # a checkpoint per epoch of one 6-epoch run stands for 4 and 5 epochs
    assert arg(jobs["generate-val-epoch-4"], "--epoch") == "4"
    assert jobs["generate-val-epoch-4"].after == ("train-epochs-6",)
    # the preference stage trains on the merged first stage, with pairs made from it
    dpo = jobs["train-dpo"]
    assert dpo.after == ("merge-ours", "pairs-ours-spin") and arg(dpo, "--data") == str(Path("w/pairs/ours-spin"))
    assert "base_model=w/runs/ours/merged" in sets_of(dpo)
    assert jobs["pairs-ours-spin"].argv[-4:] == ["--rule", "spin", "--n", "2000"]
    assert jobs["merge-ours"].after == ("train-ours",)
    # another data folder trains rows-all; every lever answers the same questions
    assert arg(jobs["train-rows-all"], "--data") == "data/medqa-all"
    assert {arg(j, "--data") for n, j in jobs.items() if n.startswith("generate-")} == {"d"}
    # the base model is asked in its own template unless a lever names a run's prompt
    assert "--base-prompt" not in jobs["generate-val-base-greedy"].argv
    stop = jobs["generate-val-ours-stop"]
    assert "--stop-on-loop" in stop.argv and arg(stop, "--max-new-tokens") == "256"
    assert "--no-stop-on-loop" in jobs["generate-val-ours"].argv


def test_round_4_trains_both_systems_on_every_row_and_answers_its_questions():
    spec = load_spec(ROUND4)
    assert spec.data == "data/medqa-all" and spec.work == Path("outputs/levers/round-4")
    assert load_spec(ROUND3).data == "data/medqa" and load_spec(SPEC).data == "data/medqa"  # the default
    jobs = jobs_by_name(spec, spec.work, Path(spec.data))
    ours, plain = jobs["train-epochs-5"], jobs["train-plain-epochs-5"]
    for run in (ours, plain):  # the same rows and the same schedule, a checkpoint at the end of every epoch
        assert arg(run, "--data") == "data/medqa-all"
        assert {"num_epochs=5", "saves_per_epoch=1", "save_steps=null"} <= set(sets_of(run))
    assert "sequence_len=2048" in sets_of(plain) and "micro_batch_size=8" in sets_of(plain)
    assert arg(jobs["generate-test-ours"], "--epoch") == "3" and arg(jobs["generate-test-ours"], "--n") == "1000"
    assert {arg(j, "--data") for n, j in jobs.items() if n.startswith("generate-")} == {"data/medqa-all"}


def test_the_reference_is_the_recipe_as_it_was():
    spec = load_spec(SPEC)
    assert spec.reference.set == {} and Path(spec.recipe).name == "before-round-1.yml"


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
        (lambda s: s["levers"].append({"name": "x", "about": "", "model": "base", "epoch": 2}), "epoch"),
        (lambda s: s["levers"].append({"name": "x", "about": "", "start": "nope"}), "start"),
        (
            lambda s: s["levers"].append({"name": "x", "about": "", "model": "reference", "compare_to": "y"}),
            "compare_to",
        ),
        (lambda s: s.update(choose={"greedy": "reference", "candidates": ["nope"]}), "choose"),
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
def test_driver_runs_a_preference_stage_answers_and_tabulates(tmp_path, tiny_run):
    """A round on CPU with a tiny model, every job a process of its own as on a GPU: the reference run already
    trained and answered (so neither again), a preference stage started from it (merge, self-play pairs, DPO with
    Axolotl), its answers, and the table. Decoding levers, the test split and the choice: the table test below; a
    lever that trains and one that answers from an earlier epoch: the plan tests above (the epoch's checkpoint:
    test_end_to_end)."""
    data = prepare_demo_data(tmp_path / "data", "--limit", "48")
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work / "runs" / "reference")  # as an earlier call of the driver left it
    spec = {
        "recipe": "recipes/smollm2-135m/qlora.yml",
        "split": "val",
        "n": 3,
        "train": {"sequence_len": 128, "eval_strategy": "no", "eval_steps": None, "test_datasets": None},
        "decode": {"max_new_tokens": 4, "batch_size": 4},
        "levers": [
            {"name": "reference", "about": "the recipe"},
            {
                "name": "dpo",
                "about": "preference stage",
                "recipe": "recipes/smollm2-135m/dpo.yml",
                "start": "reference",
                "pairs": 8,
                "rule": "spin",
                "set": {"num_epochs": 1, "save_strategy": "no"},
            },
        ],
    }
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(spec))
    # the reference's answers too, as an earlier call left them: its own job's command, run here
    [earlier] = [j for j in plan(load_spec(path), work, data) if j.name == "generate-val-reference"]
    assert earlier.argv[1:3] == ["-m", "medqa.cli.generate"]
    assert run_main("medqa/cli/generate.py", *earlier.argv[3:]).returncode == 0
    answered = earlier.done.read_text()
    result = run_main("eval/levers.py", "run", path, "--data", data, "--work", work, "--parallel", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    jobs = json.loads((work / "jobs.json").read_text())
    assert set(jobs) == {"merge-reference", "pairs-reference-spin", "train-dpo", "generate-val-dpo"}
    assert all(j["rc"] == 0 for j in jobs.values()) and earlier.done.read_text() == answered  # not answered again
    pairs = [json.loads(x) for x in (work / "pairs" / "reference-spin" / "train.jsonl").read_text().splitlines()]
    assert len(pairs) == 8 and set(pairs[0]) == {"id", "prompt", "chosen", "rejected", "rule"}
    dpo = load_recipe(work / "runs" / "dpo" / "recipe.yml")
    assert dpo["rl"] == "dpo" and dpo["base_model"] == str(work / "runs" / "reference" / "merged")
    assert (work / "runs" / "dpo" / "adapter_model.safetensors").is_file()
    meta = json.loads((work / "preds" / "val" / "dpo.meta.json").read_text())
    assert meta["run"] == str(work / "runs" / "dpo") and meta["n"] == 3

    out = tmp_path / "table" / "levers"
    result = run_main("eval/levers.py", "table", path, "--work", work, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    table = json.loads(out.with_suffix(".json").read_text())
    assert [r["name"] for r in table["rows"]] == ["reference", "dpo"] and not table["missing"]
    assert table["rows"][1]["compared_with"] == "reference" and table["rows"][1]["n"] == 3


def answers(path, predictions, questions=("What is asthma?", "What causes gout?", "Is flu spread by air?"), refs=True):
    """An answer file as eval/generate.py writes it, with these predictions (refs=False: questions without answers,
    as K-QA's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"q{i}", "question": q, "reference": f"{q.split()[-1][:-1]} is a common condition." if refs else "",
         "prediction": p}
        for i, (q, p) in enumerate(zip(questions, predictions, strict=True))
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_table_compares_each_lever_and_chooses_the_decoding_by_rule(tmp_path):
    """make levers' table from answer files: each lever paired with the reference (how many answers are the same),
    the decoding rule refusing a candidate that invents numbers more often than greedy decoding, and the test
    split tabled apart."""
    spec = {
        "recipe": "recipes/smollm2-135m/qlora.yml",
        "split": "val",
        "levers": [
            {"name": "reference", "about": "the recipe"},
            {"name": "rep", "about": "repetition penalty", "model": "reference", "decode": {"repetition_penalty": 1.3}},
            {"name": "sampled", "about": "sampling", "model": "reference", "decode": {"temperature": 0.7}},
        ],
        "choose": {"greedy": "reference", "candidates": ["reference", "rep", "sampled"], "max_loop_rate": 1.0},
        "test": {"n": 3, "levers": ["reference"]},
        "sets": [{"name": "kqa", "data": ["data/kqa"], "split": "val", "levers": ["rep"]}],  # no references
    }
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump(spec))
    work = tmp_path / "work"
    same = ["Asthma is a common condition.", "Gout is common.", "Flu is a common condition."]
    answers(work / "preds" / "val" / "reference.jsonl", same)
    answers(work / "preds" / "val" / "rep.jsonl", [same[0], "Gout is a common condition.", same[2]])
    answers(work / "preds" / "val" / "sampled.jsonl", ["Asthma affects 30 in 100 people.", *same[1:]])
    answers(work / "preds" / "test" / "reference.jsonl", same)
    answers(
        work / "preds" / "kqa" / "rep.jsonl",
        ["Yes. It spreads by droplets.", "It is", "Flu is common. " * 5],
        refs=False,
    )
    out = tmp_path / "table" / "levers"
    result = run_main("eval/levers.py", "table", path, "--work", work, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    table = json.loads(out.with_suffix(".json").read_text())
    rows = {r["name"]: r for r in table["rows"]}
    assert list(rows) == ["reference", "rep", "sampled"] and rows["reference"]["delta"] is None
    assert rows["rep"]["compared_with"] == "reference" and rows["rep"]["identical"] == 2
    assert rows["rep"]["decode"]["repetition_penalty"] == 1.3 and "invented_numbers" in rows["rep"]["delta"]
    assert rows["sampled"]["metrics"]["invented_numbers"]["mean"] == pytest.approx(1 / 3)
    verdicts = {v["name"]: v for v in table["choice"]["candidates"]}
    assert not verdicts["sampled"]["eligible"] and "invents numbers in 33.3% of answers" in verdicts["sampled"]["why"]
    assert verdicts["rep"]["eligible"] and table["choice"]["winner"] == "rep"  # the better ROUGE-L of the two left
    md = out.with_suffix(".md").read_text()
    assert "| rep | repetition penalty | reference |" in md and "Decoding chosen by rule" in md
    test = json.loads((tmp_path / "table" / "levers-test.json").read_text())
    assert [r["name"] for r in test["rows"]] == ["reference"] and "choice" not in test
    kqa = json.loads((tmp_path / "table" / "levers-kqa.json").read_text())  # K-QA's: questions without answers
    [row] = kqa["rows"]
    assert row["metrics"]["rougeL"]["mean"] is None and row["metrics"]["loop_rate"]["mean"] == pytest.approx(1 / 3)
    assert row["metrics"]["mid_sentence"]["mean"] == pytest.approx(1 / 3)  # "It is"
    assert "| rep | repetition penalty | – | – | – |" in (tmp_path / "table" / "levers-kqa.md").read_text()


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


SPEED_ON_A_GPU = {"bf16", "gradient_checkpointing"}  # the same maths, faster: set for a GPU since round 5
SAID_SINCE = {"bnb_config_kwargs"}  # Axolotl's default (double quantisation), written out since round 4


def measured(spec_path, lever_name):
    spec = load_spec(spec_path)
    lever = spec.lever(lever_name)
    job = jobs_by_name(spec)[f"train-{lever.name}"]
    data = Path(lever.data) if lever.data else None
    return resolve(REPO / spec.recipe, data=data, overrides=sets_of(job)).recipe, spec


def same_training(a: dict, b: dict, ignore=BOOKKEEPING) -> bool:
    keys = (set(a) | set(b)) - ignore
    return {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}


def test_recipe_is_the_lever_that_was_measured():
    """recipes/smollm2-135m/qlora.yml is round 5's reference, as it ships; it trains what round 4's chosen lever
    trained (every training row, 5 epochs) but for how the data reaches the model (Axolotl's own chat_template, the
    answer ended by the end-of-turn token alone) and settings with the same maths (AdamW unpaged, GPU speed); round 4
    started from what round 3 chose (every row), and round 3 from what round 2 chose."""
    assert load_spec(ROUND5).recipe == "recipes/smollm2-135m/qlora.yml" and not load_spec(ROUND5).train
    epochs_5, round_4 = measured(ROUND4, "epochs-5")
    recipe = load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml")
    data_path = {"datasets", "chat_template_jinja"}
    same_maths = {"optimizer", "plugins", "fp16", "evals_per_epoch", "saves_per_epoch", *LORA_KERNELS}
    assert same_training(epochs_5, recipe, BOOKKEEPING | SPEED_ON_A_GPU | SAID_SINCE | data_path | same_maths)
    assert epochs_5["optimizer"] == "paged_adamw_32bit" and recipe["optimizer"] == "adamw_torch_fused"
    assert recipe["num_epochs"] == 5 and recipe["datasets"][0]["type"] == "chat_template"
    assert recipe["bnb_config_kwargs"] == {"bnb_4bit_use_double_quant": True}  # what Axolotl's QLoRA loader does
    assert epochs_5["datasets"][0]["path"] == recipe["datasets"][0]["path"] == "data/medqa-all/train.jsonl"
    rows_all, round_3 = measured(ROUND3, "rows-all")
    assert same_training(rows_all, load_recipe(REPO / round_4.recipe), BOOKKEEPING | SPEED_ON_A_GPU | SAID_SINCE)
    round_2, _ = measured(SPEC, "seed-2048-x3")
    assert same_training(round_2, load_recipe(REPO / round_3.recipe))


def test_a_run_is_trained_only_while_answers_still_need_it(tmp_path):
    def touch(name, after=()):
        path = tmp_path / name
        return Job(name, [sys.executable, "-c", f"open({str(path)!r}, 'w')"], path, tuple(after))

    (tmp_path / "generate-a").touch()  # a's answers exist from an earlier call; its model is gone
    jobs = [touch("train-a"), touch("generate-a", ["train-a"]), touch("train-b"), touch("generate-b", ["train-b"])]
    record = run_jobs(jobs, tmp_path / "work", parallel=2, gpus=0)
    assert set(record) == {"train-b", "generate-b"}
    assert not (tmp_path / "train-a").exists() and (tmp_path / "generate-b").exists()
    assert run_jobs(jobs, tmp_path / "work", parallel=2, gpus=0) == {}  # called again, all finished: nothing starts


def test_each_job_is_recorded_as_it_ends(tmp_path):
    """jobs.json gets each job's record when it ends (a runner killed later keeps it); a job finished before this
    call (by an earlier runner, or by hand) is not recorded as this call's."""

    def touch(name):
        path = tmp_path / name
        return Job(name, [sys.executable, "-c", f"open({str(path)!r}, 'w')"], path)

    (tmp_path / "a").touch()  # a finished, its runner killed before it wrote the record
    work = tmp_path / "work"
    run_jobs([touch("a"), touch("b")], work, parallel=1, gpus=0)
    record = json.loads((work / "jobs.json").read_text())
    assert "a" not in record
    assert record["b"]["rc"] == 0 and record["b"]["seconds"] >= 0
    # killed as it wrote the record of the last job (found by the kill test): a call with nothing left to run still
    # removes the dead writer's temporary copy
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = work / f".jobs.json.tmp-{dead.stdout.strip()}-x1"
    leftover.write_text('{"a": ')
    assert run_jobs([touch("a"), touch("b")], work, parallel=1, gpus=0) == {}
    assert not leftover.exists() and set(json.loads((work / "jobs.json").read_text())) == {"b"}
    (work / "jobs.json").write_text('{"a": {"rc": 0')  # cut short by something else: one line, outputs kept
    with pytest.raises(UserError, match="jobs.json.*not valid JSON"):
        run_jobs([touch("a"), touch("b")], work, parallel=1, gpus=0)


def test_a_job_that_ran_out_of_gpu_memory_runs_again_with_fewer_beside_it(tmp_path, capsys):
    """A job that failed because the card was full of the others starts again once, and from then on one job fewer
    runs at a time; a job that failed for another reason is not started again."""
    script = (
        "import sys, pathlib; p = pathlib.Path(sys.argv[1]); tries = p.with_suffix('.tries'); "
        "n = int(tries.read_text()) + 1 if tries.exists() else 1; tries.write_text(str(n)); "
        "sys.exit(print('torch.OutOfMemoryError: CUDA out of memory.') or 1) if n == 1 and sys.argv[2] == 'oom' "
        "else sys.exit(1) if sys.argv[2] == 'bad' else p.touch()"
    )

    def job(name, how):
        path = tmp_path / name
        return Job(name, [sys.executable, "-c", script, str(path), how], path)

    jobs = [job("a", "oom"), job("b", "fine"), job("c", "bad")]
    record = run_jobs(jobs, tmp_path / "work", parallel=3, gpus=0)
    assert (tmp_path / "a").exists() and (tmp_path / "a.tries").read_text() == "2"  # again, once
    assert record["a"]["rc"] == 0 and record["c"]["rc"] == 1 and (tmp_path / "c.tries").read_text() == "1"
    assert "a ran out of GPU memory: again, " in capsys.readouterr().out


def test_a_job_waits_for_the_run_of_another_runner(tmp_path):
    """Two runners on one work folder, each with its own jobs (--only) and GPUs: generating waits for the other's
    training."""
    import threading

    marker = tmp_path / "train-b"
    train = Job("train-b", [sys.executable, "-c", f"import time; time.sleep(1); open({str(marker)!r}, 'w')"], marker)
    answer = tmp_path / "generate-b"
    generate = Job("generate-b", [sys.executable, "-c", f"open({str(answer)!r}, 'w')"], answer, ("train-b",))
    jobs = [train, generate]
    waiting = threading.Thread(target=run_jobs, args=(jobs, tmp_path / "w", 1, 0, 60, {"generate-b"}))
    waiting.start()
    time.sleep(0.5)
    assert not answer.exists()  # nothing to answer with yet
    run_jobs(jobs, tmp_path / "w", 1, 0, 60, {"train-b"})
    waiting.join(timeout=30)
    assert answer.exists() and not waiting.is_alive()


def test_more_question_sets_are_answered_and_tabled_apart(tmp_path):
    spec_path = tmp_path / "s.yml"
    spec_path.write_text(
        yaml.safe_dump(
            {
                "recipe": "recipes/smollm2-135m/qlora.yml",
                "levers": [{"name": "ref", "about": "r"}, {"name": "b", "about": "base", "model": "base"}],
                "sets": [
                    {"name": "people", "data": ["data/mediqa", "data/liveqa"], "split": "val"},
                    {"name": "people-test", "data": ["data/mediqa"], "split": "test", "levers": ["b"]},
                ],
            }
        )
    )
    spec = load_spec(spec_path)
    jobs = jobs_by_name(spec)
    people = jobs["generate-people-ref"].argv
    assert people[people.index("--data") + 1 : people.index("--split")] == ["data/mediqa", "data/liveqa"]
    assert "--n" not in people and arg(jobs["generate-people-ref"], "--out") == "w/preds/people/ref.jsonl"
    assert {n for n in jobs if n.startswith("generate-people-test")} == {"generate-people-test-b"}
    assert spec.answered("people") == ["ref", "b"] and spec.answered("people-test") == ["b"]
    bad = yaml.safe_load(spec_path.read_text())
    bad["sets"][1]["levers"] = ["nope"]
    spec_path.write_text(yaml.safe_dump(bad))
    with pytest.raises(UserError, match="set 'people-test': lever 'nope' is not in levers"):
        load_spec(spec_path)


def test_a_loss_of_must_have_statements_counts_as_any_other_loss():
    from medqa_lab.levers.table import verdict

    delta = {
        "must_have": {"mean": -0.10, "ci95": [-0.18, -0.02]},  # fewer physicians' statements, CI below 0
        "rougeL": {"mean": 0.02, "ci95": [0.01, 0.03]},
        "coverage": {"mean": -0.05, "ci95": [-0.12, 0.01]},  # across 0: not a loss
        "token_f1": {"mean": None, "ci95": [None, None]},  # a set without references
    }
    assert verdict(delta) == {"loses": ["must_have"], "gains": ["rougeL"]}
    assert verdict(None) == {"loses": [], "gains": []}
