"""Checks before any GPU time: what a recipe needs of the machine, its data files and its base model."""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

from medqa.errors import UserError, first_line
from medqa.recipe import setting

LORA_KERNELS = ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel")


def for_cpu(cfg: dict) -> tuple[dict, list[str]]:
    """The recipe as a machine without CUDA runs it: what Axolotl would resolve for a GPU there, resolved for the CPU
    (`bf16: auto` off, where Axolotl would turn fp16 on; the LoRA kernels it enables by default off: they are
    Triton). Returns the recipe and the keys set."""
    cfg, changed = dict(cfg), []
    if cfg.get("bf16") == "auto":
        cfg["bf16"], cfg["fp16"] = False, False
        changed.append("bf16: false")
    for key in LORA_KERNELS:
        if cfg.get(key) is None and cfg.get("adapter") in ("lora", "qlora"):
            cfg[key] = False
            changed.append(f"{key}: false")
    return cfg, changed


def cuda_needs(cfg: dict) -> list[str]:
    """The recipe's settings that only a CUDA GPU can run."""
    needs = [k for k in ("bf16", "fp16", "tf32", "flash_attention") if cfg.get(k) in (True, "auto")]
    needs += [
        k for k in cfg if (k.startswith("lora_") and k.endswith("_kernel") or k.startswith("liger_")) and cfg[k] is True
    ]
    needs += [k for k in ("deepspeed", "fsdp", "fsdp_config") if cfg.get(k)]
    return needs


@functools.lru_cache(maxsize=8)
def base_config(name: str) -> dict:
    """The base model's config.json (a local folder, or a hub id), as a dict, read once a process (the check and the
    disk estimate both need it): read without building the model's config class, whose import pulls in
    transformers' model code (5 s on 2 cores, in a process that only checks)."""
    from transformers import PretrainedConfig

    return PretrainedConfig.get_config_dict(name)[0]


def check_base_model(cfg: dict) -> None:
    """The base model must be loadable before any GPU time is spent: a local folder, or a hub id we can reach, with a
    config of a model type transformers knows (or code of its own, with trust_remote_code)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    name = str(cfg.get("base_model", ""))
    if Path(name).is_dir():  # a local model (a merged run, for a preference stage): its files first
        from medqa.integrity import check_folder

        check_folder(Path(name), "the base model's folder is damaged: copy it again, or make it again (make merge)")
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        raise UserError(name, "cannot load the base model: no such folder (a local path; a hub id has the form "
                              "namespace/name)")  # fmt: skip
    try:
        config = base_config(name)
    except Exception as err:  # hub and file errors come in many classes; each means "cannot load it"
        first = first_line(err)
        offline = (
            " (HF_HUB_OFFLINE=1 is set: make sets it; HF_HUB_OFFLINE=0 lets it reach the hub)"
            if (os.environ.get("HF_HUB_OFFLINE") == "1" and not Path(name).exists())
            else ""
        )
        raise UserError(name, f"cannot load the base model: {first}{offline}") from None
    kind = config.get("model_type")
    if kind not in CONFIG_MAPPING_NAMES and not (cfg.get("trust_remote_code") and "auto_map" in config):
        raise UserError(name, f"cannot load the base model: its config.json names no model type transformers knows "
                              f"({kind!r})")  # fmt: skip


def check_data(cfg: dict, where: str) -> None:
    for d in (cfg.get("datasets") or []) + (cfg.get("test_datasets") or []):
        path = Path(str(d.get("path", "")))
        if d.get("ds_type") != "json":
            continue
        if not path.is_file():
            raise UserError(path, f"no such data file (run `make data INPUT=...` first; used by {where})")
        if not path.read_text(encoding="utf-8", errors="replace").strip():
            raise UserError(path, f"no rows (a split left empty by prepare_data's fractions; used by {where})")


# ------------------------------------------------------------------ disk space a run needs

CHARS_PER_TOKEN = 4.0  # MedQuAD and people's questions: 4.4-4.6 characters a SmolLM2 token; 4 errs towards more steps
TEMPLATE_TOKENS = 24  # what the prompt template adds to a row
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def estimated_steps(cfg: dict) -> int:
    """Optimizer steps of the whole run, from the characters of its rows (make plan counts the tokens)."""
    import json
    import math

    seq_len = int(setting(cfg, "sequence_len"))
    rows = tokens = 0
    for entry in cfg.get("datasets") or []:
        path = Path(str(entry["path"]))
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                row = json.loads(line)
                chars = sum(len(str(row.get(k, ""))) for k in ("question", "answer", "text", "prompt", "chosen"))
                rows += 1
                tokens += min(seq_len, int(chars / CHARS_PER_TOKEN) + TEMPLATE_TOKENS)
    per_step = int(setting(cfg, "micro_batch_size")) * int(setting(cfg, "gradient_accumulation_steps"))
    steps = math.ceil((tokens / seq_len if cfg.get("sample_packing") else rows) / per_step)
    return int(cfg.get("max_steps") or math.ceil(steps * float(setting(cfg, "num_epochs"))))


def lora_parameters(cfg: dict) -> int | None:
    """The adapter's parameters, from the base model's shape and the recipe's LoRA (None where it cannot be read)."""
    try:
        model = base_config(str(cfg["base_model"]))
        hidden, layers, heads = model["hidden_size"], model["num_hidden_layers"], model["num_attention_heads"]
    except Exception:  # unreachable (make plan and make finetune say so), or its shape named otherwise: no estimate
        return None
    head_dim = model.get("head_dim") or hidden // heads
    kv = (model.get("num_key_value_heads") or heads) * head_dim
    inter = model.get("intermediate_size") or 4 * hidden
    shapes = {"q_proj": (hidden, heads * head_dim), "k_proj": (hidden, kv), "v_proj": (hidden, kv),
              "o_proj": (heads * head_dim, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter),
              "down_proj": (inter, hidden)}  # fmt: skip
    targets = LINEAR if cfg.get("lora_target_linear") else cfg.get("lora_target_modules") or ("q_proj", "v_proj")
    r = int(cfg.get("lora_r") or 8)
    return layers * sum(r * sum(shapes[t]) for t in targets if t in shapes)


