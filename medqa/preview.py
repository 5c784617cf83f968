"""What a run will be, before any GPU time: rows and tokens in the recipe's own prompt format, optimizer steps and
checkpoints (`make plan`)."""

from __future__ import annotations

import math
from pathlib import Path

from medqa.checks import checkpoint_count
from medqa.data import read_jsonl
from medqa.prompts import encode_example, recipe_tokenizer
from medqa.recipe import setting


def _lengths(tokenizer, rows: list[dict]) -> list[int]:
    """Tokens of each training example: the conversation in the recipe's prompt, or a completion row's text."""
    if rows and "question" in rows[0]:
        return [len(encode_example(tokenizer, r["question"], r["answer"])["input_ids"]) for r in rows]
    return [len(tokenizer(str(r.get("text", "")), add_special_tokens=False)["input_ids"]) for r in rows]


def describe(cfg: dict, where: str) -> dict:
    """Rows and tokens (cut at sequence_len) of each source the recipe names (a file named twice counts twice, as
    Axolotl reads it twice), truncated rows, steps per epoch and in all, checkpoint steps."""
    tokenizer = recipe_tokenizer(cfg, where)
    seq_len = int(setting(cfg, "sequence_len"))
    sources: dict[str, dict] = {}
    for entry in cfg["datasets"]:
        path = str(entry["path"])
        if path in sources:
            sources[path]["times"] += 1
            continue
        lengths = _lengths(tokenizer, read_jsonl(Path(path)))
        sources[path] = {
            "path": path,
            "times": 1,
            "rows": len(lengths),
            "tokens": sum(min(n, seq_len) for n in lengths),
            "truncated": sum(n > seq_len for n in lengths),
        }
    rows = sum(s["rows"] * s["times"] for s in sources.values())
    tokens = sum(s["tokens"] * s["times"] for s in sources.values())
    per_step = int(setting(cfg, "micro_batch_size")) * int(setting(cfg, "gradient_accumulation_steps"))
    if cfg.get("sample_packing"):
        steps = math.ceil(tokens / (seq_len * per_step))
        how = f"packed into {seq_len}-token sequences, {per_step} a step (at least; packing is never perfect)"
    else:
        steps = math.ceil(rows / per_step)
        how = f"{per_step} rows a step"
    total = int(cfg.get("max_steps") or steps * float(setting(cfg, "num_epochs")))
    save = int(cfg.get("save_steps") or 0)
    return {
        "sources": list(sources.values()),
        "rows": rows,
        "tokens": tokens,
        "truncated": sum(s["truncated"] * s["times"] for s in sources.values()),
        "sequence_len": seq_len,
        "steps_per_epoch": steps,
        "how": how,
        "steps": total,
        "save_steps": save,
        "checkpoints": checkpoint_count(save, total),
    }
