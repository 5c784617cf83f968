"""make gguf (scripts/export_gguf.py): the merged model as a GGUF by llama.cpp's own converter, its chat template and
end-of-turn token in the metadata, an Ollama Modelfile and a README; read back by transformers and run by llama.cpp
(llama-cpp-python) in chat mode, both answering as the merged model does; bad input is one line and writes nothing."""

import copy
import json

import pytest
from conftest import prepare_demo_data, run_main
from test_damage import snapshot

from medqa.decoding import GenerationSettings
from medqa.gguf import TYPES, modelfile, ollama_template


def gguf_run(tmp_path, tiny_run):
    """The tiny run with its data: the demo set's test questions, which --check answers."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    data = prepare_demo_data(tmp_path / "data")
    recipe = (run / "recipe.yml").read_text()
    (run / "recipe.yml").write_text(recipe.replace("data/medqa-all/train.jsonl", str(data / "train.jsonl"), 1))
    return run


@pytest.mark.slow
def test_a_gguf_that_answers_as_the_merged_model_does(tmp_path, tiny_run):
    """f16 checked against the merged model in both runtimes (--check); q8_0, the converter's other path, answered
    by llama.cpp in chat mode (its quantised kernels: see the AMX test below)."""
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    run = gguf_run(tmp_path, tiny_run)
    infos = {}
    for quant, check in (("f16", ["--check", "2", "--check-tokens", "16"]), ("q8_0", [])):
        out = tmp_path / f"gguf-{quant}"
        result = run_main("scripts/export_gguf.py", run, "--quant", quant, "--out", out, *check)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        merged = AutoTokenizer.from_pretrained(run / "merged")  # make merge's, written by the first export
        info = infos[quant] = json.loads((out / "gguf.json").read_text())
        gguf = out / info["file"]
        assert info["type"] == quant and gguf.is_file() and info["bytes"] == gguf.stat().st_size
        metadata = Llama(str(gguf), vocab_only=True, verbose=False).metadata  # what llama.cpp reads from the file
        assert metadata["tokenizer.chat_template"] == merged.chat_template  # the run's training prompt travels
        assert int(metadata["tokenizer.ggml.eos_token_id"]) == merged.eos_token_id
        assert (out / "Modelfile").read_text() == modelfile(info["file"], merged, GenerationSettings())
        assert "ollama create" in (out / "README.md").read_text() and "llama-cli" in (out / "README.md").read_text()
    assert infos["q8_0"]["bytes"] < infos["f16"]["bytes"] and "check" not in infos["q8_0"]
    f16 = infos["f16"]["check"]
    assert f16["questions"] == 2 and f16["tokens"] > 0
    for runtime in ("transformers", "llama.cpp"):  # at f16 the same answers, word for word
        assert f16[runtime] == {"identical": 2, "tokens_agreeing": f16["tokens"]}, f16
    examples = json.loads((tmp_path / "gguf-f16" / "check.json").read_text())["examples"]
    assert [e["merged"] for e in examples] == [e["llama.cpp"] for e in examples] and examples[0]["merged"]
    q8 = Llama(str(tmp_path / "gguf-q8_0" / infos["q8_0"]["file"]), n_ctx=512, verbose=False, seed=0)
    reply = q8.create_chat_completion([{"role": "user", "content": examples[0]["question"]}], temperature=0.0,
                                      top_k=1, max_tokens=16)["choices"][0]  # fmt: skip
    assert reply["message"]["content"].strip() and reply["finish_reason"] in ("stop", "length")


def test_llama_cpp_is_built_without_its_amx_kernels():
    """make setup builds llama.cpp without AMX: its AMX matrix kernels crash on q8_0 and k-quant weights
    (ggml-org/llama.cpp#20824). A .venv from before that still has them: `rm .venv/.installed && make setup`."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    assert "CPU :" in info, info
    assert "AMX_INT8 = 1" not in info, f"llama.cpp has its AMX kernels: rm .venv/.installed && make setup ({info})"


def test_the_ollama_template_is_the_runs_prompt(tokenizer):
    from medqa import prompts

    tokenizer = copy.deepcopy(tokenizer)  # the session's tokenizer is shared: its template stays as it is
    tokenizer.chat_template = open("recipes/templates/llama2-seed.jinja").read()
    template = ollama_template(tokenizer)
    before_answer = prompts.answer_frame(tokenizer)[0]  # what the training text puts between prompt and answer
    assert template.replace("{{ .Prompt }}", "What is gout?") == prompts.prompt_text(tokenizer, "What is gout?") + (
        before_answer
    )
    text = modelfile("m-f16.gguf", tokenizer, GenerationSettings())
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0" in text and "FROM ./m-f16.gguf" in text


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("unknown type", "'q3' is not a GGUF type make gguf writes (one of " + ", ".join(TYPES) + ")"),
        ("unfinished run", "has not finished"),
        ("read-only output", "cannot write here (a read-only filesystem, or no permission): gguf"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(case, problem, tmp_path, tiny_run):
    import shutil
    import subprocess

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    out, quant = run / "gguf", "q3" if case == "unknown type" else "f16"
    if case == "unfinished run":
        (run / "adapter_model.safetensors").unlink()
    if case == "read-only output":
        out = tmp_path / "ro" / "gguf"
        out.parent.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(out.parent)],
                              capture_output=True)  # fmt: skip
        if made.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        before = snapshot(tmp_path)
        result = run_main("scripts/export_gguf.py", run, "--quant", quant, "--out", out)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
        assert problem in result.stderr and "Traceback" not in result.stderr
        assert snapshot(tmp_path) == before
        assert not out.exists() or not any(out.iterdir())
    finally:
        if case == "read-only output":
            subprocess.run(["umount", "-l", str(out.parent)], capture_output=True)
