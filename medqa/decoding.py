"""Decoding settings: the one place each option lives. Every command that generates (`make eval`, `make ask`, `make
demo`, preference pairs, the lever runner, the bench) takes its options from `GenerationSettings`: its command-line
options come from the fields (add_arguments, with a command's own defaults where it needs them), the lever runner's
argument lists go back the other way (to_arguments), and `make merge` writes what transformers can say of them as
the merged model's generation config."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

NGRAM_SCOPES = ("all", "answer")
CACHES = ("auto", "static", "dynamic")
COMPILES = ("inductor", "cudagraphs", "off")


def _batch(value: str | int) -> str | int:
    if value == "auto":
        return value
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'auto' or a whole number, got {value!r}") from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {size}")
    return size


@dataclass
class GenerationSettings:
    """The decoding a model ships with and `make eval` scores: what `make merge` writes as the merged model's
    generation_config.json, `make gguf` as the Ollama Modelfile's parameters, and `make ask` answers with. Every
    field that changes an answer is one that transformers' `generate`, llama.cpp, Ollama and vLLM read, so that the
    answers scored are those users get; `stop_on_loop` (this project's own cut) is a diagnosis, off by default."""

    max_new_tokens: int = field(default=256, metadata={"help": "cap on the tokens of an answer"})
    repetition_penalty: float = field(default=1.0, metadata={"help": "transformers' repetition_penalty (1: off)"})
    no_repeat_ngram_size: int = field(
        default=0, metadata={"help": "no n-gram of this size may repeat (0: off); see --ngram-scope"}
    )
    ngram_scope: str = field(
        default="answer",
        metadata={
            "help": "where no_repeat_ngram_size looks: 'answer' (its own tokens) or 'all' (transformers': the "
            "question's too, so a subject of n tokens or more cannot be written out)",
            "choices": NGRAM_SCOPES,
        },
    )
    temperature: float = field(
        default=0.0,
        metadata={"help": "0: greedy; above 0: sampled at this temperature (seeded), e.g. for preference pairs"},
    )
    stop_on_loop: bool = field(
        default=False,
        metadata={
            "help": "diagnosis only: end an answer where it starts to loop and keep what came before (medqa.loops); "
            "no runtime that users have does this, so the answers scored would not be theirs"
        },
    )
    batch_size: int | str = field(
        default="auto",
        metadata={"help": "answers per batch; 'auto': the largest that fits the GPU's free memory (48 on a CPU)"},
    )
    cache: str = field(
        default="auto",
        metadata={
            "help": "KV cache: 'static' pads every batch to one shape so that a GPU compiles the decoding step "
            "once; 'dynamic' grows, no compilation; 'auto': static on a GPU",
            "choices": CACHES,
        },
    )
    compile: str = field(
        default="inductor",
        metadata={
            "help": "how a GPU runs the static cache's decoding step: 'inductor' (transformers' default: compiled "
            "kernels in CUDA graphs, kept in a compile cache that outlives the process), 'cudagraphs' (the eager "
            "kernels in CUDA graphs: nothing to compile; measured on SmolLM2 only, results/bench/2026-11-30), 'off'",
            "choices": COMPILES,
        },
    )

    def __post_init__(self):
        if self.compile not in COMPILES:
            raise ValueError(f"compile must be one of {COMPILES}, got {self.compile!r}")
        if self.ngram_scope not in NGRAM_SCOPES:
            raise ValueError(f"ngram_scope must be one of {NGRAM_SCOPES}, got {self.ngram_scope!r}")
        if self.cache not in CACHES:
            raise ValueError(f"cache must be one of {CACHES}, got {self.cache!r}")
        self.batch_size = _batch(self.batch_size)

    def resolved_cache(self, device_type: str) -> str:
        if self.cache == "auto":
            return "static" if device_type == "cuda" else "dynamic"
        return self.cache


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, defaults: GenerationSettings | None = None) -> None:
    """One command-line option per GenerationSettings field (--max-new-tokens, --stop-on-loop / --no-stop-on-loop,
    ...)."""
    defaults = defaults or GenerationSettings()
    group = parser.add_argument_group("decoding (medqa.decoding.GenerationSettings)")
    for f in dataclasses.fields(GenerationSettings):
        default = getattr(defaults, f.name)
        kwargs = {"default": default, "help": f"{f.metadata['help']} (default: {default})", "dest": f.name}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.name == "batch_size":
            kwargs["type"] = _batch
        else:
            kwargs["type"] = type(default)
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        group.add_argument(_option(f.name), **kwargs)


def from_arguments(args: argparse.Namespace) -> GenerationSettings:
    return GenerationSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(GenerationSettings)})


def to_arguments(settings: GenerationSettings) -> list[str]:
    """The command-line options that give `settings` (the inverse of add_arguments + from_arguments)."""
    argv = []
    for f in dataclasses.fields(GenerationSettings):
        value = getattr(settings, f.name)
        if isinstance(value, bool):
            argv.append(_option(f.name) if value else "--no-" + f.name.replace("_", "-"))
        else:
            argv += [_option(f.name), str(value)]
    return argv


def describe_decoding(settings: GenerationSettings) -> str:
    """The decoding in words: what decides the answers (not the batch size, the cache or how it compiles)."""
    words = [f"sampled at temperature {settings.temperature}" if settings.temperature else "greedy"]
    words.append(f"at most {settings.max_new_tokens} new tokens")
    if settings.repetition_penalty != 1.0:
        words.append(f"repetition_penalty {settings.repetition_penalty}")
    if settings.no_repeat_ngram_size:
        words.append(f"no_repeat_ngram_size {settings.no_repeat_ngram_size} ({settings.ngram_scope})")
    if settings.stop_on_loop:
        words.append("ended where an answer starts to loop (stop_on_loop)")
    return ", ".join(words)


def generation_config(settings: GenerationSettings, tokenizer, bos_token_id: int | None = None):
    """The settings as a transformers GenerationConfig, as far as one can say them: greedy, the cap, the repetition
    penalty, an n-gram rule that counts the prompt (ngram_scope "all"), the end at the end-of-turn token. An
    answer-only n-gram rule and stop_on_loop need generate_answers. No stop strings: `generate` reads them only with
    a tokenizer passed in, and fails without one."""
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=settings.temperature > 0,
        temperature=settings.temperature if settings.temperature > 0 else None,
        max_new_tokens=settings.max_new_tokens,
        repetition_penalty=settings.repetition_penalty,
        no_repeat_ngram_size=settings.no_repeat_ngram_size if settings.ngram_scope == "all" else 0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=bos_token_id,
    )
