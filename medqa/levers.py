"""Levers: train and evaluate many variants of a recipe side by side, one change at a time.

A lever spec (YAML) names a reference recipe and a list of levers. Each lever either trains its own run
(the recipe with `set:` overrides, or another `recipe:`) or reuses another lever's model (`model: NAME`,
`model: base`) with other decoding settings (`decode:`). Every lever answers the same held-out questions;
the table compares each with the reference, paired by question.

    recipe: recipes/smollm2-135m-medqa-qlora.yml
    split: val            # where levers are compared (choose on val, report on test)
    n: 500
    train: {...}          # overrides for every training run that change speed, not the model's maths
    decode: {max_new_tokens: 256}
    levers:
      - {name: reference, about: the recipe as it is}
      - {name: epochs-3, about: 3 epochs, set: {num_epochs: 3}}
      - {name: rep-1.2, about: repetition_penalty 1.2, model: reference, decode: {repetition_penalty: 1.2}}
    test: {n: 1000, levers: [epochs-3]}   # also answer the test split with these
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from medqa.errors import UserError
from medqa.inference import GenerationSettings
from medqa.recipe import load_recipe

BASE = "base"


@dataclass
class Lever:
    name: str
    about: str
    recipe: str
    set: dict = field(default_factory=dict)
    model: str | None = None  # another lever whose trained model this one reuses, or "base"
    decode: dict = field(default_factory=dict)
    weights: str = "merged"  # how a tuned model is loaded (medqa.inference.load_model)
    n: int | None = None  # questions to answer (default: the spec's)
    test_only: bool = False  # answer the test split only (a check, not a lever to compare on the spec's split)
    prompt: str | None = None  # model: base: ask it with this trained lever's prompt (default: the reference's)

    @property
    def trains(self) -> bool:
        return self.model is None

    @property
    def source(self) -> str:
        return self.name if self.model is None else self.model


@dataclass
class Spec:
    path: Path
    recipe: str
    split: str
    n: int
    train: dict
    decode: dict
    levers: list[Lever]
    test_n: int = 0
    test_levers: list[str] = field(default_factory=list)

    @property
    def reference(self) -> Lever:
        return self.levers[0]

    def lever(self, name: str) -> Lever:
        return next(lv for lv in self.levers if lv.name == name)

    def settings(self, lever: Lever) -> GenerationSettings:
        return GenerationSettings(**{**self.decode, **lever.decode})


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    raw = load_recipe(path)  # a YAML mapping, read with the same one-line errors as recipes
    known = {f.name for f in dataclasses.fields(GenerationSettings)}
    try:
        levers = [Lever(**{"recipe": raw["recipe"], **item}) for item in raw["levers"]]
        spec = Spec(
            path,
            raw["recipe"],
            raw.get("split", "val"),
            int(raw.get("n", 500)),
            raw.get("train") or {},
            raw.get("decode") or {},
            levers,
            int((raw.get("test") or {}).get("n", 0)),
            list((raw.get("test") or {}).get("levers", [])),
        )
    except (KeyError, TypeError) as err:
        raise UserError(path, f"not a lever spec ({err})") from None
    names = [lv.name for lv in levers]
    if len(set(names)) != len(names) or BASE in names:
        raise UserError(path, f"lever names must be unique and not {BASE!r}")
    if not levers or not levers[0].trains:
        raise UserError(path, "the first lever is the reference and must train a model")
    for lv in levers:
        if lv.model not in (None, BASE) and (lv.model not in names or not spec.lever(lv.model).trains):
            raise UserError(path, f"lever {lv.name!r}: model {lv.model!r} is not a lever that trains")
        if lv.prompt is not None and (lv.model != BASE or lv.prompt not in names or not spec.lever(lv.prompt).trains):
            raise UserError(path, f"lever {lv.name!r}: prompt: names a lever that trains, for model: base only")
        if set(lv.decode) - known:
            raise UserError(path, f"lever {lv.name!r}: unknown decode key(s) {sorted(set(lv.decode) - known)}")
    for name in spec.test_levers:
        if name not in names:
            raise UserError(path, f"test lever {name!r} is not in levers")
    return spec


# --------------------------------------------------------------------------- jobs


@dataclass
class Job:
    name: str
    argv: list[str]
    done: Path  # the file that exists once the job has finished
    after: str | None = None  # the job that must finish first
    weight: float = 1.0  # rough length, to start the longest first


def yaml_value(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...")


def run_dir(work: Path, name: str) -> Path:
    return work / "runs" / name


def prediction_file(work: Path, split: str, name: str) -> Path:
    return work / "preds" / split / f"{name}.jsonl"


def plan(spec: Spec, work: Path, data: Path) -> list[Job]:
    """Training jobs (one per lever that trains) and generation jobs (one per lever and split)."""
    py = sys.executable
    jobs = []
    for lv in spec.levers:
        if not lv.trains:
            continue
        overrides = {**spec.train, **lv.set}
        argv = [py, "scripts/finetune.py", lv.recipe, "--data", str(data), "--output-dir", str(run_dir(work, lv.name))]
        for key, value in overrides.items():
            argv += ["--set", f"{key}={yaml_value(value)}"]
        epochs = float(overrides.get("num_epochs", load_recipe(lv.recipe).get("num_epochs", 1)))
        jobs.append(Job(f"train-{lv.name}", argv, run_dir(work, lv.name) / "adapter_model.safetensors", None, epochs))
    splits = [(spec.split, spec.n, [lv.name for lv in spec.levers if not lv.test_only])]
    if spec.test_n:
        splits.append(("test", spec.test_n, spec.test_levers))
    for split, n, names in splits:
        for name in names:
            lv = spec.lever(name)
            s = spec.settings(lv)
            source = (lv.prompt or spec.reference.name) if lv.model == BASE else lv.source
            out = prediction_file(work, split, name)
            argv = [py, "eval/generate.py", str(run_dir(work, source))]
            argv += ["--model", "base", "--base-prompt", "run"] if lv.model == BASE else ["--model", "tuned"]
            argv += ["--data", str(data), "--split", split, "--n", str(lv.n or n), "--out", str(out)]
            argv += ["--weights", lv.weights]
            argv += ["--max-new-tokens", str(s.max_new_tokens), "--batch-size", str(s.batch_size)]
            argv += [
                "--repetition-penalty",
                str(s.repetition_penalty),
                "--no-repeat-ngram-size",
                str(s.no_repeat_ngram_size),
                "--ngram-scope",
                s.ngram_scope,
                "--cache",
                s.cache,
            ]
            jobs.append(Job(f"generate-{split}-{name}", argv, out, f"train-{source}", 0.1))
    return jobs


def run_jobs(jobs: list[Job], work: Path, parallel: int, gpus: int, deadline: float | None = None) -> dict:
    """Run the jobs, `parallel` at a time, each pinned to the GPU with the fewest jobs; skip finished ones.

    At the deadline (seconds from now) running jobs are stopped; run again to go on (training resumes from
    its newest checkpoint). Returns {job: {"rc", "seconds"}} and writes it to WORK/jobs.json."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    record_path = work / "jobs.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    pending = [j for j in sorted(jobs, key=lambda j: -j.weight) if not j.done.exists()]
    # a job that others wait for (a training run) is not needed once all of them have finished
    waited_for = {j.after for j in jobs}
    needed = {j.after for j in pending}
    pending = [j for j in pending if j.name not in waited_for or j.name in needed]
    finished = {j.name for j in jobs if j.done.exists()}
    names = {j.name for j in jobs}  # a job waited for but not given (--only) is taken as done
    failed: set[str] = set()
    running: dict[str, tuple[subprocess.Popen, Job, int, float]] = {}
    stop_at = time.time() + deadline if deadline else None

    def stop_all(*_):
        for proc, *_rest in running.values():
            with_group(proc, signal.SIGTERM)
        for proc, *_rest in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with_group(proc, signal.SIGKILL)

    previous = signal.signal(signal.SIGTERM, lambda *a: (stop_all(), sys.exit(143)))
    try:
        while pending or running:
            for name, (proc, job, gpu, started) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[name]
                ok = proc.returncode == 0 and job.done.exists()
                (finished if ok else failed).add(name)
                record[name] = {"rc": proc.returncode, "seconds": round(time.time() - started, 1), "gpu": gpu}
                print(f"[levers] {'done' if ok else 'FAILED'} {name} ({record[name]['seconds']:.0f} s)", flush=True)
            for job in [j for j in pending if j.after in failed]:
                pending.remove(job)
                failed.add(job.name)
                print(f"[levers] skipped {job.name}: {job.after} failed", flush=True)
            ready = [j for j in pending if j.after is None or j.after in finished or j.after not in names]
            while ready and len(running) < parallel:
                job = ready.pop(0)
                pending.remove(job)
                load = [sum(1 for *_p, g, _s in running.values() if g == i) for i in range(max(gpus, 1))]
                gpu = load.index(min(load))
                env = {**os.environ, "AXOLOTL_DATASET_NUM_PROC": "2", "OMP_NUM_THREADS": "2"}
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = str(gpu)
                log = open(logs / f"{job.name}.log", "a")  # noqa: SIM115 - closed with the process
                proc = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                running[job.name] = (proc, job, gpu, time.time())
                print(f"[levers] start {job.name} on GPU {gpu}", flush=True)
            if stop_at and time.time() > stop_at and running:
                print(f"[levers] deadline: stopping {', '.join(running)}; run again to go on", flush=True)
                stop_all()
                break
            time.sleep(2)
    finally:
        signal.signal(signal.SIGTERM, previous)
        record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def with_group(proc: subprocess.Popen, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- the table

TABLE_DELTAS = ("rouge1", "chrf", "token_f1", "embed_sim")


def lever_table(spec: Spec, work: Path, split: str | None = None, encoder=None) -> dict:
    """Each lever's scores on `split` and its paired difference from the reference (by question)."""
    from medqa.scoring import embedder, score

    split = split or spec.split
    encoder = encoder or embedder()
    names = [lv.name for lv in spec.levers if not lv.test_only]
    if split != spec.split:
        names = [name for name in spec.test_levers if not spec.lever(name).test_only]
    ref = prediction_file(work, split, spec.reference.name)
    rows, missing, memo = [], [], {}  # the reference is scored once, not once per lever
    for name in names:
        pred = prediction_file(work, split, name)
        if not pred.is_file():
            missing.append(name)
            continue
        lv = spec.lever(name)
        result = score(pred, None if name == spec.reference.name else ref, encoder=encoder, memo=memo)
        meta = pred.with_suffix(".meta.json")
        rows.append(
            {
                "name": name,
                "about": lv.about,
                "n": result["n"],
                "model": lv.source,
                "set": {**spec.train, **lv.set} if lv.trains else None,
                "decode": dataclasses.asdict(spec.settings(lv)),
                "metrics": result["metrics"],
                "delta": result.get("delta"),
                "references": result["references"],
                "reference_perplexity": json.loads(meta.read_text()).get("reference_perplexity")
                if meta.is_file()
                else None,
            }
        )
    return {
        "spec": str(spec.path),
        "split": split,
        "rows": rows,
        "missing": missing,
        "weights_checks": weights_checks(spec, work, split),
    }


def weights_checks(spec: Spec, work: Path, split: str) -> list[dict]:
    """Each 4-bit lever (the adapter on the NF4 layers: the training forward) against the lever that decodes
    the same model the same way from merged weights: how many greedy answers are identical."""
    from rouge_score import rouge_scorer

    from medqa.scoring import load_predictions

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    checks = []
    for lv in spec.levers:
        twin = next(
            (o for o in spec.levers if o.weights == "merged" and o.source == lv.source and o.decode == lv.decode),
            None,
        )
        four_bit, merged = prediction_file(work, split, lv.name), twin and prediction_file(work, split, twin.name)
        if lv.weights != "4bit" or not twin or not four_bit.is_file() or not merged.is_file():
            continue
        mine = load_predictions(four_bit)
        theirs = {r["id"]: r for r in load_predictions(merged)}
        pairs = [(r, theirs[r["id"]]) for r in mine if r["id"] in theirs]

        def rouge_l(rows):
            return sum(scorer.score(r["reference"], r["prediction"])["rougeL"].fmeasure for r in rows) / len(rows)

        checks.append(
            {
                "4bit": lv.name,
                "merged": twin.name,
                "n": len(pairs),
                "identical": sum(a["prediction"] == b["prediction"] for a, b in pairs),
                "rougeL_4bit": rouge_l([a for a, _ in pairs]),
                "rougeL_merged": rouge_l([b for _, b in pairs]),
            }
        )
    return checks


def _ci(d: dict, digits: int) -> str:
    lo, hi = d["ci95"]
    return f"{d['mean']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _mark(d: dict, digits: int) -> str:
    lo, hi = d["ci95"]
    return f"{d['mean']:+.{digits}f}" + ("†" if lo > 0 or hi < 0 else "")


def table_markdown(table: dict, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"Split `{table['split']}`; every lever answers the same questions and is compared with the reference, "
        "paired by question (95% bootstrap CI; † where the CI of a difference excludes 0). loop: share of "
        "answers in which some 4 words recur 4 or more times; cap: share cut off by max_new_tokens.",
        "",
        "| lever | change | ROUGE-L | Δ ROUGE-L [95% CI] | Δ ROUGE-1 | Δ chrF | Δ token F1 | Δ embed | loop | Δ loop "
        "[95% CI] | words | cap | ppl |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table["rows"]:
        m, d = row["metrics"], row["delta"]
        deltas = (
            [_ci(d["rougeL"], 3)] + [_mark(d[k], 1 if k == "chrf" else 3) for k in TABLE_DELTAS]
            if d
            else ["–"] * (1 + len(TABLE_DELTAS))
        )
        cap = m.get("hit_max_new_tokens", {}).get("mean")
        ppl = row["reference_perplexity"]
        lines.append(
            f"| {row['name']} | {row['about']} | {m['rougeL']['mean']:.3f} | {' | '.join(deltas)} | "
            f"{m['loop_rate']['mean']:.1%} | {_ci(d['loop_rate'], 3) if d else '–'} | {m['words']['mean']:.0f} | "
            f"{'–' if cap is None else f'{cap:.0%}'} | {'–' if ppl is None else f'{ppl:.2f}'} |"
        )
    refs = table["rows"][0]["references"] if table["rows"] else None
    if refs:
        lines += ["", f"The reference answers themselves: loop {refs['loop_rate']:.1%}, {refs['words']:.0f} words."]
    if table.get("missing"):
        lines += ["", f"Not measured (no predictions in the work folder): {', '.join(table['missing'])}."]
    for c in table.get("weights_checks", []):
        lines += [
            "",
            f"The model as trained (`{c['4bit']}`: the adapter on the 4-bit NF4 layers) and the merged weights "
            f"that every row above uses (`{c['merged']}`) gave identical greedy answers to {c['identical']} of "
            f"{c['n']} questions (ROUGE-L {c['rougeL_4bit']:.4f} and {c['rougeL_merged']:.4f}).",
        ]
    return "\n".join(lines) + "\n"
