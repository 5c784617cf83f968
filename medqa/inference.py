"""Load a base model, or a base model with a run's adapter as it was trained; the perplexity of reference answers."""

from __future__ import annotations

from pathlib import Path

from medqa import prompts

WEIGHTS = ("merged", "4bit")


def load_model(
    base_model: str,
    adapter: Path | None = None,
    weights: str = "merged",
    dtype: str = "float32",
    quantized: bool = True,
    bnb_kwargs: dict | None = None,
):
    """The base model as published, or the fine-tuned model as it was trained.

    With the adapter of a QLoRA run (`quantized`, the recipe's load_in_4bit) the base is loaded in 4-bit NF4
    with double quantisation, exactly as Axolotl loads it for QLoRA, and then either
      - "merged": the NF4 weights are dequantised (transformers' `dequantize`) and the adapter is merged
        into them: the weights the adapter was trained against, as plain tensors (fast generation);
      - "4bit": the adapter stays on top of the 4-bit layers, the training forward itself (slow).
    Merging into the unquantised base instead would score a model that was never trained. The adapter of a
    LoRA run (not quantized) is merged into the base as it is. `bnb_kwargs`: the recipe's bnb_config_kwargs, which
    Axolotl lays over its NF4 settings.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if weights == "4bit" and not quantized:
        raise ValueError("weights '4bit' is for the adapter of a QLoRA run (load_in_4bit)")
    cuda = torch.cuda.is_available()
    kwargs = {"dtype": getattr(torch, dtype if cuda else "float32")}
    if cuda:
        kwargs["device_map"] = {"": 0}
    if adapter is not None and quantized:
        kwargs["quantization_config"] = BitsAndBytesConfig(  # as axolotl.loaders.model does for qlora
            **{
                "load_in_4bit": True,
                "bnb_4bit_quant_type": "nf4",
                "bnb_4bit_use_double_quant": True,
                "bnb_4bit_compute_dtype": kwargs["dtype"],
                "bnb_4bit_quant_storage": torch.bfloat16,
                **(bnb_kwargs or {}),
            }
        )
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    tok_source = adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else base_model
    tokenizer = AutoTokenizer.from_pretrained(tok_source)  # a run's carries its chat template
    if adapter is not None:
        from peft import PeftModel

        if weights == "merged" and quantized:
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
