"""Check the flagship recipe on several GPUs: 1 GPU, DDP and DeepSpeed ZeRO-2 on one machine, and two machines
simulated on one (a process per GPU, each a "machine" that talks to the other through sockets).

    python scripts/scale_check.py --model /tmp/medqa-llama2-7b-random --data data/medqa --gpus 2
        [--runs 1gpu,ddp,zero2,nodes]

Each run is `scripts/finetune.py recipes/llama2-7b/qlora.yml [--gpus N [--dist zero2]]` on a
Llama-2-7B-shaped model with random weights (made once, as in make bench), for --steps optimizer steps with a
checkpoint every --save-steps, metered by medqa_lab.bench.meter.Meter (tokens summed over the GPUs). Then each
multi-GPU run is resumed as after a crash: its final adapter and any checkpoint after the first are
removed and the same command runs again, which must load the first checkpoint and finish. Writes
results/bench/<date>-<gpu>-scaling.json and .md: tokens/s, scaling vs 1 GPU, peak memory per GPU, losses,
checkpoints, resume.
"""

import argparse
import sys
from pathlib import Path

from medqa import paths
from medqa.cli import command
from medqa.errors import UserError
from medqa.paths import FLAGSHIP
from medqa_lab.bench.random_model import BENCH_MODEL, make_model
from medqa_lab.bench.scaling import RUNS, check


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, default=BENCH_MODEL, help=f"model folder, made here if missing (default {BENCH_MODEL})"
    )
    parser.add_argument("--recipe", type=Path, default=FLAGSHIP, help=f"the recipe to check (default {FLAGSHIP})")
    parser.add_argument("--data", type=Path, default=paths.SEED_DATA)
    parser.add_argument("--out", type=Path, default=paths.BENCH_RESULTS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/medqa-scale-check"))
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--save-steps", type=int, default=5)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"which of {', '.join(RUNS)} (default: all)")
    args = parser.parse_args()
    runs = args.runs.split(",")
    if not runs or set(runs) - set(RUNS):
        raise UserError("--runs", f"choose among {', '.join(RUNS)}, got {args.runs!r}")
    import torch

    if torch.cuda.device_count() < args.gpus:
        raise UserError("--gpus", f"asked for {args.gpus} GPUs, this machine has {torch.cuda.device_count()}")
    if not (args.data / "train.jsonl").is_file():
        raise UserError(args.data / "train.jsonl", "no such file (run `make data` first)")
    if not (args.model / "config.json").is_file():
        make_model("llama2-7b", args.model)
    if args.save_steps >= args.steps:
        raise UserError("--save-steps", f"must be below --steps ({args.steps}) so that a checkpoint is written")

    ok = check(args.recipe, args.model, args.data, args.work, args.out, args.gpus, args.steps, args.save_steps, runs)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
