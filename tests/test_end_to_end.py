"""A real Axolotl run on CPU: prepare data, 4-bit QLoRA a tiny Llama built here, killed and resumed, checkpoints,
adapter, answers, make eval's steps."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import EMBEDDED_MODEL, ENV, REPO, prepare_demo_data, run_main

from medqa.decoding import GenerationSettings
from medqa.generation import generate_answers
from medqa.inference import load_model
from medqa.prompts import IGNORE_INDEX
from medqa.runs import Run


def test_embedded_model_has_the_gguf_eos_and_pad():
    config = json.loads((EMBEDDED_MODEL / "config.json").read_text())
    tok_cfg = json.loads((EMBEDDED_MODEL / "tokenizer_config.json").read_text())
    assert config["eos_token_id"] == config["pad_token_id"] == 2
    assert tok_cfg["eos_token"] == tok_cfg["pad_token"] == "<|im_end|>"
    assert config["architectures"] == ["LlamaForCausalLM"] and config["num_hidden_layers"] == 30


@pytest.mark.slow
def test_prepare_train_checkpoint_load_generate(tmp_path, tiny_model):
    """Killed (SIGKILL) after its first checkpoint, the run resumes from its newest complete one and ends at the
    same step, keeping the history from before; a hub token in the environment is never printed or written; a
    finished run is never overwritten. Then the run is loaded, answers, and make eval's steps score it."""
    data, run = tmp_path / "data", tmp_path / "run"
    prepare_demo_data(data)
    args = [
        "scripts/finetune.py", "recipes/smollm2-135m/qlora.yml", "--data", data, "--output-dir", run,
        "--set", f"base_model={tiny_model}", "--set", "max_steps=4", "--set", "save_steps=2", "--set", "eval_steps=2",
        "--set", "logging_steps=1", "--set", "sequence_len=128",
    ]  # fmt: skip
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, env=ENV, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 600
    while not (run / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "adapter_model.safetensors").is_file()
    done = sorted(int(p.name.split("-")[1]) for p in run.glob("checkpoint-*") if (p / "trainer_state.json").is_file())
    before = json.loads((run / f"checkpoint-{done[-1]}" / "trainer_state.json").read_text())
    half = run / "checkpoint-3"  # a save the kill interrupted: weights written, state not
    half.mkdir(exist_ok=True)
    (half / "adapter_model.safetensors").write_bytes(b"partial")

    secret = "hf_medqaTestSecretNeverToBeWritten"
    with pytest.MonkeyPatch.context() as env:  # make finetune in this process; Axolotl's processes inherit the token
        env.setenv("HF_TOKEN", secret)
        result = run_main(*args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert secret not in result.stdout + result.stderr
    for path in run.rglob("*"):  # logs, recipe.yml, trainer state, TensorBoard events
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert f"resuming from {run / f'checkpoint-{done[-1]}'}" in result.stdout
    # quiet: the trainer's losses show, Axolotl's INFO log (its whole resolved config first) does not
    assert "'loss':" in result.stdout and '"base_model":' not in result.stdout + result.stderr
    after = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    history = {e["step"]: e["loss"] for e in after["log_history"] if "loss" in e}
    assert all(history[e["step"]] == e["loss"] for e in before["log_history"] if "loss" in e)  # kept
    again = run_main(*args)
    assert again.returncode == 2 and "holds a finished run" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    # checkpoints every save_steps, the final adapter, the resolved recipe, TensorBoard logs
    for step in (2, 4):
        assert (run / f"checkpoint-{step}" / "adapter_model.safetensors").is_file()
    assert (run / "adapter_model.safetensors").is_file() and (run / "adapter_config.json").is_file()
    assert list(run.rglob("events.out.tfevents.*"))
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert any("eval_loss" in e for e in state["log_history"])

    # the prompt travels with the run: plain transformers on the run's tokenizer gives, token for token, the
    # prompt of the examples Axolotl trained on (read back from its prepared dataset)
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(run)
    questions = [json.loads(line)["question"] for s in ("train", "val") for line in open(data / f"{s}.jsonl")]
    for info in (run / "prepared").glob("*/dataset_info.json"):  # the training and the validation set
        example = load_from_disk(str(info.parent))[0]
        n = example["labels"].index(next(t for t in example["labels"] if t != IGNORE_INDEX))
        question = next(q for q in questions if q in saved.decode(example["input_ids"][:n]))
        user = [{"role": "user", "content": question}]
        assert saved.apply_chat_template(user, add_generation_prompt=True)["input_ids"] == example["input_ids"][:n]

    # the run folder is enough to load the model the way it was trained, and to generate
    loaded = Run.open(run)
    assert loaded.base_model == str(tiny_model)
    adapter_cfg = json.loads((run / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 64 and adapter_cfg["lora_alpha"] == 16
    model, tok = load_model(loaded.base_model, loaded.adapter)
    questions = ["What is asthma?", "How is flu spread between people in a household?"]
    answers = generate_answers(model, tok, questions, GenerationSettings(max_new_tokens=6), progress=False)
    assert len(answers) == 2 and all(isinstance(a.text, str) and 1 <= a.new_tokens <= 6 for a in answers)
    # an earlier checkpoint, named by the epoch the trainer saved it at (a lever's `epoch:`, generate --epoch)
    epoch = json.loads((run / "checkpoint-2" / "trainer_state.json").read_text())["epoch"]
    assert epoch < state["epoch"] and loaded.epoch_adapter(epoch) == run / "checkpoint-2"
    earlier = run_main("eval/generate.py", run, "--epoch", f"{epoch:g}", "--n", "2", "--max-new-tokens", "3",
                       "--no-perplexity", "--out", tmp_path / "epoch.jsonl")  # fmt: skip
    assert earlier.returncode == 0, earlier.stderr[-2000:]
    assert json.loads((tmp_path / "epoch.meta.json").read_text())["model"].endswith("checkpoint-2")

    # make eval's steps on the same run: generate with both models, score the paired difference, report
    ev = tmp_path / "eval"
    for which in ("base", "tuned"):
        result = run_main(
            "eval/generate.py",
            run,
            "--model",
            which,
            "--n",
            "3",
            "--max-new-tokens",
            "5",
            "--out",
            ev / f"{which}.jsonl",
        )
        assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (ev / "tuned.jsonl").read_text().splitlines()]
    fields = {
        "id",
        "question",
        "reference",
        "prediction",
        "new_tokens",
        "hit_max_new_tokens",
        "stop",
        "model",
        "settings",
    }
    assert len(rows) == 3 and set(rows[0]) == fields
    assert rows[0]["settings"]["prompt"] == "run" and rows[0]["settings"]["weights"] == "merged"
    assert math.isfinite(json.loads((ev / "tuned.meta.json").read_text())["reference_perplexity"])
    result = run_main("eval/score.py", ev / "tuned.jsonl", "--baseline", ev / "base.jsonl", "--out", ev)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["n"] == 3 and set(metrics["delta"]) == set(metrics["metrics"])
    # beside it, people's questions: a set with its own splits and several reference answers a question
    people = tmp_path / "people.csv"
    people.write_text(
        "question,answer,answers_judged_correct,split\n"
        + "".join(
            f'"my son has a cough for {i} days, is it asthma?","A cough alone is rarely asthma.",'
            f'"[""A cough alone is rarely asthma."", ""See a doctor if it lasts {i} weeks.""]",{s}\n'
            for i, s in enumerate(["train"] * 4 + ["validation", "test", "test"])
        )
    )
    assert (
        run_main(
            "scripts/prepare_data.py",
            people,
            "--out",
            tmp_path / "people",
            "--split-column",
            "split",
            "--references-column",
            "answers_judged_correct",
        ).returncode
        == 0
    )
    pv = tmp_path / "people-eval"
    for which in ("base", "tuned"):
        args = ("--model", which, "--data", tmp_path / "people", data, "--split", "test", "--max-new-tokens", "5")
        result = run_main("eval/generate.py", run, *args, "--no-perplexity", "--out", pv / f"{which}.jsonl")
        assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (pv / "tuned.jsonl").read_text().splitlines()]
    assert [r["id"].split("/")[0] for r in rows] == ["people"] * 2 + [data.name] * (len(rows) - 2)
    assert len(rows[0]["references"]) == 2 and "references" not in rows[-1]
    assert run_main("eval/score.py", pv / "tuned.jsonl", "--baseline", pv / "base.jsonl", "--out", pv).returncode == 0
    result = run_main("eval/report.py", ev, pv, "--run", run)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"report.md", "metrics.png", "loss.png", "lengths.png"} <= {p.name for p in (ev / "report").iterdir()}
    summary = (run / "eval" / "report.md").read_text()
    assert summary.count("| metric | base | tuned |") == 2 and "| near_empty |" in summary
    # how the answers end, for base and tuned alike, each with its CI: a table a set
    assert summary.count("| how the answer ends | base [95% CI] | tuned [95% CI] | delta [95% CI] |") == 2
    assert "| ends mid-sentence |" in summary and "Decoding, base and tuned alike: greedy, at most" in summary
