"""A run folder: what it holds (its resolved recipe, base model, adapter, tokenizer and checkpoints), and whether a
new launch resumes it, starts it, or is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medqa import prompts
from medqa.errors import UserError
from medqa.recipe import RUN_RECIPE, load_recipe

ADAPTER_WEIGHTS = "adapter_model.safetensors"  # written when a run has finished


def finished(folder: Path) -> bool:
    """Whether the run in `folder` has finished (its adapter saved)."""
    return (Path(folder) / ADAPTER_WEIGHTS).is_file()


@dataclass
class Run:
    """A training run folder: its resolved recipe, base model, adapter and tokenizer (with the chat template)."""

    path: Path
    recipe: dict
    base_model: str

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = Path(path)
        if not (path / RUN_RECIPE).is_file():
            raise UserError(path, f"not a run folder (no {RUN_RECIPE}; train one with `make finetune`)")
        recipe = load_recipe(path / RUN_RECIPE)
        return cls(path, recipe, str(recipe["base_model"]))

    def tokenizer(self):
        """The tokenizer the run saved (its chat template is the training prompt); before the run has saved
        one, the base tokenizer with the recipe's template."""
        from transformers import AutoTokenizer

        if (self.path / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(self.path)
            try:
                prompts.answer_frame(tokenizer)
            except ValueError as err:
                raise UserError(self.path, f"chat template: {err}") from None
            return tokenizer
        return prompts.recipe_tokenizer(self.recipe, str(self.path / RUN_RECIPE))

    @property
    def data_dir(self) -> Path:
        """The prepared data folder the run trained on (its first dataset's folder)."""
        return Path(str(self.recipe["datasets"][0]["path"])).parent

    @property
    def finished(self) -> bool:
        return finished(self.path)

    @property
    def adapter(self) -> Path:
        """The finished run's adapter (its folder); an unfinished run is refused in one line."""
        if not self.finished:
            raise UserError(self.path, f"no {ADAPTER_WEIGHTS}: the run has not finished (see its checkpoints)")
        return self.path

    def epoch_adapter(self, epoch: float) -> Path:
        """The checkpoint saved at the end of `epoch` (a run that saves once an epoch, `saves_per_epoch: 1`)."""
        for checkpoint in complete_checkpoints(self.path):
            state = json.loads((checkpoint / "trainer_state.json").read_text())
            if abs(state.get("epoch", -1) - epoch) < 0.1 and (checkpoint / "adapter_config.json").is_file():
                return checkpoint
        raise UserError(self.path, f"no complete checkpoint at the end of epoch {epoch:g}")

    def load_model(self, weights: str = "merged", adapter: Path | None = None):
        """The model as it was trained (medqa.inference.load_model), with this run's adapter or `adapter` (a
        checkpoint of it), and the tokenizer with the run's chat template."""
        from medqa.inference import load_model

        quantized = bool(self.recipe.get("load_in_4bit"))
        bnb = self.recipe.get("bnb_config_kwargs")
        model, tokenizer = load_model(self.base_model, adapter or self.adapter, weights, self.dtype, quantized, bnb)
        tokenizer.chat_template = self.tokenizer().chat_template  # the prompt the run was trained with
        return model, tokenizer

    @property
    def dtype(self) -> str:
        """The precision the run computed in, resolved as Axolotl resolves it for training (`bf16: auto` is bf16
        where the GPU has it, else fp16): bfloat16, float16 or float32."""
        from axolotl.utils.config import resolve_dtype
        from axolotl.utils.dict import DictDefault

        keys = ("bf16", "fp16", "bfloat16", "float16", "load_in_8bit")
        cfg = DictDefault({k: self.recipe.get(k) for k in keys})
        resolve_dtype(cfg)
        return str(cfg.torch_dtype).removeprefix("torch.")


def complete_checkpoints(out: Path) -> list[Path]:
    """Checkpoints whose save finished: the trainer writes trainer_state.json last."""
    found = [p for p in out.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted((p for p in found if (p / "trainer_state.json").is_file()), key=lambda p: int(p.name.split("-")[-1]))


def resume_point(cfg: dict, out: Path) -> Path | None:
    """Where an interrupted run of this same recipe stopped; refuse a folder that holds anything else."""
    previous = out / RUN_RECIPE
    if not previous.is_file():
        if any(out.glob("checkpoint-*")) or finished(out):
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
    if finished(out):
        raise UserError(
            out, "holds a finished run, which is never overwritten; pass another --output-dir or remove the folder"
        )
    checkpoints = complete_checkpoints(out)
    return checkpoints[-1] if checkpoints else None
