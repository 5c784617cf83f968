"""The seed notebook's training, as `make bench` reproduces it: transformers + peft + bitsandbytes, no Axolotl.

python -m medqa_lab.bench.notebook MODEL_DIR DATA_DIR OUT_DIR STEPS     (medqa_lab.bench.contenders runs it)
"""

from __future__ import annotations

import sys
from pathlib import Path


def seed_run(model_dir: Path, data: Path, out: Path, steps: int) -> None:
    """The seed notebook: transformers + peft + bitsandbytes, NF4 with fp16 compute, LoRA r64/16 on q,v,
    no autocast, paged AdamW 32-bit, micro-batch 2 x 4, gradient checkpointing, no packing, group_by_length."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    from medqa.data import read_jsonl
    from medqa.prompts import SEED_TEXT, full_text
    from medqa_lab.bench.meter import attach

    cuda = torch.cuda.is_available()
    compute = torch.float16 if cuda else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = SEED_TEXT.read_text()  # the notebook's text
    rows = read_jsonl(data / "train.jsonl")
    texts = [full_text(tokenizer, r["question"], r["answer"]) for r in rows]
    ds = Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=1024), batched=True, remove_columns=["text"]
    )
    quant = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute, bnb_4bit_use_double_quant=False
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=quant, dtype=compute, device_map={"": 0} if cuda else None
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(
        model,
        LoraConfig(
            r=64,
            lora_alpha=16,
            lora_dropout=0.1,
            bias="none",
            task_type="CAUSAL_LM",
            target_modules=["q_proj", "v_proj"],
        ),
    )
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
        gradient_checkpointing=True,
        optim="paged_adamw_32bit" if cuda else "adamw_torch",
        learning_rate=2e-4,
        lr_scheduler_type="constant",
        max_grad_norm=0.3,
        max_steps=steps,
        train_sampling_strategy="group_by_length",
        fp16=False,
        bf16=False,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        seed=42,
        use_cpu=not cuda,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=ds, data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False)
    )
    attach(trainer, out)
    trainer.train()


if __name__ == "__main__":
    model_dir, data, out, steps = sys.argv[1:]
    seed_run(Path(model_dir), Path(data), Path(out), int(steps))
