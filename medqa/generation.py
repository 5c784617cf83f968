"""Batched answers to questions: each asked in the tokenizer's chat template, decoded by GenerationSettings
(medqa.decoding), batches of similar-length prompts as large as the GPU's free memory holds, a static KV cache whose
decoding step compiles once; where each answer ends (`finish`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medqa import prompts
from medqa.decoding import GenerationSettings
from medqa.fsutil import pause_point
from medqa.loops import cut_loop, loop_stop

CPU_BATCH = 48  # batch_size "auto" on the CPU: the base model, 48 answers in 89 s on 2 cores (SmolLM2 README)
MAX_AUTO_BATCH = 512


@dataclass
class Answer:
    text: str
    new_tokens: int  # generated tokens, the end-of-turn token included
    stop: str  # "end": the model ended it; "loop": cut where it started to loop; "length": max_new_tokens

    @property
    def hit_max_new_tokens(self) -> bool:
        return self.stop == "length"


def finish(new: list[int], decode, ends: set, stop: str | None, max_new_tokens: int, stop_on_loop: bool) -> Answer:
    """One answer from the tokens generated after its prompt: it ends at the first end-of-turn (or pad) token, or at
    the template's stop text where the end is plain text, else where generation stopped; with stop_on_loop it is
    cut where it starts to loop. Its stop: "loop" if so cut, "length" if it ran to max_new_tokens without ending,
    "end" otherwise. `decode`: token ids to text."""
    n = next((k for k, t in enumerate(new) if t in ends), None)
    text = decode(new if n is None else new[:n])
    ended = n is not None
    if stop and stop in text:
        text, ended = text[: text.index(stop)], True
    length = len(new) if n is None else n + 1
    reason = "end" if ended or length < max_new_tokens else "length"
    if stop_on_loop:
        text, looped = cut_loop(text)
        reason = "loop" if looped else reason
    return Answer(text.strip(), length, reason)


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

    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=True)

    with torch.inference_mode(), tqdm(total=len(ids), desc="generate", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            rows = [ids[i] for i in idx]
            if static:  # one shape for every batch: the compiled step is reused, not recompiled
                rows += [rows[-1]] * (batch_size - len(rows))
                batch = tokenizer.pad(
                    {"input_ids": rows},
                    padding="max_length",
                    max_length=longest,
                    return_tensors="pt",
                    padding_side="left",
                )
            else:  # left: each answer starts right after its prompt, whatever side the tokenizer pads on
                batch = tokenizer.pad({"input_ids": rows}, return_tensors="pt", padding_side="left")
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
                answers[i] = finish(new, decode, ends, stop, settings.max_new_tokens, settings.stop_on_loop)
            bar.update(len(idx))
            pause_point("answer")  # a test stops a command here: answering, nothing written yet
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
