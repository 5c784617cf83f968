"""A run folder: what it holds (its resolved recipe, base model, adapter, tokenizer and checkpoints), and whether a
new launch resumes it, starts it, or is refused."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from medqa import prompts
from medqa.errors import UserError, loading
from medqa.integrity import check_folder, checkpoint_problem, problem, read_json
from medqa.recipe import RUN_RECIPE, load_run_recipe

ADAPTER_WEIGHTS = "adapter_model.safetensors"  # written when a run has finished
REPAIR = "copy the run folder again from where it was trained, or train it again (make finetune)"


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
        recipe = load_run_recipe(path / RUN_RECIPE)
        if not recipe.get("base_model"):
            raise UserError(path / RUN_RECIPE, f"names no base_model: {REPAIR}")
        check_folder(path, REPAIR)
        pairs = (("tokenizer_config.json", "tokenizer.json"), ("tokenizer.json", "tokenizer_config.json"),
                 (ADAPTER_WEIGHTS, "adapter_config.json"))  # fmt: skip
        for one, other in pairs:
            if (path / one).is_file() and not (path / other).is_file():
                raise UserError(path / other, f"missing (the run has {one}): {REPAIR}")
        template = path / "chat_template.jinja"  # the training prompt, which the tokenizer saved beside it
        if (path / "tokenizer_config.json").is_file() and not template.is_file():
            if "chat_template" not in read_json(path / "tokenizer_config.json"):
                raise UserError(template, f"missing: the run's prompt is in it; {REPAIR}")
        return cls(path, recipe, str(recipe["base_model"]))

    def tokenizer(self):
        """The tokenizer the run saved (its chat template is the training prompt); before the run has saved
        one, the base tokenizer with the recipe's template."""
        from transformers import AutoTokenizer

        if (self.path / "tokenizer_config.json").is_file():
            with loading(self.path, f"the run's tokenizer cannot be loaded ({REPAIR})"):
                tokenizer = AutoTokenizer.from_pretrained(self.path)
            with loading(self.path, f"the run's tokenizer does not work ({REPAIR})"):
                prompts.encode_prompt(tokenizer, "Is it working?")  # settings that load but break encoding
            with loading(self.path, "chat template"):  # the template renders with this tokenizer's tokens
                prompts.answer_frame(tokenizer)
            return tokenizer
        return prompts.recipe_tokenizer(self.recipe, str(self.path / RUN_RECIPE))

    @property
    def data_dir(self) -> Path:
        """The prepared data folder the run trained on (its first dataset's folder)."""
        return Path(str(self.recipe["datasets"][0]["path"])).parent

    @property
    def data_dirs(self) -> list[Path]:
        """Every prepared data folder the run trained on, each once, in the recipe's order."""
        return list(dict.fromkeys(Path(str(d["path"])).parent for d in self.recipe["datasets"]))

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
            if abs(state.get("epoch", -1) - epoch) < 0.1 and not checkpoint_problem(checkpoint):
                return checkpoint
        raise UserError(self.path, f"no complete checkpoint at the end of epoch {epoch:g}")

    def load_model(self, weights: str = "merged", adapter: Path | None = None):
        """The model as it was trained (medqa.inference.load_model), with this run's adapter or `adapter` (a
        checkpoint of it), and the tokenizer with the run's chat template."""
        from medqa.inference import load_model

        quantized = bool(self.recipe.get("load_in_4bit"))
        bnb = self.recipe.get("bnb_config_kwargs")
        adapter = adapter or self.adapter
        with loading(adapter, "the model cannot be loaded with this adapter"):  # files that do not fit together
            model, tokenizer = load_model(self.base_model, adapter, weights, self.dtype, quantized, bnb)
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


def checkpoints(out: Path) -> list[Path]:
    """The trainer's checkpoint-N folders, oldest first."""
    found = [p for p in Path(out).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def complete_checkpoints(out: Path) -> list[Path]:
    """Checkpoints whose save finished (the trainer writes trainer_state.json last) and whose state reads."""
    return [p for p in checkpoints(out) if problem(p / "trainer_state.json") is None]


def resume_point(cfg: dict, out: Path) -> Path | None:
    """Where an interrupted run of this same recipe stopped; refuse a folder that holds anything else."""
    previous = out / RUN_RECIPE
    if not previous.is_file():
        if any(out.glob("checkpoint-*")) or finished(out):
            raise UserError(out, f"holds a run without {RUN_RECIPE}; pass another --output-dir or remove the folder")
        return None
    before = load_run_recipe(previous)
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
    return newest_sound_checkpoint(out)


def interrupted_save(checkpoint: Path) -> bool:
    """A checkpoint the trainer did not finish saving (stopped mid-save: it writes trainer_state.json last)."""
    return not (checkpoint / "trainer_state.json").exists()


def newest_sound_checkpoint(out: Path) -> Path | None:
    """The newest checkpoint the trainer can resume from; a damaged newer one is skipped, in one line, and a save the
    trainer was stopped in the middle of (no trainer_state.json) is removed: the trainer writes that step again.
    Checkpoints that are all damaged: one line, and nothing starts; all of them interrupted saves: the run starts
    again from the beginning."""
    skipped = []
    for checkpoint in reversed(checkpoints(out)):
        why = checkpoint_problem(checkpoint)
        if why is None:
            _drop_interrupted(skipped, f"resuming from {checkpoint.name} instead")
            for bad, reason in [(bad, reason) for bad, reason in skipped if bad.exists()]:
                print(f"note: {bad.name} is damaged ({reason}): resuming from {checkpoint.name} instead", flush=True)
            return checkpoint
        skipped.append((checkpoint, why))
    if skipped and all(interrupted_save(bad) for bad, _ in skipped):
        _drop_interrupted(skipped, "training from the start")
        return None
    if skipped:
        bad, reason = skipped[0]
        raise UserError(
            out,
            f"no checkpoint to resume from: {len(skipped)} found, none complete (newest, {bad.name}: {reason}); "
            "remove them to train from the start, or copy the folder again",
        )
    return None


def _drop_interrupted(skipped: list, then: str) -> None:
    for bad, _ in skipped:
        if interrupted_save(bad):
            print(f"note: {bad.name} is a save that was stopped before it finished: removed, {then}", flush=True)
            shutil.rmtree(bad)
