"""Decoding: the settings every tool answers with (`make eval`, `make ask`, `make demo`, the merged model's generation
config, the lever study, the bench), their command-line options, and batched greedy answers.

`GenerationSettings` is the one place a decoding option lives: the command-line options of eval/generate.py, the
argument lists the lever runner writes and the generation config of `make merge` are derived from its fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from medqa import prompts
from medqa.loops import cut_loop, loop_stop

NGRAM_SCOPES = ("all", "answer")
CACHES = ("auto", "static", "dynamic")
COMPILES = ("inductor", "cudagraphs", "off")
CPU_BATCH = 48  # batch_size "auto" on the CPU: the base model, 48 answers in 89 s on 2 cores (SmolLM2 README)
MAX_AUTO_BATCH = 512


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
    """Greedy decoding with `make eval`'s defaults, chosen on the validation split by the lever study
    (recipes/smollm2-135m/README.md, "Decoding"): the decoding with the best ROUGE-L among those that invent no more
    numbers than plain greedy decoding and keep loops under 5%."""

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
        default=True,
        metadata={"help": "end an answer where it starts to loop and keep what came before (medqa.loops)"},
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
            "kernels in CUDA graphs: nothing to compile), 'off'",
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

    @property
    def processors(self) -> bool:
        """Whether anything but plain greedy decoding runs at each step."""
        return bool(self.no_repeat_ngram_size) or self.repetition_penalty != 1.0 or self.stop_on_loop


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, defaults: GenerationSettings | None = None) -> None:
    """One command-line option per GenerationSettings field (--max-new-tokens, --stop-on-loop / --no-stop-on-loop,
    ...)."""
    defaults = defaults or GenerationSettings()
    group = parser.add_argument_group("decoding (medqa.generation.GenerationSettings)")
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


@dataclass
class Answer:
    text: str
    new_tokens: int  # generated tokens, the end-of-turn token included
    stop: str  # "end": the model ended it; "loop": cut where it started to loop; "length": max_new_tokens

    @property
    def hit_max_new_tokens(self) -> bool:
        return self.stop == "length"


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    layers = config.num_hidden_layers
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * layers * heads * head_dim * dtype_bytes


def auto_batch_size(model, rows: int, prompt_len: int, max_new_tokens: int, margin: float = 0.10) -> int:
    """The largest batch whose KV cache and working memory fit what the GPU has free (the per-process cap of
    torch.cuda.set_per_process_memory_fraction counted), less a margin; then evened out so that the last batch is
    not mostly padding. On the CPU: CPU_BATCH."""
    import math

    import torch

    if model.device.type != "cuda":
        return min(CPU_BATCH, max(rows, 1))
    device = model.device
    free, total = torch.cuda.mem_get_info(device)
    allocated = torch.cuda.memory_allocated(device)
    available = free + torch.cuda.memory_reserved(device) - allocated  # the driver's free memory + PyTorch's spare pool
    fraction = getattr(torch.cuda, "get_per_process_memory_fraction", lambda _: 1.0)(device)  # torch >= 2.8
    available = min(available, fraction * total - allocated)
    config = model.config
    dtype_bytes = torch.finfo(model.dtype).bits // 8
    length = prompt_len + max_new_tokens
    per_row = kv_bytes_per_token(config, dtype_bytes) * length
    # the prefill's activations (MLP, attention scores over the static cache in fp32) and the fp32 logits
    per_row += prompt_len * (config.intermediate_size * 3 + config.hidden_size * 4) * dtype_bytes
    per_row += config.num_attention_heads * prompt_len * length * 4
    per_row += config.vocab_size * 4 * 4
    fits = int(max(available * (1 - margin) - 1.5 * 2**30, 0) // per_row)
    fits = max(1, min(fits, MAX_AUTO_BATCH, rows))
    return math.ceil(rows / math.ceil(rows / fits))


def generate_answers(
    model,
    tokenizer,
    questions: list[str],
    settings: GenerationSettings | None = None,
    progress: bool = True,
    log=print,
    stats: dict | None = None,
) -> list[Answer]:
    """Greedy answers in the order of `questions`, each asked with the tokenizer's chat template; batches are
    formed from prompts of similar length. An answer ends at the end-of-turn token, or at the template's stop
    text where the end is plain text (medqa.prompts.stop_text), or where it starts to loop (stop_on_loop).
    `stats`, if given, receives the batch size used."""
    import torch
    from tqdm.auto import tqdm
    from transformers import LogitsProcessorList, StoppingCriteriaList

    settings = settings or GenerationSettings()
    ids = [prompts.encode_prompt(tokenizer, q) for q in questions]
    stop = prompts.stop_text(tokenizer)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    answers: list[Answer | None] = [None] * len(ids)
    answer_only = settings.ngram_scope == "answer" and settings.no_repeat_ngram_size > 0
    gen = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.temperature > 0,
        "repetition_penalty": settings.repetition_penalty,
        "no_repeat_ngram_size": 0 if answer_only else settings.no_repeat_ngram_size,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if settings.temperature > 0:
        gen.update(temperature=settings.temperature, top_k=0, top_p=1.0)  # the model's own distribution
        torch.manual_seed(0)
    if stop:
        gen.update(stop_strings=[stop], tokenizer=tokenizer)
    static = settings.resolved_cache(model.device.type) == "static"
    if static:
        gen["cache_implementation"] = "static"
        gen.update(compile_options(settings.compile))
    longest = max(map(len, ids), default=0)
    batch_size = settings.batch_size
    if batch_size == "auto":
        batch_size = auto_batch_size(model, len(ids), longest, settings.max_new_tokens)
        if log:
            why = f"fits the free memory of {model.device}" if model.device.type == "cuda" else f"at most {CPU_BATCH}"
            log(f"batch size {batch_size} (auto: {why})")
    if stats is not None:
        stats["batch_size"] = batch_size
    ends = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    with torch.inference_mode(), tqdm(total=len(ids), desc="generate", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            rows = [ids[i] for i in idx]
            if static:  # one shape for every batch: the compiled step is reused, not recompiled
                rows += [rows[-1]] * (batch_size - len(rows))
                batch = tokenizer.pad(
                    {"input_ids": rows}, padding="max_length", max_length=longest, return_tensors="pt"
                )
            else:
                batch = tokenizer.pad({"input_ids": rows}, return_tensors="pt")
            batch = batch.to(model.device)
            width = batch["input_ids"].shape[1]
            if answer_only:
                gen["logits_processor"] = LogitsProcessorList(
                    [_answer_no_repeat_ngram()(settings.no_repeat_ngram_size, width)]
                )
            if settings.stop_on_loop:
                gen["stopping_criteria"] = StoppingCriteriaList([loop_stop(tokenizer, width)])
            out = model.generate(**batch, **gen)
            for i, new in zip(idx, out[: len(idx), width:].tolist(), strict=True):
                n = next((k for k, t in enumerate(new) if t in ends), None)
                text = tokenizer.decode(new if n is None else new[:n], skip_special_tokens=True)
                ended = n is not None
                if stop and stop in text:
                    text, ended = text[: text.index(stop)], True
                length = len(new) if n is None else n + 1
                reason = "end" if ended or length < settings.max_new_tokens else "length"
                if settings.stop_on_loop:
                    text, looped = cut_loop(text)
                    reason = "loop" if looped else reason
                answers[i] = Answer(text.strip(), length, reason)
            bar.update(len(idx))
    return answers


COMPILE_CACHE = Path.home() / ".cache" / "medqa" / "torchinductor"


def compile_options(how: str) -> dict:
    """generate's options for a static cache's decoding step (GenerationSettings.compile). Inductor's kernels go to
    a cache that outlives the process (TORCHINDUCTOR_CACHE_DIR, by default under ~/.cache/medqa): a later `make eval`
    on the same machine, with the same shapes, loads them instead of compiling again."""
    from transformers import CompileConfig

    if how == "off":
        return {"disable_compile": True}
    if how == "cudagraphs":
        return {"compile_config": CompileConfig(backend="cudagraphs", mode=None)}
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(COMPILE_CACHE))
    return {}


def _answer_no_repeat_ngram():
    from transformers import NoRepeatNGramLogitsProcessor

    class AnswerNoRepeatNGram(NoRepeatNGramLogitsProcessor):
        """transformers' no-repeat-n-gram rule over the tokens after the (left-padded) prompt only."""

        def __init__(self, ngram_size: int, prompt_length: int):
            super().__init__(ngram_size)
            self.prompt_length = prompt_length

        def __call__(self, input_ids, scores):
            return super().__call__(input_ids[:, self.prompt_length :], scores)

    return AnswerNoRepeatNGram


def generation_config(settings: GenerationSettings, tokenizer, bos_token_id: int | None = None):
    """The settings as a transformers GenerationConfig, as far as one can say them: greedy, the cap, the repetition
    penalty, an n-gram rule that counts the prompt (ngram_scope "all"), the end at the end-of-turn token. An
    answer-only n-gram rule and stop_on_loop need generate_answers. No stop strings: `generate` reads them only with
    a tokenizer passed in, and fails without one."""
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=False,
        max_new_tokens=settings.max_new_tokens,
        repetition_penalty=settings.repetition_penalty,
        no_repeat_ngram_size=settings.no_repeat_ngram_size if settings.ngram_scope == "all" else 0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=bos_token_id,
    )
