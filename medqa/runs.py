"""A run folder: its complete checkpoints, and whether a new launch resumes it, starts it, or is refused."""

from __future__ import annotations

from pathlib import Path

from medqa.errors import UserError
from medqa.recipe import RUN_RECIPE, load_recipe


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
