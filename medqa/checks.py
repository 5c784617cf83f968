"""Checks before any GPU time: what a recipe needs of the machine, its data files and its base model."""

from __future__ import annotations

import os
from pathlib import Path

from medqa.errors import UserError, first_line

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


def check_base_model(cfg: dict) -> None:
    """The base model must be loadable before any GPU time is spent: a local folder, or a hub id we can reach."""
    from transformers import AutoConfig

    name = str(cfg.get("base_model", ""))
    if Path(name).is_dir():  # a local model (a merged run, for a preference stage): its files first
        from medqa.integrity import check_folder

        check_folder(Path(name), "the base model's folder is damaged: copy it again, or make it again (make merge)")
    try:
        AutoConfig.from_pretrained(name, trust_remote_code=bool(cfg.get("trust_remote_code", False)))
    except Exception as err:  # hub and file errors come in many classes; each means "cannot load it"
        first = first_line(err)
        offline = (
            " (HF_HUB_OFFLINE=1 is set: make sets it; HF_HUB_OFFLINE=0 lets it reach the hub)"
            if (os.environ.get("HF_HUB_OFFLINE") == "1" and not Path(name).exists())
            else ""
        )
        raise UserError(name, f"cannot load the base model: {first}{offline}") from None


def check_data(cfg: dict, where: str) -> None:
    for d in (cfg.get("datasets") or []) + (cfg.get("test_datasets") or []):
        path = Path(str(d.get("path", "")))
        if d.get("ds_type") != "json":
            continue
        if not path.is_file():
            raise UserError(path, f"no such data file (run `make data INPUT=...` first; used by {where})")
        if not path.read_text(encoding="utf-8", errors="replace").strip():
            raise UserError(path, f"no rows (a split left empty by prepare_data's fractions; used by {where})")
