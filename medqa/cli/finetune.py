"""Fine-tune with Axolotl: check the recipe, then `accelerate launch -m axolotl.cli.train`.

    python scripts/finetune.py recipes/smollm2-135m/qlora.yml [--data DIR] [--output-dir DIR] [--set K=V]
    python scripts/finetune.py recipes/llama2-7b/qlora.yml --gpus 2 [--dist zero2] [--nodes 2 --node-rank 0
        --main-address HOST]

The recipe is resolved in one step (medqa.launch.resolve: --data, --output-dir and --set applied, fitted to this
machine and the launch mode, validated with Axolotl's schema; refused in one line where this machine cannot run it,
a GPU recipe without CUDA). What it returns is written into the output folder as `recipe.yml` and Axolotl trains from
that copy, so every run folder says exactly how it was made (`make eval RUN=...` reads it).

Run again after a crash or a kill, the same command resumes from the newest complete checkpoint (one
half-written when the kill came is skipped). A folder holding a finished run, or a run of another
recipe, is refused rather than overwritten.
"""

import argparse
import os
import sys
from pathlib import Path

from medqa import paths
from medqa.checks import check_base_model, check_data, disk_needs, space_problem
from medqa.cli import command
from medqa.errors import UserError
from medqa.fsutil import atomic_write_text, pause_point
from medqa.launch import Topology, resolve, train
from medqa.lock import run_lock
from medqa.recipe import RUN_RECIPE, run_recipe_text, setting
from medqa.runs import resume_point


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path, nargs="?", default=paths.RECIPE, help=f"default {paths.RECIPE}")
    parser.add_argument("--data", type=Path, default=None, help="prepared data folder (train.jsonl, val.jsonl)")
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one recipe key (YAML value), e.g. --set num_epochs=3",
    )
    parser.add_argument(
        "--go-on",
        action="store_true",
        help="train even where the output folder's disk looks too small for the checkpoints (make finetune GO_ON=1)",
    )
    dist = parser.add_argument_group("several GPUs and machines (recipes/accelerate/)")
    dist.add_argument("--gpus", type=int, default=None, help="GPUs on this machine (default 1)")
    dist.add_argument("--dist", choices=["ddp", "zero2"], default="ddp", help="data parallel or DeepSpeed ZeRO-2")
    dist.add_argument("--nodes", type=int, default=1, help="machines in the job")
    dist.add_argument("--node-rank", type=int, default=0, help="this machine's rank, 0 .. nodes-1")
    dist.add_argument("--main-address", default=None, help="address of the machine with rank 0")
    dist.add_argument("--main-port", type=int, default=29500)
    dist.add_argument("--accelerate-config", type=Path, default=None, help="an accelerate config of your own")
    args = parser.parse_args()

    os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")  # Axolotl's telemetry is on unless told otherwise
    import torch

    topology = Topology(args.gpus, args.dist, args.nodes, args.node_rank, args.main_address, args.main_port)
    run = resolve(
        args.recipe,
        data=args.data,
        output_dir=args.output_dir,
        overrides=args.overrides,
        gpus=torch.cuda.device_count() if torch.cuda.is_available() else 0,
        topology=topology,
        accelerate_config=args.accelerate_config,
    )
    cfg, accelerate = run.recipe, run.accelerate
    if run.changed:
        print(f"no CUDA here: {', '.join(run.changed)}", flush=True)
    check_data(cfg, str(args.recipe))
    check_base_model(cfg)

    out = Path(setting(cfg, "output_dir"))
    with run_lock(out):  # one writer for each run folder: a second make finetune here refuses
        short = space_problem(cfg, disk_needs(cfg))
        if short and not args.go_on:
            raise UserError(out, f"{short}: free some space, keep fewer checkpoints (--set save_total_limit=N), "
                                 "or train anyway with GO_ON=1 (--go-on)")  # fmt: skip
        if short:
            print(f"warning: {out}: {short}; going on (--go-on)", flush=True)
        resume = resume_point(cfg, out)
        run_recipe = out / RUN_RECIPE
        atomic_write_text(run_recipe, run_recipe_text(cfg, args.recipe))
        launch = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            *accelerate,
            "-m",
            "axolotl.cli.train",
            str(run_recipe),
        ]
        if resume is not None:
            print(f"resuming from {resume} (the newest complete checkpoint)", flush=True)
            launch.append(f"--resume_from_checkpoint={resume}")
        print("+ " + " ".join(launch[2:]), flush=True)
        pause_point("train")  # a test's hook: the run folder held, training about to start
        sys.exit(train(launch, cfg, args.recipe))


if __name__ == "__main__":
    main()
