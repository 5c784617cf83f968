"""Fine-tune with Axolotl: check the recipe, then `accelerate launch -m axolotl.cli.train`.

    python scripts/finetune.py recipes/smollm2-135m-medqa-qlora.yml [--data DIR] [--output-dir DIR] [--set K=V]

The recipe is validated with Axolotl's schema and refused, in one line, where this machine cannot
run it (a GPU recipe without CUDA). The recipe, with --data, --output-dir and --set applied, is written
into the output folder as `recipe.yml` and Axolotl trains from that copy, so every run folder says exactly
how it was made (`make eval RUN=...` reads it).

Run again after a crash or a kill, the same command resumes from the newest complete checkpoint (one
half-written when the kill came is skipped). A folder holding a finished run, or a run of another
recipe, is refused rather than overwritten.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from medqa.errors import UserError, cli
from medqa.fsutil import atomic_write_text
from medqa.inference import RUN_RECIPE
from medqa.recipe import cuda_needs, load_recipe, validate

CPU_RECIPE = "recipes/smollm2-135m-medqa-qlora.yml"


def resolve(cfg: dict, data: Path | None, output_dir: Path | None, overrides: list[str]) -> dict:
    cfg = dict(cfg)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError("--set", f"expected KEY=VALUE, got {item!r}")
        cfg[key] = yaml.safe_load(value)
    if data is not None:
        for key, split in (("datasets", "train"), ("test_datasets", "val")):
            cfg[key] = [{**d, "path": str(data / f"{split}.jsonl")} for d in cfg.get(key) or []]
    if output_dir is not None:
        cfg["output_dir"] = str(output_dir)
        cfg["dataset_prepared_path"] = str(output_dir / "prepared")
    return cfg


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


def check_base_model(cfg: dict) -> None:
    """The base model must be loadable before any GPU time is spent: a local folder, or a hub id we can reach."""
    from transformers import AutoConfig

    name = str(cfg.get("base_model", ""))
    try:
        AutoConfig.from_pretrained(name, trust_remote_code=bool(cfg.get("trust_remote_code", False)))
    except Exception as err:  # hub and file errors come in many classes; each means "cannot load it"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        offline = (
            " (HF_HUB_OFFLINE=1 is set: make sets it; HF_HUB_OFFLINE=0 lets it reach the hub)"
            if (os.environ.get("HF_HUB_OFFLINE") == "1" and not Path(name).exists())
            else ""
        )
        raise UserError(name, f"cannot load the base model: {first}{offline}") from None


def check_data(cfg: dict, where: str) -> None:
    for d in (cfg.get("datasets") or []) + (cfg.get("test_datasets") or []):
        path = Path(str(d.get("path", "")))
        if d.get("ds_type") != "json":
            continue
        if not path.is_file():
            raise UserError(path, f"no such data file (run `make data INPUT=...` first; used by {where})")
        if not path.read_text(encoding="utf-8", errors="replace").strip():
            raise UserError(path, f"no rows (a split left empty by prepare_data's fractions; used by {where})")


@cli
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
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
    parser.add_argument("--accelerate-config", type=Path, default=None)
    args = parser.parse_args()

    cfg = resolve(load_recipe(args.recipe), args.data, args.output_dir, args.overrides)
    validate(cfg, str(args.recipe))
    os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")  # Axolotl's telemetry is on unless told otherwise
    import torch

    has_cuda = torch.cuda.is_available()
    needs = cuda_needs(cfg)
    if needs and not has_cuda:
        raise UserError(
            args.recipe,
            f"needs a CUDA GPU ({', '.join(needs)}) and this machine has none; "
            f"on a CPU run `make demo` or `make finetune RECIPE={CPU_RECIPE}`",
        )
    check_data(cfg, str(args.recipe))
    check_base_model(cfg)

    out = Path(cfg["output_dir"])
    resume = resume_point(cfg, out)
    run_recipe = out / RUN_RECIPE
    atomic_write_text(run_recipe, f"# resolved from {args.recipe}\n" + yaml.safe_dump(cfg, sort_keys=False))
    launch = [sys.executable, "-m", "accelerate.commands.launch"]
    if args.accelerate_config:
        launch += ["--config_file", str(args.accelerate_config)]
    elif not has_cuda:
        launch += ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["-m", "axolotl.cli.train", str(run_recipe)]
    if resume is not None:
        print(f"resuming from {resume} (the newest complete checkpoint)", flush=True)
        launch.append(f"--resume_from_checkpoint={resume}")
    print("+ " + " ".join(launch[2:]), flush=True)
    sys.exit(subprocess.call(launch))


if __name__ == "__main__":
    main()
