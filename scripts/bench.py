"""Benchmark the flagship 7B QLoRA recipe against the seed notebook's setup and Axolotl's example config.

    python scripts/bench.py --make-model llama2-7b --model /tmp/llama2-7b-random --data data/medqa --out bench

Every contender trains the same 5,000 prepared rows on one card, in its own process, for --steps optimizer
steps; `medqa.bench.Meter` counts the non-padding tokens of each batch trained on and times the steps after
a warm-up. Speed and memory do not depend on weight values, so the model is Llama-2-7B-shaped with random
weights, its vocabulary sized to the tokenizer used (the embedded SmolLM2 tokenizer, 49,152 tokens: the
Llama-2 tokenizer cannot be had offline). Writes bench/<date>-<gpu>.json and .md.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from medqa.errors import UserError, cli
from medqa.fsutil import atomic_write_text
from medqa.random_model import SHAPES, make_model
from medqa.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "llama2-7b-medqa-qlora.yml"
CPU_SAFE = {
    "bf16": False,
    "fp16": False,
    "tf32": False,
    "flash_attention": False,
    "lora_mlp_kernel": False,
    "lora_qkv_kernel": False,
    "lora_o_kernel": False,
}
# named levers: `recipe+liger` is short for the keys below
LEVERS = {
    "liger": {
        "plugins": ["axolotl.integrations.liger.LigerPlugin"],
        "liger_rms_norm": True,
        "liger_glu_activation": True,
        "liger_fused_linear_cross_entropy": True,
    },
}


# ----------------------------------------------------------------------------- contenders


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

    from medqa.bench import attach
    from medqa.data import read_jsonl
    from medqa.prompts import full_text

    cuda = torch.cuda.is_available()
    compute = torch.float16 if cuda else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = (REPO / "recipes" / "templates" / "seed-text.jinja").read_text()  # the notebook's text
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


def axolotl_cfg(name: str, model_dir: Path, data: Path, out: Path, steps: int) -> dict:
    """The project's recipe, Axolotl's example-style config, and the recipe with one lever changed."""
    cfg = load_recipe(RECIPE)
    cfg.update(
        base_model=str(model_dir),
        max_steps=steps,
        output_dir=str(out),
        dataset_prepared_path=str(out / "prepared"),
        save_strategy="no",
        eval_strategy="no",
        use_tensorboard=False,
    )
    cfg.pop("save_steps", None)
    cfg.pop("eval_steps", None)
    cfg.pop("test_datasets", None)
    cfg["datasets"] = [{**cfg["datasets"][0], "path": str(data / "train.jsonl")}]
    if name == "axolotl-example":  # examples/llama-2/qlora.yml, on the seed's text
        cfg.update(
            lora_r=32,
            lora_alpha=16,
            lora_dropout=0.05,
            lora_target_linear=True,
            sequence_len=4096,
            sample_packing=True,
            pad_to_sequence_len=True,
            bf16=True,
            tf32=False,
            datasets=[{"path": str(data / "train_text.jsonl"), "ds_type": "json", "type": "completion"}],
        )
        cfg.pop("lora_target_modules")
        for key in [k for k in cfg if k == "plugins" or k.startswith("liger_")]:  # the example has no Liger
            del cfg[key]
    elif name != "recipe":
        for lever in name.split("+")[1:]:
            key, eq, value = lever.partition("=")
            if not eq and key not in LEVERS:
                raise UserError(f"--runs {name}", f"lever {key!r} is neither KEY=VALUE nor one of {', '.join(LEVERS)}")
            for k, v in LEVERS[key].items() if key in LEVERS else [(key, yaml.safe_load(value))]:
                cfg[k] = [*cfg.get(k, []), *v] if k == "plugins" else v
    cfg["plugins"] = [*cfg.get("plugins", []), "medqa.bench.BenchPlugin"]
    import torch

    if not torch.cuda.is_available():  # Triton kernels and paged optimizers need CUDA
        cfg.update(CPU_SAFE)
        cfg["optimizer"] = "adamw_torch"
        cfg = {k: v for k, v in cfg.items() if not k.startswith("liger_")}
        cfg["plugins"] = [p for p in cfg["plugins"] if "liger" not in p]
    return cfg


def run_contender(name: str, model_dir: Path, data: Path, work: Path, steps: int, reuse: bool = False) -> dict:
    out = work / re.sub(r"[^\w.=+-]", "_", name)
    if reuse and (out / "bench.json").is_file():
        return {"name": name, **json.loads((out / "bench.json").read_text())}
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").unlink(missing_ok=True)
    if name == "seed":
        cmd = [
            sys.executable,
            __file__,
            "--seed-run",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--out",
            str(out),
            "--steps",
            str(steps),
        ]
    else:
        cfg = axolotl_cfg(name, model_dir, data, out, steps)
        (out / "recipe.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        cmd = [sys.executable, "-m", "axolotl.cli.train", str(out / "recipe.yml")]
    env = {"AXOLOTL_DO_NOT_TRACK": "1", **os.environ}
    with open(out / "log.txt", "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    if rc != 0 or not (out / "bench.json").is_file():
        tail = (out / "log.txt").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return {"name": name, "error": f"exit {rc}: {tail[0][:300]}"}
    result = json.loads((out / "bench.json").read_text())
    if result["global_step"] < steps or not result["tokens_per_s"]:
        return {"name": name, "error": f"trained {result['global_step']} of {steps} steps (too little data?)"}
    return {"name": name, **result}


def table(runs: list[dict]) -> str:
    lines = [
        "| run | GPU | tokens/s | s/step | peak alloc GiB | peak reserved GiB | epoch | vs seed | vs Axolotl |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['name']} | failed: {r['error']} | | | | | | | |")
            continue
        fmt = lambda v, f: f.format(v) if v is not None else "–"  # noqa: E731
        lines.append(
            f"| {r['name']} | {r['gpu']} | {fmt(r['tokens_per_s'], '{:,.0f}')} | {fmt(r['step_s'], '{:.2f}')} "
            f"| {fmt(r['peak_allocated_gib'], '{:.2f}')} | {fmt(r['peak_reserved_gib'], '{:.2f}')} "
            f"| {fmt(r['epoch_s'], '{:,.0f}')} s | {fmt(r.get('speedup_vs_seed'), '{:.2f}×')} "
            f"| {fmt(r.get('speedup_vs_axolotl'), '{:.2f}×')} |"
        )
    return "\n".join(lines)


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model folder (made with --make-model)")
    parser.add_argument("--make-model", choices=sorted(SHAPES), default=None)
    parser.add_argument("--data", type=Path, default=Path("data/medqa"))
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: OUT/work)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument(
        "--runs",
        default="seed,axolotl-example,recipe",
        help="comma-separated: seed, axolotl-example, recipe, recipe+LEVER[+LEVER]; a lever is KEY=VALUE or "
        + ", ".join(LEVERS),
    )
    parser.add_argument("--reuse", action="store_true", help="keep figures already in the work folder")
    parser.add_argument("--seed-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_run:
        return seed_run(args.model, args.data, args.out, args.steps)

    if not (args.data / "train.jsonl").is_file():
        raise UserError(args.data / "train.jsonl", "no such file (run `make data` first)")
    if args.make_model and not (args.model / "config.json").is_file():
        make_model(args.make_model, args.model)
    if not (args.model / "config.json").is_file():
        raise UserError(args.model, "no model here (use --make-model llama2-7b)")
    subprocess.check_call(
        [sys.executable, str(REPO / "scripts" / "export_seed_text.py"), str(args.data)], stdout=subprocess.DEVNULL
    )
    work = args.work or args.out / "work"
    runs = []
    for name in args.runs.split(","):
        runs.append(run_contender(name, args.model, args.data, work, args.steps, args.reuse))
        print(table(runs[-1:]).splitlines()[-1], flush=True)
    by_name = {r["name"]: r for r in runs if "error" not in r}
    for r in by_name.values():
        for key, ref in (("speedup_vs_seed", "seed"), ("speedup_vs_axolotl", "axolotl-example")):
            if ref in by_name and r["tokens_per_s"] and by_name[ref]["tokens_per_s"]:
                r[key] = r["tokens_per_s"] / by_name[ref]["tokens_per_s"]
    gpu = next((r["gpu"] for r in by_name.values()), "none")
    stem = f"{datetime.date.today().isoformat()}-{re.sub(r'[^A-Za-z0-9]+', '-', gpu).strip('-').lower()}"
    report = {
        "date": datetime.date.today().isoformat(),
        "model": f"{args.make_model or args.model} (random weights)",
        "tokenizer": "SmolLM2-135M-Instruct (vocab 49,152)",
        "steps": args.steps,
        "runs": [
            {
                "name": r["name"],
                "gpu": r.get("gpu"),
                "tokens_per_s": r.get("tokens_per_s"),
                "step_s": r.get("step_s"),
                "peak_gib": r.get("peak_allocated_gib"),
                "peak_reserved_gib": r.get("peak_reserved_gib"),
                "epoch_s": r.get("epoch_s"),
                "speedup_vs_seed": r.get("speedup_vs_seed"),
                "speedup_vs_axolotl": r.get("speedup_vs_axolotl"),
                **({"error": r["error"]} if "error" in r else {}),
                "detail": r,
            }
            for r in runs
        ],
    }
    atomic_write_text(args.out / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(args.out / f"{stem}.md", table(runs) + "\n")
    print(table(runs))
    print(f"wrote {args.out / stem}.json and .md")
    sys.exit(1 if any("error" in r for r in runs) else 0)


if __name__ == "__main__":
    main()
