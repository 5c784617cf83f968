"""Recipes: Axolotl YAML files. Read one, check it with Axolotl's own schema, and say what it needs."""

from __future__ import annotations

from pathlib import Path

import yaml

from medqa.errors import UserError
from medqa.prompts import PromptFormat, get_format

STRATEGY_PREFIX = "medqa.strategies."
# Axolotl's own dataset types, and the prompt a model trained with them is asked with
AXOLOTL_TYPES = {"completion": "seed_text"}


def load_recipe(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "no such recipe file")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(path, f"not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(cfg, dict):
        raise UserError(path, "a recipe is a YAML mapping of Axolotl keys")
    return cfg


def prompt_format(cfg: dict, where="recipe") -> PromptFormat:
    """The prompt format of the recipe's first dataset (`type: medqa.strategies.<format>`)."""
    kind = str(((cfg.get("datasets") or [{}])[0] or {}).get("type", ""))
    if kind in AXOLOTL_TYPES:
        return get_format(AXOLOTL_TYPES[kind])
    if not kind.startswith(STRATEGY_PREFIX):
        raise UserError(where, f"datasets[0].type is {kind!r}; expected {STRATEGY_PREFIX}<format>")
    try:
        return get_format(kind[len(STRATEGY_PREFIX) :])
    except ValueError as err:
        raise UserError(where, str(err)) from None


def cuda_needs(cfg: dict) -> list[str]:
    """The recipe's settings that only a CUDA GPU can run."""
    needs = [k for k in ("bf16", "fp16", "tf32", "flash_attention") if cfg.get(k) in (True, "auto")]
    needs += [
        k for k in cfg if (k.startswith("lora_") and k.endswith("_kernel") or k.startswith("liger_")) and cfg[k] is True
    ]
    needs += [k for k in ("deepspeed", "fsdp", "fsdp_config") if cfg.get(k)]
    return needs


def validate(cfg: dict, where="recipe") -> None:
    """Check the recipe against Axolotl's config schema; the first problem becomes one line.

    Axolotl ignores keys it does not know; a misspelt key would silently do nothing, so it is an error.
    """
    import difflib

    from axolotl.utils.schemas.config import AxolotlInputConfig
    from pydantic import ValidationError

    fields = AxolotlInputConfig.model_fields
    known = set(fields) | {f.alias for f in fields.values() if f.alias}
    for key in cfg:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise UserError(where, f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    try:
        AxolotlInputConfig(**cfg)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise UserError(where, f"{loc + ': ' if loc else ''}{first.get('msg')}") from None
