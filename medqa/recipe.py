"""Recipes: Axolotl YAML files. Read one, apply a run's --data, --output-dir and --set to it, and check it with
Axolotl's own schema. The one step that makes the recipe a run will train on is medqa.launch.resolve."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import re
import sys
from pathlib import Path

import yaml

from medqa.errors import UserError, first_line

RUN_RECIPE = "recipe.yml"  # the resolved recipe written into every run folder
RUN_RECIPE_END = "# end of the resolved recipe"  # its last line: a copy cut short shows by its absence


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


def run_recipe_text(cfg: dict, source: str | Path) -> str:
    """RUN/recipe.yml: the resolved recipe, said where it came from, ended by a line that a cut copy lacks."""
    return f"# resolved from {source}\n" + yaml.safe_dump(cfg, sort_keys=False) + RUN_RECIPE_END + "\n"


def is_run_recipe(path: Path) -> bool:
    """Whether a recipe file is a run's (RUN/recipe.yml, written by make finetune)."""
    with open(path, "rb") as f:
        return f.readline().startswith(b"# resolved from ")


def load_run_recipe(path: Path) -> dict:
    """A run's recipe.yml, refused when cut short (its end line missing)."""
    cfg = load_recipe(path)
    if not path.read_text(encoding="utf-8").rstrip().endswith(RUN_RECIPE_END):
        raise UserError(
            path,
            f"cut short: its last line ({RUN_RECIPE_END!r}) is missing; copy the run folder again "
            "(a run folder from before that line existed: add it at the end)",
        )
    return cfg


def setting(cfg: dict, key: str):
    """A recipe's value for `key`, or Axolotl's own default where the recipe leaves it out (or null): what the run
    will use (sequence_len 512, micro_batch_size 1, output_dir ./model-out, ...)."""
    value = cfg.get(key)
    if value is not None:
        return value
    from axolotl.utils.schemas.config import AxolotlInputConfig
    from pydantic_core import PydanticUndefined

    field = AxolotlInputConfig.model_fields.get(key)
    default = None if field is None else field.get_default(call_default_factory=True)
    return None if default is PydanticUndefined else default


MAX_VALUES = 100_000  # what a recipe's YAML may expand to: far above any recipe, far below an alias bomb's billions


def expanded_size(value, limit: int = MAX_VALUES) -> int:
    """How many values a loaded YAML document holds once its aliases are expanded (each alias counts again),
    stopping once past `limit`: an alias bomb (9 aliases of 9 aliases, nine deep) is a few lines of YAML and a billion
    values to anything that walks it."""
    sizes: dict[int, int] = {}

    def size(v) -> int:
        if not isinstance(v, (list, dict)):
            return 1
        if id(v) in sizes:
            return sizes[id(v)]
        sizes[id(v)] = limit + 1  # a value that holds itself is past any limit
        children = v.values() if isinstance(v, dict) else v
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[id(v)] = total
        return total

    return size(value)


def load_recipe(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "no such recipe file")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise UserError(path, "not valid YAML: nested too deeply to read") from None
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError, OverflowError) as err:
        # a YAML error, or a tag whose value its constructor refuses (!!float nope, !!int 1.5)
        raise UserError(path, f"not valid YAML: {' '.join(str(err).split())[:300]}") from None
    if not isinstance(cfg, dict):
        raise UserError(path, "a recipe is a YAML mapping of Axolotl keys")
    if expanded_size(cfg) > MAX_VALUES:
        raise UserError(path, f"its YAML aliases expand to more than {MAX_VALUES:,} values (an alias bomb?)")
    odd = _not_plain(cfg)
    if odd:
        raise UserError(path, f"{odd[0]}: {odd[1]}")
    return cfg


PLAIN = (str, bool, int, float, type(None))


