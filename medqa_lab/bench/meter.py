"""Training-speed measurement, the same way for every contender.

`Meter` counts the non-padding tokens of every batch the trainer trains on and times optimizer steps
after a warm-up; `BenchPlugin` attaches it to an Axolotl run (`plugins: [medqa_lab.bench.meter.BenchPlugin]`),
and `attach` to a plain transformers Trainer. Both write the figures to `<output_dir>/bench.json`; under
DDP or DeepSpeed the ranks' tokens are summed and their peaks gathered.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

from medqa.prompts import IGNORE_INDEX

WARMUP_STEPS = int(os.environ.get("MEDQA_BENCH_WARMUP", "3"))


class Meter(TrainerCallback):
    def __init__(self, out: Path, epoch_tokens: int, pad_token_id: int | None, warmup: int = WARMUP_STEPS):
        self.out, self.epoch_tokens, self.pad_token_id, self.warmup = Path(out), epoch_tokens, pad_token_id, warmup
        self.tokens = 0  # non-padding tokens trained on after the warm-up
        self.all_tokens = 0  # ... in all steps
        self.step_times: list[float] = []
        self._t0 = None
        self.peak_allocated = self.peak_reserved = 0

    def read_peaks(self) -> None:
        """Axolotl resets CUDA's peak counters each time it logs memory, so keep our own maximum."""
        import torch

        if torch.cuda.is_available():
            self.peak_allocated = max(self.peak_allocated, torch.cuda.max_memory_allocated())
            self.peak_reserved = max(self.peak_reserved, torch.cuda.max_memory_reserved())

    def count(self, inputs) -> None:
        self.all_tokens += (n := real_tokens(inputs, self.pad_token_id))
        if self._t0 is not None:
            self.tokens += n

    @staticmethod
    def _sync():
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self._sync()
            self._t0 = time.perf_counter()
            self._step_start = self._t0
        elif self._t0 is not None:
            self._step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._t0 is not None:
            self._sync()
            self.step_times.append(time.perf_counter() - self._step_start)
        self.read_peaks()

    def on_train_end(self, args, state, control, **kwargs):
        import torch

        self._sync()
        self.read_peaks()
        elapsed = sum(self.step_times)
        cuda = torch.cuda.is_available()
        peaks = [self.peak_allocated]
        world = 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # every rank trains its own batches: tokens add up, the slowest rank sets the time
            world = torch.distributed.get_world_size()
            device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
            sums = torch.tensor([self.tokens, self.all_tokens], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(sums)
            self.tokens, self.all_tokens = (int(v) for v in sums.tolist())
            maxes = torch.tensor([elapsed, self.peak_reserved], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(maxes, op=torch.distributed.ReduceOp.MAX)
            elapsed, self.peak_reserved = maxes[0].item(), int(maxes[1].item())
            gathered = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(world)]
            torch.distributed.all_gather(
                gathered, torch.tensor([float(self.peak_allocated)], device=device, dtype=torch.float64)
            )
            peaks = [int(t.item()) for t in gathered]
            self.peak_allocated = max(peaks)
        if not state.is_world_process_zero:
            return
        result = {
            "world_size": world,
            "steps_timed": len(self.step_times),
            "warmup_steps": self.warmup,
            "tokens_timed": self.tokens,
            "tokens_all_steps": self.all_tokens,
            "seconds_timed": elapsed,
            "tokens_per_s": self.tokens / elapsed if elapsed else None,
            "step_s": elapsed / len(self.step_times) if self.step_times else None,
            "epoch_tokens": self.epoch_tokens,
            "epoch_s": self.epoch_tokens / (self.tokens / elapsed) if self.tokens and elapsed else None,
            "peak_allocated_gib": self.peak_allocated / 2**30 if cuda else None,
            "peak_reserved_gib": self.peak_reserved / 2**30 if cuda else None,
            "peak_allocated_gib_per_rank": [p / 2**30 for p in peaks] if cuda else None,
            "gpu": torch.cuda.get_device_name() if cuda else "cpu",
            "global_step": state.global_step,
            "losses": [h["loss"] for h in state.log_history if "loss" in h],  # mean over ranks, per logged step
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")


def real_tokens(inputs, pad_token_id: int | None) -> int:
    """Non-padding tokens in a batch: a position is padding when it holds the pad id and carries no label.

    attention_mask cannot tell: Axolotl's packed batches mark every position of a packed row.
    """
    ids, labels = inputs["input_ids"], inputs.get("labels")
    if pad_token_id is None or labels is None:
        mask = inputs.get("attention_mask")
        return int((mask != 0).sum()) if mask is not None else ids.numel()
    return int(((ids != pad_token_id) | (labels != IGNORE_INDEX)).sum())


def dataset_tokens(dataset) -> int:
    """Non-padding tokens in one epoch of a tokenised (unpacked) dataset; of a preference dataset, both sequences of
    every pair (the prompt twice, with the chosen and with the rejected answer)."""
    if "length" in dataset.column_names:
        return int(sum(dataset["length"]))
    if "input_ids" not in dataset.column_names and "prompt_ids" in dataset.column_names:
        return int(
            sum(
                2 * len(p) + len(c) + len(r)
                for p, c, r in zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"], strict=True)
            )
        )
    return int(sum(len(ids) for ids in dataset["input_ids"]))


def attach(trainer, out: Path) -> Meter:
    """Meter a transformers Trainer: wrap its training_step to count each micro-batch's tokens."""
    tokenizer = getattr(trainer, "processing_class", None) or getattr(trainer, "tokenizer", None)
    meter = Meter(out, dataset_tokens(trainer.train_dataset), getattr(tokenizer, "pad_token_id", None))
    step = trainer.training_step

    def counted_step(model, inputs, *args, **kwargs):
        meter.count(inputs)
        loss = step(model, inputs, *args, **kwargs)
        meter.read_peaks()
        return loss

    trainer.training_step = counted_step
    trainer.add_callback(meter)
    return meter


class BenchPlugin(BasePlugin):
    """Axolotl plugin: `plugins: [medqa_lab.bench.meter.BenchPlugin]` writes `<output_dir>/bench.json`."""

    def post_trainer_create(self, cfg, trainer):
        attach(trainer, Path(cfg.output_dir))
