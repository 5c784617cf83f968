"""Whether the files of a run folder are what they should be, checked before anything reads them: a run folder is
copied between machines, synced to buckets and resumed after crashes, so any of its files may be missing, empty,
cut short or not what its name says. Each problem is one UserError naming the file and what to do.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from medqa.errors import UserError, first_line

# what each file of a run folder (or of a checkpoint, or of a merged model) is, by name
JSON_FILES = ("adapter_config.json", "tokenizer.json", "tokenizer_config.json", "config.json",
              "generation_config.json", "special_tokens_map.json", "trainer_state.json")  # fmt: skip
WEIGHTS = ("adapter_model.safetensors", "model.safetensors")
TORCH_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin")
TEMPLATES = ("chat_template.jinja",)
# what a checkpoint needs for the trainer to resume from it
CHECKPOINT_FILES = ("trainer_state.json", "adapter_config.json", "adapter_model.safetensors", "optimizer.pt",
                    "scheduler.pt")  # fmt: skip


def parse_json(text: str | bytes, where, what: str = ""):
    """JSON text's value; malformed, or nested deeper than the parser can follow ([[[[...]]]] thousands deep), one
    line naming `where` (`what` says which part of it: "line 3: ")."""
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError(where, f"{what}JSON nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(where, f"{what}not valid JSON ({getattr(err, 'msg', None) or first_line(err, 80)})") from None


def read_json(path: Path, fix: str = "") -> dict | list:
    """A JSON file's content; missing, empty or malformed: one line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "missing" + (f": {fix}" if fix else ""))
    text = path.read_bytes()
    if not text.strip():
        raise UserError(path, "empty" + (f": {fix}" if fix else ""))
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        tail = f": {fix}" if fix else ""
        raise UserError(path, f"not valid JSON, cut short or damaged ({first_line(err, 80)}){tail}") from None


def problem(path: Path) -> str | None:
    """What is wrong with one file, by its kind (None: nothing found)."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    name = path.name
    try:
        if name in JSON_FILES:
            value = json.loads(path.read_bytes())
            if not isinstance(value, dict):
                return "not a JSON object"
            if name == "adapter_config.json" and "peft_type" not in value:
                return "not a peft adapter config (no peft_type)"
        elif name in WEIGHTS:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as weights:
                if not list(weights.keys()):
                    return "holds no tensors"
        elif name in TORCH_FILES:
            with zipfile.ZipFile(path) as archive:  # torch.save writes a zip; a cut one has no directory at its end
                archive.namelist()
        elif name in TEMPLATES:
            import jinja2

            jinja2.Environment().parse(path.read_text(encoding="utf-8"))
    except Exception as err:  # json, zipfile, safetensors and jinja2 raise their own classes: each means unreadable
        return f"cut short or damaged ({first_line(err, 120)})"
    return None


def check_folder(folder: Path, fix: str) -> None:
    """Every file of `folder` whose kind is known is checked; the first problem is one line."""
    for name in (*JSON_FILES, *WEIGHTS, *TORCH_FILES, *TEMPLATES):
        path = Path(folder) / name
        if path.exists():
            found = problem(path)
            if found:
                raise UserError(path, f"{found}: {fix}")


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from ("name: problem"), or None."""
    for name in CHECKPOINT_FILES:
        found = problem(checkpoint / name)
        if found:
            return f"{name} {found}"
    return None
