"""Load a base model with a run's adapter, and generate answers with the run's own prompt format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medqa import prompts
from medqa.errors import UserError
from medqa.prompts import recipe_tokenizer
from medqa.recipe import RUN_RECIPE, load_recipe


@dataclass
class GenerationSettings:
    """Greedy decoding; `make eval`, `make ask` and `make demo` use these defaults, chosen in the lever study
    (eval/levers/): no_repeat_ngram_size 4 gave the chosen SmolLM2 run its best validation ROUGE-L and kept all
    but 0.4% of its answers out of a loop; applied to the answer's own tokens only (ngram_scope "answer"), the
    question's subject can still be named (transformers' rule counts the prompt: with it, 34% of the test
    answers named their subject, against 89% greedy). Batches of 48 with the static cache generate as fast as
    64 on an H200 and fit the 7B on a 24 GB card (bench/)."""

    max_new_tokens: int = 256
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 4
    # where no n-gram may repeat: "all" (transformers': the prompt counts, so an answer cannot name a question's
    # subject of n tokens or more) or "answer" (the answer's own n-grams only)
    ngram_scope: str = "answer"
    batch_size: int = 48
    # "static": a KV cache of fixed shape, every batch padded to the same size and prompt length, so that on a
    # GPU transformers compiles the decoding step once (torch.compile, CUDA graphs); "dynamic": a cache that
    # grows, no compilation; "auto": static on a GPU, dynamic on the CPU
    cache: str = "auto"

    def resolved_cache(self, device_type: str) -> str:
        if self.cache not in ("auto", "static", "dynamic"):
            raise ValueError(f"cache must be 'auto', 'static' or 'dynamic', got {self.cache!r}")
        if self.cache == "auto":
            return "static" if device_type == "cuda" else "dynamic"
        return self.cache


@dataclass
class Answer:
    text: str
    new_tokens: int  # generated tokens, the end-of-turn token included
    hit_max_new_tokens: bool  # cut off by the cap rather than ended by the model


WEIGHTS = ("merged", "4bit")


@dataclass
class Run:
    """A training run folder: its resolved recipe, base model, adapter and tokenizer (with the chat template)."""

    path: Path
    recipe: dict
    base_model: str

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = Path(path)
        if not (path / RUN_RECIPE).is_file():
            raise UserError(path, f"not a run folder (no {RUN_RECIPE}; train one with `make finetune`)")
        recipe = load_recipe(path / RUN_RECIPE)
        return cls(path, recipe, str(recipe["base_model"]))

    def tokenizer(self):
        """The tokenizer the run saved (its chat template is the training prompt); before the run has saved
        one, the base tokenizer with the recipe's template."""
        from transformers import AutoTokenizer

        if (self.path / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(self.path)
            try:
                prompts.answer_frame(tokenizer)
            except ValueError as err:
                raise UserError(self.path, f"chat template: {err}") from None
            return tokenizer
        return recipe_tokenizer(self.recipe, str(self.path / RUN_RECIPE))

    @property
    def adapter(self) -> Path:
        if not (self.path / "adapter_config.json").is_file():
            raise UserError(self.path, "no adapter_config.json: the run has not finished (see its checkpoints)")
        return self.path

    @property
    def dtype(self) -> str:
        """The precision the run computed in (Axolotl's torch_dtype): bf16, fp16 or fp32."""
        if self.recipe.get("bf16") in (True, "auto"):
            return "bfloat16"
        return "float16" if self.recipe.get("fp16") else "float32"


def load_model(base_model: str, adapter: Path | None = None, weights: str = "merged", dtype: str = "float32"):
    """The base model as published, or the fine-tuned model as it was trained.

    With an adapter the base is loaded in 4-bit NF4 with double quantisation, exactly as Axolotl loads it
    for QLoRA, and then either
      - "merged": the NF4 weights are dequantised (transformers' `dequantize`) and the adapter is merged
        into them: the weights the adapter was trained against, as plain tensors (fast generation);
      - "4bit": the adapter stays on top of the 4-bit layers, the training forward itself (slow).
    Merging into the unquantised base instead would score a model that was never trained.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    cuda = torch.cuda.is_available()
    kwargs = {"dtype": getattr(torch, dtype if cuda else "float32")}
    if cuda:
        kwargs["device_map"] = {"": 0}
    if adapter is not None:
        kwargs["quantization_config"] = BitsAndBytesConfig(  # as axolotl.loaders.model does for qlora
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"],
            bnb_4bit_quant_storage=torch.bfloat16,
        )
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    tok_source = adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else base_model
    tokenizer = AutoTokenizer.from_pretrained(tok_source)  # a run's carries its chat template
    if adapter is not None:
        from peft import PeftModel

        if weights == "merged":
            # before any forward pass: on CPU, bitsandbytes repacks 4-bit weights at the first one
            model = model.dequantize().to(kwargs["dtype"])
        model = PeftModel.from_pretrained(model, str(adapter))
        if weights == "merged":
            model = model.merge_and_unload()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.eval()
    return model, tokenizer


def generate_answers(
    model,
    tokenizer,
    questions: list[str],
    settings: GenerationSettings | None = None,
    progress: bool = True,
) -> list[Answer]:
    """Greedy answers in the order of `questions`, each asked with the tokenizer's chat template; batches are
    formed from prompts of similar length. An answer ends at the end-of-turn token, or at the template's stop
    text where the end is plain text (medqa.prompts.stop_text)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import LogitsProcessorList

    AnswerNoRepeatNGram = _answer_no_repeat_ngram()
    settings = settings or GenerationSettings()
    ids = [prompts.encode_prompt(tokenizer, q) for q in questions]
    stop = prompts.stop_text(tokenizer)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    answers: list[Answer | None] = [None] * len(ids)
    gen = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": False,
        "repetition_penalty": settings.repetition_penalty,
        "no_repeat_ngram_size": settings.no_repeat_ngram_size,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if stop:
        gen.update(stop_strings=[stop], tokenizer=tokenizer)
    if settings.ngram_scope not in ("all", "answer"):
        raise ValueError(f"ngram_scope must be 'all' or 'answer', got {settings.ngram_scope!r}")
    answer_only = settings.ngram_scope == "answer" and settings.no_repeat_ngram_size > 0
    if answer_only:
        gen["no_repeat_ngram_size"] = 0
    static = settings.resolved_cache(model.device.type) == "static"
    if static:
        gen["cache_implementation"] = "static"
    longest = max(map(len, ids), default=0)
    ends = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    with torch.inference_mode(), tqdm(total=len(ids), desc="generate", disable=not progress) as bar:
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            rows = [ids[i] for i in idx]
            if static:  # one shape for every batch: the compiled step is reused, not recompiled
                rows += [rows[-1]] * (settings.batch_size - len(rows))
                batch = tokenizer.pad(
                    {"input_ids": rows}, padding="max_length", max_length=longest, return_tensors="pt"
                )
            else:
                batch = tokenizer.pad({"input_ids": rows}, return_tensors="pt")
            batch = batch.to(model.device)
            if answer_only:
                width = batch["input_ids"].shape[1]
                gen["logits_processor"] = LogitsProcessorList(
                    [AnswerNoRepeatNGram(settings.no_repeat_ngram_size, width)]
                )
            out = model.generate(**batch, **gen)
            for i, new in zip(idx, out[: len(idx), batch["input_ids"].shape[1] :].tolist(), strict=True):
                n = next((k for k, t in enumerate(new) if t in ends), None)
                text = tokenizer.decode(new if n is None else new[:n], skip_special_tokens=True)
                stopped = n is not None
                if stop and stop in text:
                    text, stopped = text[: text.index(stop)], True
                length = len(new) if n is None else n + 1
                answers[i] = Answer(text.strip(), length, not stopped and length >= settings.max_new_tokens)
            bar.update(len(idx))
    return answers


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


def answer_perplexity(model, tokenizer, rows: list[dict], max_len: int = 1024, batch_size: int = 4) -> float:
    """exp(mean negative log-likelihood) of the reference answers' tokens, given the run's prompt."""
    import math

    import torch

    examples = [prompts.encode_example(tokenizer, r["question"], r["reference"], max_len=max_len) for r in rows]
    total_nll, total_tokens = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            width = max(len(e["input_ids"]) for e in batch)
            pad = tokenizer.pad_token_id
            ids = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"])) for e in batch])
            mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in batch])
            labels = torch.tensor([e["labels"] + [prompts.IGNORE_INDEX] * (width - len(e["labels"])) for e in batch])
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
            shift_labels = labels[:, 1:].to(logits.device)
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].transpose(1, 2), shift_labels, ignore_index=prompts.IGNORE_INDEX, reduction="sum"
            )
            total_nll += nll.item()
            total_tokens += int((shift_labels != prompts.IGNORE_INDEX).sum())
    return math.exp(total_nll / max(total_tokens, 1))
