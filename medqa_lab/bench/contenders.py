"""The contenders of `make bench`: the seed notebook's setup (medqa_lab.bench.notebook), Axolotl's example config and
the project's recipe (with switches), each trained in a process of its own, metered by medqa_lab.bench.meter.Meter;
their table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from medqa.checks import cuda_needs
from medqa.errors import UserError, last_line
from medqa.recipe import load_recipe

# named switches: `recipe+liger` is short for the keys below
SWITCHES = {
    "liger": {
        "plugins": ["axolotl.integrations.liger.LigerPlugin"],
        "liger_rms_norm": True,
        "liger_glu_activation": True,
        "liger_fused_linear_cross_entropy": True,
    },
}


def axolotl_cfg(name: str, recipe: Path, model_dir: Path, data: Path, out: Path, steps: int) -> dict:
    """The project's recipe, Axolotl's example-style config, and the recipe with one lever changed."""
    cfg = load_recipe(recipe)
    cfg.update(
        base_model=str(model_dir),
        max_steps=steps,
        output_dir=str(out),
        dataset_prepared_path=str(out / "prepared"),
        save_strategy="no",
        eval_strategy="no",
        use_tensorboard=False,
    )
    cfg.pop("save_steps", None)
    cfg.pop("eval_steps", None)
    cfg.pop("test_datasets", None)
    cfg["datasets"] = [{**cfg["datasets"][0], "path": str(data / "train.jsonl")}]
    if name == "axolotl-example":  # examples/llama-2/qlora.yml, on the seed's text
        cfg.update(
            lora_r=32,
            lora_alpha=16,
            lora_dropout=0.05,
            lora_target_linear=True,
            sequence_len=4096,
            sample_packing=True,
            pad_to_sequence_len=True,
            bf16=True,
            tf32=False,
            datasets=[{"path": str(data / "train_text.jsonl"), "ds_type": "json", "type": "completion"}],
        )
        cfg.pop("lora_target_modules")
        for key in [k for k in cfg if k == "plugins" or k.startswith("liger_")]:  # the example has no Liger
            del cfg[key]
    elif name != "recipe":
        for lever in name.split("+")[1:]:
            key, eq, value = lever.partition("=")
            if not eq and key not in SWITCHES:
                raise UserError(
                    f"--runs {name}", f"lever {key!r} is neither KEY=VALUE nor one of {', '.join(SWITCHES)}"
                )
            for k, v in SWITCHES[key].items() if key in SWITCHES else [(key, yaml.safe_load(value))]:
                cfg[k] = [*cfg.get(k, []), *v] if k == "plugins" else v
    cfg["plugins"] = [*cfg.get("plugins", []), "medqa_lab.bench.meter.BenchPlugin"]
    import torch

    if not torch.cuda.is_available():  # Triton kernels and paged optimizers need CUDA
        cfg.update({key: False for key in cuda_needs(cfg)})
        cfg["optimizer"] = "adamw_torch"
        cfg = {k: v for k, v in cfg.items() if not k.startswith("liger_")}
        cfg["plugins"] = [p for p in cfg["plugins"] if "liger" not in p]
    return cfg


def run_contender(
    name: str, recipe: Path, model_dir: Path, data: Path, work: Path, steps: int, reuse: bool = False
) -> dict:
    """Train one contender in a process of its own; its figures from medqa_lab.bench.meter.Meter, or the error."""
    out = work / re.sub(r"[^\w.=+-]", "_", name)
    if reuse and (out / "bench.json").is_file():
        return {"name": name, **json.loads((out / "bench.json").read_text())}
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").unlink(missing_ok=True)
    if name == "seed":
        cmd = [sys.executable, "-m", "medqa_lab.bench.notebook", str(model_dir), str(data), str(out), str(steps)]
    else:
        cfg = axolotl_cfg(name, recipe, model_dir, data, out, steps)
        (out / "recipe.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        cmd = [sys.executable, "-m", "axolotl.cli.train", str(out / "recipe.yml")]
    env = {"AXOLOTL_DO_NOT_TRACK": "1", **os.environ}
    with open(out / "log.txt", "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if rc != 0 or not (out / "bench.json").is_file():
        return {"name": name, "error": f"exit {rc}: {last_line((out / 'log.txt').read_text(errors='replace'))}"}
    result = json.loads((out / "bench.json").read_text())
    if result["global_step"] < steps or not result["tokens_per_s"]:
        return {"name": name, "error": f"trained {result['global_step']} of {steps} steps (too little data?)"}
    return {"name": name, **result}


def training_table(runs: list[dict]) -> str:
    lines = [
        "| run | GPU | tokens/s | s/step | peak alloc GiB | peak reserved GiB | epoch | vs seed | vs Axolotl |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['name']} | failed: {r['error']} | | | | | | | |")
            continue
        fmt = lambda v, f: f.format(v) if v is not None else "–"  # noqa: E731
        lines.append(
            f"| {r['name']} | {r['gpu']} | {fmt(r['tokens_per_s'], '{:,.0f}')} | {fmt(r['step_s'], '{:.2f}')} "
            f"| {fmt(r['peak_allocated_gib'], '{:.2f}')} | {fmt(r['peak_reserved_gib'], '{:.2f}')} "
            f"| {fmt(r['epoch_s'], '{:,.0f}')} s | {fmt(r.get('speedup_vs_seed'), '{:.2f}×')} "
            f"| {fmt(r.get('speedup_vs_axolotl'), '{:.2f}×')} |"
        )
    return "\n".join(lines)
