"""Resume bitsandbytes' paged optimizers from a checkpoint.

A paged optimizer (`paged_adamw_32bit`, the recipes' choice) keeps its state in CUDA managed memory
and marks those tensors `is_paged`. `torch.save` keeps the mark but `torch.load` gives back ordinary
memory, so the first step after a resume asks CUDA to prefetch memory that is not managed and the
process dies with "Error invalid argument ... pythonInterface.cpp" (bitsandbytes issue 782, Axolotl
issue 864). `PagedResumePlugin` copies each loaded state tensor into fresh managed memory after the
trainer has loaded the checkpoint and before the first step:

    plugins: [medqa.resume.PagedResumePlugin]
"""

import logging

import torch
from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

log = logging.getLogger(__name__)


def paged_optimizer(optimizer):
    """The bitsandbytes optimizer inside accelerate's (or DeepSpeed's) wrappers, if it is a paged one."""
    from bitsandbytes.optim.optimizer import Optimizer8bit

    while optimizer is not None and not isinstance(optimizer, Optimizer8bit):
        optimizer = getattr(optimizer, "optimizer", None)
    return optimizer if optimizer is not None and optimizer.is_paged else None


def repage(optimizer) -> int:
    """Move every paged-marked state tensor that is not in managed memory into managed memory; returns the count."""
    opt = paged_optimizer(optimizer)
    if opt is None:
        return 0
    from bitsandbytes import functional as F

    live = {id(t) for t in opt.page_mng.paged_tensors}  # buffers the optimizer allocated itself
    moved = 0
    for param, state in opt.state.items():
        for key, value in list(state.items()):
            marked = isinstance(value, torch.Tensor) and getattr(value, "is_paged", False)
            if not marked or id(value) in live or param.device.type != "cuda":  # bitsandbytes pages only on CUDA
                continue
            buffer = F.get_paged(*value.shape, dtype=value.dtype, device=param.device)
            buffer.copy_(value)
            opt.page_mng.paged_tensors.append(buffer)
            state[key] = buffer
            moved += 1
    return moved


class RepageOnTrainBegin(TrainerCallback):
    """The trainer loads the optimizer state before `on_train_begin`: repage it there."""

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        moved = repage(optimizer)
        if moved:
            log.info("moved %d loaded optimizer state tensors back into paged (managed) memory", moved)


class PagedResumePlugin(BasePlugin):
    """Axolotl plugin: `plugins: [medqa.resume.PagedResumePlugin]` makes paged optimizers resumable."""

    def post_trainer_create(self, cfg, trainer):
        trainer.add_callback(RepageOnTrainBegin())