def tokenizer_bytes(cfg: dict) -> int:
    """What a saved tokenizer takes (each checkpoint holds one): the base model's files, or 2.5 MB (Llama-2's)."""
    folder = Path(str(cfg.get("base_model", "")))
    names = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
             "merges.txt", "chat_template.jinja")  # fmt: skip
    found = [folder / n for n in names if (folder / n).is_file()] if folder.is_dir() else []
    return sum(p.stat().st_size for p in found) if found else 2_500_000


def disk_needs(cfg: dict, steps: int | None = None) -> dict | None:
    """The space a run's checkpoints take (as many as save_total_limit keeps) and its final adapter: an adapter in
    fp32, AdamW's two fp32 moments a parameter, the tokenizer, a few small files; None for a run without an adapter
    (its checkpoints hold the whole model)."""
    params = lora_parameters(cfg) if cfg.get("adapter") in ("lora", "qlora") else None
    if params is None:
        return None
    steps = estimated_steps(cfg) if steps is None else steps
    save = int(cfg.get("save_steps") or 0)
    saves = checkpoint_count(save, steps)
    if cfg.get("saves_per_epoch"):
        saves = max(saves, int(cfg["saves_per_epoch"]) * math.ceil(float(setting(cfg, "num_epochs"))) - 1)
    if cfg.get("save_strategy") == "no":
        saves = 0
    kept = min(saves, int(cfg["save_total_limit"])) if cfg.get("save_total_limit") else saves
    tok = tokenizer_bytes(cfg)
    checkpoint = 12 * params + tok + 200_000
    adapter = 4 * params + tok + 50_000
    return {"params": params, "checkpoints": saves, "kept": kept, "checkpoint_bytes": checkpoint,
            "adapter_bytes": adapter, "bytes": kept * checkpoint + adapter}  # fmt: skip


def space_problem(cfg: dict, needs: dict | None) -> str | None:
    """Where the run's output folder has less room than the run needs (what is already there counted as had)."""
    from medqa.fsutil import free_bytes, size_text

    if needs is None:
        return None
    out = Path(setting(cfg, "output_dir"))
    there = sum(p.stat().st_size for p in out.rglob("checkpoint-*/*") if p.is_file()) if out.is_dir() else 0
    free = free_bytes(out)
    wanted = max(0, needs["bytes"] - there)
    if free is None or wanted <= free:
        return None
    return (
        f"the run needs about {size_text(wanted)} here ({needs['kept']} checkpoint(s) of "
        f"{size_text(needs['checkpoint_bytes'])} kept, save_total_limit {cfg.get('save_total_limit') or 'unset'}, "
        f"and the adapter of {size_text(needs['adapter_bytes'])}) and {size_text(free)} is free"
    )


def checkpoint_count(save_steps: int, total: int) -> int:
    """How many checkpoints a run of `total` steps saves before its end, one each `save_steps` (counted, not listed:
    a recipe may ask for billions)."""
    return max(0, (total - 1) // save_steps) if save_steps > 0 else 0
