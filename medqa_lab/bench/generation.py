"""Generation speed: how fast `make eval` answers held-out questions with a model of the flagship's shape.

Every path answers the same questions (the test split, cycled to `n`) with `medqa.generation.generate_answers`,
greedy, `make eval`'s decoding; the paths that load the model alike share a process. The model has random
weights (speed and memory do not depend on the values, and every answer runs to max_new_tokens: the worst
case). A path is how the tuned model is loaded (`4bit`: the adapter on the NF4 layers, as trained; `merged`:
the adapter merged into the dequantised NF4 weights; `bf16`: the base alone, the merged model's shapes and dtype,
quicker to load) plus the batch size, the KV cache and how its decoding step is compiled
(`medqa.decoding.GenerationSettings`). Each path runs cold (an empty compile cache) and warm (a new process with
the cache the cold one left).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from medqa.decoding import GenerationSettings
from medqa.errors import last_line


@dataclass
class Variant:
    """One way `make eval` could answer: how the model is loaded, the batch, the KV cache, how the decoding step
    compiles, the decoding, a memory cap."""

    name: str
    weights: str = "merged"  # medqa.inference.load_model; "bf16": the base alone, the merged model's shapes and dtype
    compile: str = GenerationSettings.compile
    batch_size: int | str = GenerationSettings.batch_size
    cache: str = GenerationSettings.cache
    n: int | None = None  # questions (default: the bench's); the slow 4-bit path answers fewer
    decoding: str = "default"  # "default": make eval's; "plain": greedy with no logits processor or stopping rule
    memory_cap_gib: float | None = None  # the process limited to this much (a card of that size)

    @property
    def default(self) -> bool:
        """The path `make eval` takes on a GPU: merged weights and GenerationSettings' defaults."""
        d = GenerationSettings()
        return (
            self.weights in ("merged", "bf16")  # the same shapes and dtype
            and (self.batch_size, self.cache, self.compile, self.decoding)
            == (d.batch_size, d.cache, d.compile, "default")
            and self.memory_cap_gib is None
        )

    def settings(self, max_new_tokens: int) -> GenerationSettings:
        plain = {"no_repeat_ngram_size": 0, "repetition_penalty": 1.0, "stop_on_loop": False}
        return GenerationSettings(
            max_new_tokens=max_new_tokens,
            batch_size=self.batch_size,
            cache=self.cache,
            compile=self.compile,
            **(plain if self.decoding == "plain" else {}),
        )


CONTEXT_GIB = 1.0  # of a card's memory, what the CUDA context and libraries take outside PyTorch's allocator
PATHS = [
    Variant("inductor", "bf16"),  # make eval's (the merged model's shapes and dtype)
    Variant("cudagraphs", "bf16", compile="cudagraphs"),
    Variant("inductor-plain", "bf16", decoding="plain"),  # the same without the decoding's per-step work
    Variant("inductor-24gb", "bf16", memory_cap_gib=24),  # make eval's on a 24 GB card
    Variant("inductor-b48", "bf16", batch_size=48),
    Variant("4bit-b16-dynamic", "4bit", batch_size=16, cache="dynamic", n=32),
]


