"""Load a base model with a run's adapter, and generate answers with the run's own prompt format."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from medqa.errors import UserError
from medqa.prompts import PromptFormat
from medqa.recipe import RUN_RECIPE, load_recipe, prompt_format


@dataclass
class GenerationSettings:
    max_new_tokens: int = 256
    do_sample: bool = False  # greedy
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    batch_size: int = 16


@dataclass
class Run:
    """A training run folder: its resolved recipe, base model, adapter and prompt format."""

    path: Path
    recipe: dict
    base_model: str
    fmt: PromptFormat

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = Path(path)
        if not (path / RUN_RECIPE).is_file():
            raise UserError(path, f"not a run folder (no {RUN_RECIPE}; train one with `make finetune`)")
        recipe = load_recipe(path / RUN_RECIPE)
        return cls(path, recipe, str(recipe["base_model"]), prompt_format(recipe, str(path / RUN_RECIPE)))

    @property
    def adapter(self) -> Path:
        if not (self.path / "adapter_config.json").is_file():
            raise UserError(self.path, "no adapter_config.json: the run has not finished (see its checkpoints)")
        return self.path


def load_model(base_model: str, adapter: Path | None = None, four_bit: bool | None = None):
    """Base model (+ adapter). On CUDA: 4-bit NF4 with bf16 compute, as trained; on CPU: full fp32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    four_bit = cuda if four_bit is None else four_bit
    kwargs = {"dtype": torch.bfloat16 if cuda else torch.float32}
    if four_bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"],
        )
    if cuda:
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    tok_source = adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else base_model
    tokenizer = AutoTokenizer.from_pretrained(tok_source)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
        if not four_bit:
            model = model.merge_and_unload()  # same function, faster generation
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.eval()
    return model, tokenizer


def generate_answers(
    model,
    tokenizer,
    fmt: PromptFormat,
    questions: list[str],
    settings: GenerationSettings | None = None,
    progress: bool = True,
) -> list[str]:
    """Answers in the order of `questions`; batches are formed from prompts of similar length."""
    import torch
    from tqdm.auto import tqdm

    settings = settings or GenerationSettings()
    prompts = [fmt.encode_prompt(tokenizer, q) for q in questions]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[str] = [""] * len(prompts)
    gen = {k: v for k, v in asdict(settings).items() if k != "batch_size"}
    with torch.inference_mode(), tqdm(total=len(prompts), desc="generate", disable=not progress) as bar:
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            batch = tokenizer.pad({"input_ids": [prompts[i] for i in idx]}, return_tensors="pt").to(model.device)
            out = model.generate(
                **batch, **gen, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id
            )
            new = out[:, batch["input_ids"].shape[1] :]
            for i, text in zip(idx, tokenizer.batch_decode(new, skip_special_tokens=True), strict=True):
                answers[i] = text.strip()
            bar.update(len(idx))
    return answers


def answer_perplexity(
    model, tokenizer, fmt: PromptFormat, rows: list[dict], max_len: int = 1024, batch_size: int = 16
) -> float:
    """exp(mean negative log-likelihood) of the reference answers' tokens, given the run's prompt."""
    import math

    import torch

    examples = [fmt.encode_example(tokenizer, r["question"], r["reference"], max_len=max_len) for r in rows]
    total_nll, total_tokens = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            width = max(len(e["input_ids"]) for e in batch)
            pad = tokenizer.pad_token_id
            ids = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"])) for e in batch])
            mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in batch])
            labels = torch.tensor([e["labels"] + [-100] * (width - len(e["labels"])) for e in batch])
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
            shift_labels = labels[:, 1:].to(logits.device)
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].transpose(1, 2), shift_labels, ignore_index=-100, reduction="sum"
            )
            total_nll += nll.item()
            total_tokens += int((shift_labels != -100).sum())
    return math.exp(total_nll / max(total_tokens, 1))
