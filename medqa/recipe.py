"""Recipes: Axolotl YAML files. Read one, check it with Axolotl's own schema, and say what it needs."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import yaml

from medqa.errors import UserError

RUN_RECIPE = "recipe.yml"  # the resolved recipe written into every run folder


@contextlib.contextmanager
def quiet_stderr():
    """Hide what native libraries print to stderr while importing (torchao, bitsandbytes on a CPU machine)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


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


def recipe_tokenizer(cfg: dict, where="recipe"):
    """The base model's tokenizer with the recipe's chat template set, as Axolotl sets it before training."""
    from axolotl.utils.chat_templates import get_chat_template_from_config
    from axolotl.utils.dict import DictDefault
    from transformers import AutoTokenizer

    from medqa.prompts import answer_frame

    tokenizer = AutoTokenizer.from_pretrained(str(cfg.get("tokenizer_config") or cfg["base_model"]))
    try:
        if cfg.get("chat_template"):
            tokenizer.chat_template = get_chat_template_from_config(DictDefault(cfg), tokenizer=tokenizer)
        answer_frame(tokenizer)
    except ValueError as err:
        raise UserError(where, f"chat template: {err}") from None
    return tokenizer


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

    schema = AxolotlInputConfig
    if cfg.get("plugins"):  # a plugin brings its own keys (e.g. Liger's liger_*)
        with quiet_stderr():
            from axolotl.integrations.base import PluginManager, load_plugin
            from axolotl.integrations.config import merge_input_args

        manager = PluginManager.get_instance()
        registered, manager.plugins = manager.plugins, type(manager.plugins)()  # this recipe's plugins only
        try:
            for name in cfg["plugins"]:
                try:
                    with quiet_stderr():
                        load_plugin(name)  # PluginManager.register would only log the failure
                except Exception as err:
                    raise UserError(where, f"plugin {name!r} cannot be loaded: {err}") from None
                manager.register(name)
            _, schema = merge_input_args()
        finally:
            manager.plugins = registered
    fields = schema.model_fields
    known = set(fields) | {f.alias for f in fields.values() if f.alias}
    for key in cfg:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise UserError(where, f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    try:
        schema(**cfg)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise UserError(where, f"{loc + ': ' if loc else ''}{first.get('msg')}") from None


# --------------------------------------------------------------------------- a run's folder and inputs


def resolve(cfg: dict, data: Path | None, output_dir: Path | None, overrides: list[str]) -> dict:
    cfg = dict(cfg)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError("--set", f"expected KEY=VALUE, got {item!r}")
        cfg[key] = yaml.safe_load(value)
        if key.endswith("_strategy") and cfg[key] is False:  # YAML reads a bare `no` as false
            cfg[key] = "no"
    for kind in ("eval", "save"):  # turning one off is one override: its interval goes with it
        if cfg.get(f"{kind}_strategy") == "no":
            cfg.pop(f"{kind}_steps", None)
    if data is not None:  # the same files, read from another prepared folder
        for key in ("datasets", "test_datasets"):
            if cfg.get(key):
                cfg[key] = [{**d, "path": str(data / Path(str(d["path"])).name)} for d in cfg[key]]
    if output_dir is not None:
        cfg["output_dir"] = str(output_dir)
        cfg["dataset_prepared_path"] = str(output_dir / "prepared")
    return cfg


def complete_checkpoints(out: Path) -> list[Path]:
    """Checkpoints whose save finished: the trainer writes trainer_state.json last."""
    found = [p for p in out.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted((p for p in found if (p / "trainer_state.json").is_file()), key=lambda p: int(p.name.split("-")[-1]))


def resume_point(cfg: dict, out: Path) -> Path | None:
    """Where an interrupted run of this same recipe stopped; refuse a folder that holds anything else."""
    previous = out / RUN_RECIPE
    if not previous.is_file():
        if any(out.glob("checkpoint-*")) or (out / "adapter_model.safetensors").is_file():
            raise UserError(out, f"holds a run without {RUN_RECIPE}; pass another --output-dir or remove the folder")
        return None
    before = load_recipe(previous)
    changed = sorted(k for k in set(before) | set(cfg) if before.get(k) != cfg.get(k))
    if changed:
        raise UserError(
            out,
            f"holds a run of another recipe (differs in {', '.join(changed[:5])}); "
            "pass another --output-dir or remove the folder",
        )
    if (out / "adapter_model.safetensors").is_file():
        raise UserError(
            out, "holds a finished run, which is never overwritten; pass another --output-dir or remove the folder"
        )
    checkpoints = complete_checkpoints(out)
    return checkpoints[-1] if checkpoints else None


def check_base_model(cfg: dict) -> None:
    """The base model must be loadable before any GPU time is spent: a local folder, or a hub id we can reach."""
    from transformers import AutoConfig

    name = str(cfg.get("base_model", ""))
    try:
        AutoConfig.from_pretrained(name, trust_remote_code=bool(cfg.get("trust_remote_code", False)))
    except Exception as err:  # hub and file errors come in many classes; each means "cannot load it"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
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