def _not_plain(value, where: str = "") -> tuple[str, str] | None:
    """The first value (its key path and YAML type) that is not what JSON has: !!binary gives bytes, !!set a set,
    !!timestamp a date, !!omap and !!pairs tuples; Axolotl's schema lets some through (bytes as text) to fail later."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    elif isinstance(value, float) and not math.isfinite(value):
        return where or "the recipe", f"{value} is not a finite number"
    else:
        return None if isinstance(value, PLAIN) else (where or "the recipe", _odd_type(value))
    for key, child in items:
        if not isinstance(key, PLAIN):
            return where or "the recipe", _odd_type(key) + " as a key"
        found = _not_plain(child, f"{where}{'' if str(key).startswith('[') or not where else '.'}{key}")
        if found:
            return found
    return None


def _odd_type(value) -> str:
    import datetime

    kinds = {bytes: "!!binary", set: "!!set", tuple: "!!omap or !!pairs", datetime.date: "!!timestamp"}
    kind = next((tag for cls, tag in kinds.items() if isinstance(value, cls)), type(value).__name__)
    return f"a value of YAML type {kind} (a recipe holds text, numbers, true/false, null, lists and mappings)"


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
    by_key = {**{name: f for name, f in fields.items()}, **{f.alias: f for f in fields.values() if f.alias}}
    for key in cfg:
        if not isinstance(key, str):
            raise UserError(where, f"a key must be a name, not the {type(key).__name__} {key!r}")
        if key not in by_key:
            close = difflib.get_close_matches(key, by_key, n=1)
            raise UserError(where, f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    # each key's value against its own type first: Axolotl's model validators read other keys' values as the types
    # they expect, and a wrong type there is a traceback (a number as base_model), not a ValidationError
    for key, value in cfg.items():
        _check_type(where, key, value, by_key[key].annotation)
    _check_values(where, cfg)
    try:
        schema(**copy.deepcopy(cfg))  # Axolotl's validators fill in nested keys in place (a dataset's chat_template)
    except ValidationError as err:
        raise UserError(where, _first_problem(err)) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, AssertionError) as err:
        # a validator of Axolotl's that met a combination it does not expect
        raise UserError(where, f"Axolotl's schema check failed: {first_line(err)}") from None


COUNTS = ("micro_batch_size", "gradient_accumulation_steps", "sequence_len", "eval_batch_size")


def _check_values(where, cfg: dict) -> None:
    """The sizes a run divides by: Axolotl's schema takes 0, a negative number or false for them, and the run (or make
    plan) then divides by zero. num_epochs must be above 0, and a path (base model, template, dataset) not blank."""
    for key in COUNTS:
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1
                                  or value != int(value)):  # fmt: skip
            raise UserError(where, f"{key}: {value!r} is not a whole number of at least 1")
    entries = [(f"{key}[{i}].path", d.get("path")) for key in ("datasets", "test_datasets")
               for i, d in enumerate(cfg.get(key) or []) if isinstance(d, dict)]  # fmt: skip
    for key, value in [("base_model", cfg.get("base_model")), ("chat_template_jinja", cfg.get("chat_template_jinja")),
                       *entries]:  # fmt: skip
        if isinstance(value, str) and not value.strip():
            raise UserError(where, f"{key} is empty: it names a file, a folder or a Hub id")
    epochs = cfg.get("num_epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or epochs <= 0):
        raise UserError(where, f"num_epochs: {epochs!r} is not a number above 0")


def _first_problem(err) -> str:
    """A pydantic ValidationError's first problem, as `where: what`."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return f"{loc + ': ' if loc else ''}{first.get('msg')}"


def _check_type(where, key: str, value, annotation) -> None:
    """One key's value against the type its field wants; a mismatch is one line naming the key and that type."""
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(annotation).validate_python(copy.deepcopy(value))  # its validators fill in nested keys in place
    except ValidationError as err:
        wants = getattr(annotation, "__name__", None) or re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(annotation))
        raise UserError(where, f"{key}: {_first_problem(err)} (it takes {wants})") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, AssertionError) as err:
        raise UserError(where, f"{key}: {first_line(err)}") from None


def apply_overrides(cfg: dict, data: Path | None, output_dir: Path | None, overrides: list[str]) -> dict:
    """The recipe with --set KEY=VALUE (YAML values), --data (another prepared folder in place of its sources) and
    --output-dir applied; a new dict."""
    cfg = dict(cfg)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError("--set", f"expected KEY=VALUE, got {item!r}")
        cfg[key] = yaml.safe_load(value)
        if key.endswith("_strategy") and cfg[key] is False:  # YAML reads a bare `no` as false
            cfg[key] = "no"
    for kind in ("eval", "save"):
        given = {key.partition("=")[0] for key in overrides}
        # Axolotl takes an interval in steps or per epoch, not both: the one given replaces the recipe's other
        for key, other in ((f"{kind}_steps", f"{kind}s_per_epoch"), (f"{kind}s_per_epoch", f"{kind}_steps")):
            if key in given and cfg.get(key) is not None and other not in given:
                cfg.pop(other, None)
        if cfg.get(f"{kind}_strategy") == "no":  # turning one off is one override: its interval goes with it
            cfg.pop(f"{kind}_steps", None)
            cfg.pop(f"{kind}s_per_epoch", None)
    if cfg.get("eval_strategy") == "no":  # and its data: Axolotl evaluates at step 0 whenever it has an eval set
        cfg.pop("test_datasets", None)
    if data is not None:
        # train on another prepared folder instead: its file in place of the recipe's sources (a recipe that mixes
        # several trains on this one alone), read the way the recipe reads its first source
        for key in ("datasets", "test_datasets"):
            if cfg.get(key):
                first = cfg[key][0]
                cfg[key] = [{**first, "path": str(data / Path(str(first["path"])).name)}]
    if output_dir is not None:
        cfg["output_dir"] = str(output_dir)
        cfg["dataset_prepared_path"] = str(output_dir / "prepared")
    return cfg
