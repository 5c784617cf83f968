"""make benchmark: lm-evaluation-harness itself on the leaderboard's sets. Offline, the tasks in eval/tasks/ build the
very prompt, options and answer that lm-eval's stock tasks build from the Hub's rows; the scores are lm-eval's own;
the comparison (paired difference, majority, one-option preference) is checked on made-up samples; and the command
runs on the tiny model with a LIMIT, as a user runs it, into the card's model-index."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ENV, REPO, run_main, run_script

from medqa import benchmark
from medqa.errors import UserError

DATA = REPO.parent / "shared" / "data" / "benchmarks"
FILES = {"medqa_4options": "medqa_4options", "medmcqa": "medmcqa", "pubmedqa": "pubmedqa"}
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"benchmark sets not found at {DATA}")


def hub_row(task: str, row: dict) -> dict:
    """The row as the Hub dataset of lm-eval's stock task holds it (its published schema)."""
    options = [row["options"][k] for k in sorted(row["options"])]
    index = sorted(row["options"]).index(row["answer"])
    if task == "medqa_4options":  # GBaker/MedQA-USMLE-4-options-hf
        return {"sent1": row["question"], **{f"ending{i}": o for i, o in enumerate(options)}, "label": index}
    if task == "medmcqa":  # medmcqa
        return {"question": row["question"], **dict(zip(("opa", "opb", "opc", "opd"), options, strict=True)),
                "cop": index}  # fmt: skip
    if task == "pubmedqa":  # bigbio/pubmed_qa: the abstract's sections (here one), and the decision
        return {"QUESTION": row["question"], "CONTEXTS": [row["context"]], "final_decision": options[index]}
    return {"question": row["question"], "subject": row["subject"], "choices": options, "answer": index}  # cais/mmlu


