"""A preference stage that trains the first stage's adapter further, on the 4-bit base it was trained on, with the
first stage itself as DPO's reference model.

Axolotl gives TRL's DPOTrainer a fresh LoRA config for `rl: dpo` and ignores `lora_model_dir` there, so a DPO run
either starts a new adapter on the base (whose reference is the base, not the first stage) or needs the first stage
merged into full-precision weights (recipes/smollm2-135m/dpo.yml): about 14 GB at 7B, which no 16 GB card holds
beside its activations, and quantising the merged weights again rounds most of the first stage away (round 3,
results/smollm2-135m/README.md). This plugin loads the weights of `lora_model_dir` (the first stage's run) into the
adapter TRL made, once the trainer exists and before its first step, and adds a frozen copy named "ref", which TRL
uses for the reference pass (its own way for a model that already holds an adapter):

    plugins: [medqa.continue_adapter.ContinueAdapterPlugin]
    lora_model_dir: outputs/llama2-7b/qlora        # make dpo sets it to the run

The recipe's LoRA settings must be the first stage's (rank, alpha, target modules): a mismatch is one line. TRL's
`precompute_ref_log_probs` runs before this plugin can act (it would take the base as the reference), so it is
refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

from axolotl.integrations.base import BasePlugin

log = logging.getLogger(__name__)
REFERENCE = "ref"  # the adapter name TRL's DPOTrainer uses for its reference pass where the model has one


def _same_adapter(ours, theirs) -> list[str]:
    """The LoRA settings in which two adapter configs differ."""
    keys = ("r", "lora_alpha", "target_modules", "bias", "use_rslora", "use_dora")

    def norm(value):
        return sorted(value) if isinstance(value, (set, list, tuple)) else value

    return [k for k in keys if norm(getattr(ours, k, None)) != norm(getattr(theirs, k, None))]


def continue_adapter(model, first_stage: str | Path) -> int:
    """Load the adapter saved in `first_stage` into `model`'s "default" adapter and into a frozen copy named "ref";
    returns how many tensors were loaded."""
    from peft import PeftConfig, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    first_stage = Path(first_stage)
    saved = PeftConfig.from_pretrained(first_stage)
    differ = _same_adapter(model.peft_config["default"], saved)
    if differ:
        raise ValueError(
            f"{first_stage}: the recipe's LoRA differs from the first stage's in {', '.join(differ)} "
            "(lora_r, lora_alpha, lora_target_modules must be the first stage's)"
        )
    device = next(p.device for p in model.parameters() if p.requires_grad)
    weights = load_peft_weights(str(first_stage), device=str(device))
    for name in ("default", REFERENCE):
        if name not in model.peft_config:
            model.add_adapter(name, model.peft_config["default"])
        result = set_peft_model_state_dict(model, weights, adapter_name=name)
        missing = [k for k in result.missing_keys if "lora_" in k and f".{name}." in k]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"{first_stage}: its adapter does not fit the model ({(missing or result.unexpected_keys)[0]})"
            )
    model.set_adapter("default")
    for name, param in model.named_parameters():
        if f".{REFERENCE}." in name:
            param.requires_grad_(False)
    return len(weights)


class ContinueAdapterPlugin(BasePlugin):
    """For `rl:` runs with `lora_model_dir`: the first stage's adapter trained further, the first stage the
    reference."""

    def post_trainer_create(self, cfg, trainer):
        if not cfg.rl or not cfg.lora_model_dir:
            return
        if getattr(trainer.args, "precompute_ref_log_probs", False):
            raise ValueError(
                "precompute_ref_log_probs runs before the first stage's adapter is loaded (its reference would be the "
                "base): leave it off with medqa.continue_adapter"
            )
        model = trainer.accelerator.unwrap_model(trainer.model)
        n = continue_adapter(model, cfg.lora_model_dir)
        if getattr(trainer.args, "disable_dropout", False):  # as TRL did for the adapter it made: the copy too
            from trl.trainer.utils import disable_dropout_in_model

            disable_dropout_in_model(model)
        log.info("continuing the adapter of %s (%d tensors), with it as the reference model", cfg.lora_model_dir, n)

    def post_train(self, cfg, model):
        """Before the run saves its adapter: the reference copy goes (it is the first stage, saved there already)."""
        peft_config = getattr(model, "peft_config", None)
        if cfg.rl and cfg.lora_model_dir and isinstance(peft_config, dict) and REFERENCE in peft_config:
            model.delete_adapter(REFERENCE)
