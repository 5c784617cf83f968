"""make bench-dpo: the preference stage at a model's shape (random weights): the time FactTune's pairs take to
sample, and DPO's steps a second and peak memory with the model's preference recipe, started from a first stage as
make dpo starts it.

A first stage is made as a finished run folder holds it: the first recipe resolved on the random model, an adapter of
its shape with random weights, the tokenizer with its chat template. The pairs are timed with scripts/pairs.py on
that run (every answer of a random model runs to the token cap: the worst case). DPO trains on pairs of the data's
own answers (a question's reference chosen, another question's rejected, each cut to the cap's length), so that
every row is a pair of realistic length whatever the random model writes; medqa_lab.bench.meter times its steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from medqa import prompts
from medqa.data import read_jsonl
from medqa.errors import last_line
from medqa.launch import resolve
from medqa.recipe import load_recipe, run_recipe_text
from medqa_lab.bench.generation import make_adapter


def first_stage(recipe: Path, model_dir: Path, data: Path, out: Path) -> Path:
    """A finished first-stage run of `recipe` on the model in `model_dir`, trained (as far as its files say) on
    `data`."""
    cfg = resolve(recipe, data=data, output_dir=out, overrides=[f"base_model={model_dir}"]).recipe
    out.mkdir(parents=True, exist_ok=True)
    make_adapter(model_dir, out, cfg, Path(cfg["chat_template_jinja"]).read_text())
    (out / "recipe.yml").write_text(run_recipe_text(cfg, str(recipe)))
    return out


def data_pairs(tokenizer, data: Path, out: Path, n: int, max_new_tokens: int) -> Path:
    """n DPO rows from the data's own answers: the reference chosen, the next question's rejected, each cut to
    max_new_tokens tokens, in the chat template's text as scripts/pairs.py writes them."""
    rows = read_jsonl(data / "train.jsonl")[: n + 1]
    before, after = prompts.answer_frame(tokenizer)

    def cut(text: str) -> str:
        return tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"][:max_new_tokens])

    out.mkdir(parents=True, exist_ok=True)
    lines = [
        {
            "id": row["id"],
            "prompt": prompts.prompt_text(tokenizer, row["question"]),
            "chosen": before + cut(row["answer"]) + after,
            "rejected": before + cut(other["answer"]) + after,
        }
        for row, other in zip(rows, rows[1:], strict=False)
    ]
    (out / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
    return out


def time_pairs(run: Path, n: int, out: Path) -> dict:
    """scripts/pairs.py (FactTune: 4 samples a question) on n training questions: seconds and answers a second."""
    start = time.time()
    cmd = [sys.executable, "-m", "medqa.cli.pairs", str(run), "--out", str(out), "--rule", "facttune", "--n", str(n)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.time() - start
    made = out / "manifest.json"
    row = {"questions": n, "answers": 4 * n, "seconds": round(seconds, 1), "answers_per_s": 4 * n / seconds}
    if result.returncode != 0 and not made.is_file():  # a random model's samples may give no pair: timed anyway
        row["note"] = last_line(result.stderr)
    return row


def time_dpo(recipe: Path, run: Path, pairs: Path, out: Path, steps: int, overrides: list[str]) -> dict:
    """The preference recipe started from `run` as make dpo starts it, for `steps` optimizer steps, metered."""
    base = load_recipe(run / "recipe.yml")["base_model"]
    start = [f"base_model={base}", f"lora_model_dir={run}"] if "lora_model_dir" in load_recipe(recipe) else []
    cfg = resolve(recipe, data=pairs, output_dir=out, overrides=[*start, "save_strategy=no", *overrides]).recipe
    cfg.update(max_steps=steps, use_tensorboard=False)
    cfg["plugins"] = [*cfg.get("plugins", []), "medqa_lab.bench.meter.BenchPlugin"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {"AXOLOTL_DO_NOT_TRACK": "1", **os.environ}
    with open(out / "log.txt", "w") as log:
        rc = subprocess.call([sys.executable, "-m", "axolotl.cli.train", str(out / "recipe.yml")], stdout=log,
                             stderr=subprocess.STDOUT, env=env)  # fmt: skip
    if rc != 0 or not (out / "bench.json").is_file():
        return {"error": f"exit {rc}: {last_line((out / 'log.txt').read_text(errors='replace'))}"}
    metered = json.loads((out / "bench.json").read_text())
    return {
        "steps_timed": metered["steps_timed"],
        "step_s": metered["step_s"],
        "steps_per_s": 1 / metered["step_s"] if metered["step_s"] else None,
        "pairs_per_step": cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"],
        "peak_allocated_gib": metered["peak_allocated_gib"],
        "peak_reserved_gib": metered["peak_reserved_gib"],
        "gpu": metered["gpu"],
        "losses": metered["losses"],
    }


def dpo_table(rows: list[dict]) -> str:
    lines = [
        "| shape | recipe | pairs: answers sampled | seconds | answers/s | DPO steps/s | pairs a step | peak alloc / "
        "reserved GiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, d = r["pairs"], r["dpo"]

        def gib(v):
            return "–" if v is None else f"{v:.2f}"

        if "error" in d:
            dpo = f"failed: {d['error']} | | "
        else:
            peaks = f"{gib(d['peak_allocated_gib'])} / {gib(d['peak_reserved_gib'])}"
            dpo = f"{d['steps_per_s']:.2f} | {d['pairs_per_step']} | {peaks}"
        lines.append(
            f"| {r['shape']} | {r['recipe']} | {p['answers']:,} | {p['seconds']:.0f} | {p['answers_per_s']:.1f} "
            f"| {dpo} |"
        )
    return "\n".join(lines)