def first_row(task: str) -> dict:
    name = FILES.get(task, "mmlu_medical")
    for line in (DATA / f"{name}.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] == "test" and row.get("subject", task.removeprefix("mmlu_")) == task.removeprefix("mmlu_"):
            return row
    raise AssertionError(task)


@needs_data
@pytest.mark.parametrize("task", benchmark.TASKS)
def test_offline_task_builds_what_the_stock_task_builds(task):
    """The prompt (description included), the options and the right answer of the offline task, for a row of the
    file, are those of lm-eval's stock task, by its own doc_to_text/doc_to_choice/doc_to_target, for that row as
    the Hub holds it."""
    from lm_eval.tasks import get_task_dict
    from lm_eval.utils import apply_template

    stock = benchmark.task_manager(hub=True)._get_config(task)  # lm-eval's own index and YAML, its functions loaded
    [local] = get_task_dict(benchmark.task_configs([task], hub=False), benchmark.task_manager(hub=False)).values()
    row = first_row(task)
    doc = next(d for d in local.test_docs() if d["question"] == row["question"])
    hub = hub_row(task, row)

    def apply(field, d):
        value = stock[field]
        if callable(value):
            return value(d)
        if isinstance(value, list):
            return value
        return apply_template(value, d) if "{{" in value else d[value]

    assert local.fewshot_context(doc, num_fewshot=0) == stock.get("description", "") + apply("doc_to_text", hub)
    assert local.doc_to_choice(doc) == apply("doc_to_choice", hub)
    assert local.doc_to_target(doc) == apply("doc_to_target", hub)
    assert local.config.metric_list == stock["metric_list"] and local.OUTPUT_TYPE == stock["output_type"]


@needs_data
def test_offline_tasks_hold_the_leaderboard_sets():
    from lm_eval.tasks import get_task_dict

    tasks = get_task_dict(benchmark.task_configs(list(benchmark.TASKS), hub=False), benchmark.task_manager(hub=False))
    sizes = {name: len(task.test_docs()) for name, task in tasks.items()}
    stock = {name: b.questions for name, b in benchmark.BENCHMARKS.items()}
    assert sizes == {**stock, "medmcqa": 2816}  # the file holds 2,816 of MedMCQA's 4,183 validation questions


def test_task_configs_say_what_is_missing(tmp_path):
    with pytest.raises(UserError, match="medqa_4options.jsonl: no such file"):
        benchmark.task_configs(["medqa_4options"], tmp_path, hub=False)
    with pytest.raises(UserError, match="no offline task config"):
        benchmark.task_configs(["hellaswag"], tmp_path, hub=False)
    assert benchmark.task_configs(["hellaswag"], hub=True) == ["hellaswag"]  # online: any stock task by name


def write_samples(folder: Path, task: str, rows: list[tuple[int, int]], choices=("A", "B", "C", "D")) -> Path:
    """lm-eval's per-question output for (right option, picked option) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (target, pick) in enumerate(rows):
        scores = [[-5.0, False] for _ in choices]
        scores[pick] = [-1.0, True]
        lines.append(json.dumps({
            "doc_id": i, "target": choices[target] if choices[0] == "yes" else target,
            "arguments": [["Question: ...\nAnswer:", f" {c}"] for c in choices],
            "filtered_resps": scores, "acc": float(target == pick),
        }))  # fmt: skip
    (folder / f"samples_{task}.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "results.json").write_text(json.dumps({"results": {task: {"acc_stderr,none": 0.01}}}))
    return folder


def test_summary_pairs_questions_and_reads_majority(tmp_path):
    """Tuned minus base paired by question; always answering the commonest right option as the floor; a model that
    picks one option for nearly every question is named as such."""
    targets = [0] * 60 + [1] * 20 + [2] * 10 + [3] * 10  # A is right 60% of the time
    base = write_samples(tmp_path / "base", "t", [(t, 0) for t in targets])  # always A
    tuned = write_samples(tmp_path / "tuned", "t", [(t, t if i % 2 else 0) for i, t in enumerate(targets)])
    summary = benchmark.task_summary("t", {"base": base, "tuned": tuned})
    assert summary["majority"] == {"answer": "A", "acc": 0.6} and summary["chance"] == 0.25
    b, t = summary["models"]["base"], summary["models"]["tuned"]
    assert b["acc"] == 0.6 and b["like_majority"] and b["commonest_answer"] == {"answer": "A", "share": 1.0}
    assert t["acc"] == 0.8 and not t["like_majority"]  # right on every other question it got wrong before
    assert t["delta"]["mean"] == pytest.approx(0.2) and t["delta"]["ci95"][0] > 0
    meta = {"run": "r", "lm_eval": "0.4.11", "source": "s", "limit": None, "models": ["base", "tuned"]}
    report = benchmark.report({**meta, "timing": {}, "tasks": [summary]})
    assert "t, base: A for 100.0% of the questions" in report and "t, base: 60.0% against 60.0%" in report


def test_summary_reads_answers_given_as_words(tmp_path):
    """PubMedQA's target is the option's text (yes, no, maybe), not its index."""
    rows = [(0, 0), (1, 0), (2, 2), (0, 1)]
    folder = write_samples(tmp_path / "m", "p", rows, choices=("yes", "no", "maybe"))
    summary = benchmark.task_summary("p", {"m": folder})
    assert summary["chance"] == pytest.approx(1 / 3, abs=1e-4) and summary["majority"]["answer"] == "yes"
    assert summary["models"]["m"]["acc"] == 0.5


def test_damaged_samples_are_one_line(tmp_path):
    folder = write_samples(tmp_path / "m", "t", [(0, 0), (1, 1)])
    (folder / "samples_t.jsonl").write_text('{"doc_id": 0, "target": 0}\n')
    with pytest.raises(UserError, match="line 1 is not one of lm-eval's samples"):
        benchmark.task_summary("t", {"m": folder})


@needs_data
def test_scores_are_lm_evals_own(tiny_model):
    """The same model through make benchmark's path (a loaded model, memoised tokenizing) and through lm-eval as
    its command line loads it (a model path): the same log-likelihoods for every option of every question."""
    from lm_eval import simple_evaluate
    from transformers import AutoModelForCausalLM, AutoTokenizer

    configs = benchmark.task_configs(["pubmedqa", "mmlu_anatomy"], hub=False)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)
    ours = benchmark.evaluate(model, tokenizer, configs, limit=3, batch_size=4)
    theirs = simple_evaluate(model="hf", model_args=f"pretrained={tiny_model},device=cpu", tasks=configs, limit=3,
                             batch_size=4, log_samples=True, task_manager=benchmark.task_manager(hub=True))  # fmt: skip
    for task in ("pubmedqa", "mmlu_anatomy"):
        a = [r[0] for s in ours["samples"][task] for r in s["filtered_resps"]]
        b = [r[0] for s in theirs["samples"][task] for r in s["filtered_resps"]]
        assert len(ours["samples"][task]) == 3 and a == pytest.approx(b, abs=1e-4)
        assert ours["results"][task]["acc,none"] == theirs["results"][task]["acc,none"]


@needs_data
def test_make_benchmark_on_a_limit(tmp_path, tiny_run):
    """The command as make runs it: killed once the base is scored, it keeps the base's folder whole and nothing
    else; run again, it scores the tuned model only; lm-eval's files are kept per model, the report and summary
    written, a third run finds the work done, and the card carries the scores as a model-index."""
    import signal

    from test_interrupt import assert_stopped, interrupt, temporary

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    out = run / "benchmark"
    args = ("eval/benchmark.py", run, "--tasks", "medqa_4options,pubmedqa", "--limit", "3")
    stopped = interrupt(args, "scored", tmp_path, signal.SIGTERM)  # stopped once the base is scored
    assert_stopped(stopped, signal.SIGTERM)
    assert (out / "base" / "results.json").is_file() and not (out / "tuned").exists()
    assert not (out / "summary.json").exists() and not temporary(out)

    result = run_script(*args)  # a new process, as make starts it: quiet from its start
    assert result.returncode == 0, result.stderr[-3000:]
    assert "base: already scored" in result.stdout and "tuned: 2 tasks" in result.stdout
    assert "Traceback" not in result.stderr and "it/s" not in result.stderr  # no bars unless VERBOSE=1
    for model in ("base", "tuned"):
        assert {p.name for p in (out / model).iterdir()} == {
            "results.json", "benchmark.json", "samples_medqa_4options.jsonl", "samples_pubmedqa.jsonl"}  # fmt: skip
        assert len((out / model / "samples_pubmedqa.jsonl").read_text().splitlines()) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert [t["task"] for t in summary["tasks"]] == ["medqa_4options", "pubmedqa"] and summary["limit"] == 3
    assert "delta" in summary["tasks"][0]["models"]["tuned"]
    assert "**LIMIT 3" in (out / "report.md").read_text()

    again = run_main(*args)
    assert again.returncode == 0 and again.stdout.count("already scored") == 2, again.stderr[-2000:]

    from medqa.publish import model_card
    from medqa.runs import Run

    card = model_card(Run.open(run), merged=True)
    meta = yaml.safe_load(card.split("---")[1])
    [entry] = meta["model-index"]
    assert [r["dataset"]["type"] for r in entry["results"]] == ["GBaker/MedQA-USMLE-4-options-hf", "bigbio/pubmed_qa"]
    assert entry["results"][1]["metrics"][0]["value"] == summary["tasks"][1]["models"]["tuned"]["acc"]
    assert "## Benchmarks" in card

    missing = run_main("eval/benchmark.py", run, "--data", tmp_path / "nowhere", "--out", tmp_path / "b2")
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "b2").exists()


@needs_data
def test_axolotl_lm_eval_plugin_runs_the_offline_tasks(tmp_path, tiny_model):
    """A recipe asks for the benchmark after training with Axolotl's own plugin keys; offline its task list names
    eval/tasks/ (or one of its files). The plugin's own command, with a limit, runs them."""
    import subprocess
    import sys

    from axolotl.integrations.lm_eval.cli import build_lm_eval_command

    from medqa.recipe import load_recipe, validate

    keys = {"plugins": ["axolotl.integrations.lm_eval.LMEvalPlugin"], "lm_eval_tasks": ["eval/tasks"],
            "lm_eval_batch_size": 2, "lm_eval_model": str(tiny_model)}  # fmt: skip
    validate({**load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml"), **keys})
    with pytest.raises(UserError, match="lm_eval_task"):
        validate({**load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml"), **keys, "lm_eval_task": ["x"]})
    [command] = build_lm_eval_command(["eval/tasks/pubmedqa.yaml"], bfloat16=True, output_dir=str(tmp_path),
                                      batch_size=2, model=str(tiny_model))  # fmt: skip
    assert command[0] == "lm_eval"
    command = [str(Path(sys.executable).with_name("lm_eval")), *command[1:], "--limit", "2", "--device", "cpu"]
    done = subprocess.run(command, cwd=REPO, env={**ENV, "TQDM_DISABLE": "1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    [results] = (tmp_path / "lm_eval_results").rglob("results_*.json")
    assert json.loads(results.read_text())["n-samples"]["pubmedqa"] == {"original": 500, "effective": 2}