def make_adapter(model_dir: Path, out: Path, recipe: dict, template: str) -> None:
    """A LoRA adapter with random weights in the recipe's shape (r, alpha, targets), saved with the tokenizer
    and the recipe's chat template, as a finished run folder holds them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    with torch.device("meta"):  # shapes only; the base weights are never read
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir), dtype=torch.bfloat16)
    targets = recipe.get("lora_target_modules") or "all-linear"
    config = LoraConfig(
        r=recipe["lora_r"],
        lora_alpha=recipe["lora_alpha"],
        target_modules=targets,
        task_type="CAUSAL_LM",
        init_lora_weights=False,  # random B as well as A: the merge changes every targeted weight
    )
    peft_model = get_peft_model(model, config)
    peft_model.to_empty(device="cpu")
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            torch.nn.init.normal_(param, std=0.01)
    peft_model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(out)


def measure(paths: list[Variant], model_dir: Path, adapter: Path, questions: list[str], max_new_tokens: int, runs=2):
    """Load the model once the paths' way (all of them load it alike) and time each path's answers to `questions`,
    `runs` times: the first run compiles the decoding step (static cache) unless the compile cache already holds it,
    the second reuses it. Yields one result per path. Graphs and peaks are reset between paths."""
    import torch

    from medqa.generation import generate_answers
    from medqa.inference import load_model

    cuda = torch.cuda.is_available()
    cap = next((p.memory_cap_gib for p in paths if p.memory_cap_gib), None)
    if cap and cuda:  # before anything is allocated: the whole process lives inside the card's size
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction((cap - CONTEXT_GIB) * 2**30 / total)
    started = time.perf_counter()
    weights = paths[0].weights
    if weights == "bf16":
        model, tokenizer = load_model(str(model_dir), dtype="bfloat16")
        tokenizer.chat_template = tokenizer_of(adapter).chat_template
    else:
        model, tokenizer = load_model(str(model_dir), adapter, weights, "bfloat16")
    load_s = time.perf_counter() - started
    for path in paths:
        n = min(path.n or len(questions), len(questions))
        settings = path.settings(max_new_tokens)
        torch._dynamo.reset()  # each path compiles (or not) from scratch, as in a process of its own
        model.__dict__.pop("_compiled_call", None)
        times, stats = [], {}
        static = settings.resolved_cache(model.device.type) == "static"
        for _ in range(runs if static else 1):
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            answers = generate_answers(model, tokenizer, questions[:n], settings, progress=False, log=None, stats=stats)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        yield {
            "name": path.name,
            "gpu": torch.cuda.get_device_name() if cuda else "cpu",
            "n": n,
            "max_new_tokens": max_new_tokens,
            "batch_size": stats.get("batch_size"),
            "new_tokens": sum(a.new_tokens for a in answers),
            "stopped_at_loop": sum(a.stop == "loop" for a in answers),
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
            "default": path.default,
            "decoding": path.decoding,
            "compile": path.compile,
            "seconds": times[0],  # what a user waits: compilation included (unless cached)
            "again_s": times[1] if len(times) > 1 else None,  # the same answers again, the step already compiled
            "load_s": load_s,
            "answers": [a.text for a in answers[:SAMPLE]],
            **(
                {"memory_cap_gib": path.memory_cap_gib, "allocator_cap_gib": path.memory_cap_gib - CONTEXT_GIB}
                if path.memory_cap_gib
                else {}
            ),
            "settings": dataclasses.asdict(settings),
        }


SAMPLE = 50  # answers each result keeps, to compare paths


def tokenizer_of(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _process(group: list[Variant], args: list[str], env: dict, runs: int):
    cmd = [
        sys.executable,
        "-m",
        "medqa_lab.bench.generation",
        json.dumps([dataclasses.asdict(p) for p in group]),
        *args,
        str(runs),
    ]
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        done = [json.loads(line) for line in proc.stdout if line.startswith("{")]
        proc.wait()
        stderr.seek(0)
        err = last_line(stderr.read())
    failed = [
        {"name": p.name, "default": p.default, "error": f"exit {proc.returncode}: {err}"} for p in group[len(done) :]
    ]
    return done, failed


def run_paths(paths: list[Variant], model_dir: Path, adapter: Path, questions_file: Path, n: int, max_new_tokens: int):
    """Each path in a process of its own, with an empty compile cache (cold: what a first `make eval` waits), its
    answers timed twice; then again in a new process with the cache it left (warm: a later `make eval`). A path that
    fails is reported, not fatal. Yields one result per path as it finishes, its first answers compared with those
    of the first path that loads the model the same way."""
    args = [str(model_dir), str(adapter), str(questions_file), str(n), str(max_new_tokens)]
    first: dict[str, dict] = {}  # the first row of each way of loading: the others' answers are compared with it
    for path in paths:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            done, failed = _process([path], args, env, runs=2)
            if failed:
                yield failed[0]
                continue
            row = done[0]
            if row["again_s"] is not None:  # something compiled (a static cache): how long a new process waits
                warm, _ = _process([path], args, env, runs=1)
                row["warm_s"] = warm[0]["seconds"] if warm else None
        ref = first.setdefault(path.weights, row)
        same = sum(a == b for a, b in zip(row["answers"], ref["answers"], strict=False))
        row["same_answers_as"] = {
            "path": ref["name"],
            "same": same,
            "of": min(len(row["answers"]), len(ref["answers"])),
        }
        yield row


def questions(questions_file: Path, n: int) -> list[str]:
    from medqa.data import read_jsonl

    rows = [r["question"] for r in read_jsonl(questions_file)]
    return [rows[i % len(rows)] for i in range(n)]


def generation_table(rows: list[dict]) -> str:
    lines = [
        "| path | GPU | batch | answers | first run (compiling) | again, same process | new process, warm cache "
        "| new tokens/s (again) | peak GiB (reserved) | cap GiB | answers as the first path's | make eval's |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | failed: {r['error']} | | | | | | | | | | |")
            continue
        peak = "–" if r["peak_gib"] is None else f"{r['peak_gib']:.1f} ({r.get('peak_reserved_gib') or 0:.1f})"
        again = r.get("again_s") or r["seconds"]
        same = r.get("same_answers_as") or {}
        lines.append(
            f"| {r['name']} | {r['gpu']} | {r.get('batch_size', '–')} | {r['n']} | {r['seconds']:.0f} s | "
            f"{fmt_s(r.get('again_s'))} | {fmt_s(r.get('warm_s'))} | {r['new_tokens'] / again:,.0f} | {peak} | "
            f"{r.get('memory_cap_gib') or '–'} | {same.get('same', '–')}/{same.get('of', '–')} | "
            f"{'yes' if r['default'] else ''} |"
        )
    return "\n".join(lines)


def fmt_s(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.0f} s"


if __name__ == "__main__":  # the paths that load the model alike, in a process of their own (run_paths)
    spec, model_dir, adapter, qfile, count, max_new, runs = sys.argv[1:]
    group = [Variant(**p) for p in json.loads(spec)]
    asked = questions(Path(qfile), int(count))
    for result in measure(group, Path(model_dir), Path(adapter), asked, int(max_new), int(runs)):
        print(json.dumps(result), flush=True)
