"""A lever spec as jobs: the command lines that train each lever's run (medqa.cli.finetune), make a preference
stage's starting point (medqa.cli.merge, medqa.cli.pairs), answer the held-out questions (medqa.cli.generate) or
cut another lever's answers where they start to loop (medqa.cli.cut_loops), each with the file that exists once it
has finished and the jobs it waits for."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from medqa.decoding import to_arguments
from medqa.levers.spec import BASE, Spec
from medqa.preference import SAMPLED
from medqa.recipe import load_recipe
from medqa.runs import ADAPTER_WEIGHTS


@dataclass
class Job:
    name: str
    argv: list[str]
    done: Path  # the file that exists once the job has finished
    after: tuple[str, ...] = ()  # the jobs that must finish first
    weight: float = 1.0  # rough length, to start the longest first


def yaml_value(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...")


def run_dir(work: Path, name: str) -> Path:
    return work / "runs" / name


def merged_dir(work: Path, name: str) -> Path:
    return run_dir(work, name) / "merged"


def pairs_dir(work: Path, start: str, rule: str) -> Path:
    return work / "pairs" / f"{start}-{rule}"


def prediction_file(work: Path, split: str, name: str) -> Path:
    return work / "preds" / split / f"{name}.jsonl"


def training_folders(lever, spec: Spec, data: Path) -> list[Path]:
    """The prepared folders a lever's run trains on: those its `datasets` name, its own `data:`, or the spec's."""
    datasets = {**spec.train, **lever.set}.get("datasets")
    if datasets:
        return list(dict.fromkeys(Path(str(d["path"])).parent for d in datasets))
    return [Path(lever.data) if lever.data else data]


def plan(spec: Spec, work: Path, data: Path) -> list[Job]:
    """Training jobs (one per lever that trains, after the merge and the pairs its preference stage starts from)
    and generation jobs (one per lever and split). Every lever answers the questions of `data`."""
    py = sys.executable
    jobs: dict[str, Job] = {}
    for lv in spec.levers:
        if not lv.trains:
            continue
        overrides = {**spec.train, **lv.set}
        train_data, after = Path(lv.data) if lv.data else data, ()
        if lv.start:
            start = run_dir(work, lv.start)
            merge, pairs = f"merge-{lv.start}", f"pairs-{lv.start}-{lv.rule}"
            jobs[merge] = Job(
                merge,
                [py, "-m", "medqa.cli.merge", str(start), "--out", str(merged_dir(work, lv.start))],
                merged_dir(work, lv.start) / "config.json",
                (f"train-{lv.start}",),
                0.5,
            )
            folder = pairs_dir(work, lv.start, lv.rule)
            sources = training_folders(spec.lever(lv.start), spec, data)  # the questions the run trained on
            pairs_argv = [py, "-m", "medqa.cli.pairs", str(start), "--data", *map(str, sources), "--out", str(folder)]
            pairs_argv += ["--rule", lv.rule, "--n", str(lv.pairs)]
            if lv.rule in SAMPLED:
                pairs_argv += ["--samples", str(lv.samples)]
                pairs_argv += ["--temperature", str(lv.temperature)] if lv.temperature is not None else []
            jobs[pairs] = Job(pairs, pairs_argv, folder / "train.jsonl", (f"train-{lv.start}",), 0.5)
            overrides = {**overrides, "base_model": str(merged_dir(work, lv.start))}  # whatever `train:` says
            train_data, after = folder, (merge, pairs)
        argv = [py, "-m", "medqa.cli.finetune", lv.recipe]
        if lv.data or lv.start or "datasets" not in overrides:  # a lever that names its sources trains on them
            argv += ["--data", str(train_data)]
        argv += ["--output-dir", str(run_dir(work, lv.name))]
        for key, value in overrides.items():
            argv += ["--set", f"{key}={yaml_value(value)}"]
        epochs = float(overrides.get("num_epochs", load_recipe(lv.recipe).get("num_epochs", 1)))
        name = f"train-{lv.name}"
        jobs[name] = Job(name, argv, run_dir(work, lv.name) / ADAPTER_WEIGHTS, after, epochs)
    # (name of the question set, its folders, split, questions, levers): the spec's own sets first (people's
    # questions, where a round asks them), then its split and the test split; a runner stopped at its deadline has
    # answered those first
    sets = [(q.name, [Path(d) for d in q.data], q.split, q.n, spec.answered(q.name)) for q in spec.sets]
    sets.append((spec.split, [data], spec.split, spec.n, spec.answered(spec.split)))
    if spec.test_n:
        sets.append(("test", [data], "test", spec.test_n, spec.answered("test")))
    for split, folders, data_split, n, names in sets:
        for name in names:
            lv = spec.lever(name)
            out = prediction_file(work, split, name)
            if lv.cut_from:
                answers = prediction_file(work, split, lv.cut_from)
                argv = [py, "-m", "medqa.cli.cut_loops", str(answers), "--out", str(out)]
                jobs[f"cut-{split}-{name}"] = Job(
                    f"cut-{split}-{name}", argv, out, (f"generate-{split}-{lv.cut_from}",), 0.01
                )
                continue
            source = (lv.prompt or spec.reference.name) if lv.model == BASE else lv.source
            argv = [py, "-m", "medqa.cli.generate", str(run_dir(work, source))]
            if lv.model == BASE:
                argv += ["--model", "base"] + (["--base-prompt", "run"] if lv.prompt else [])
            else:
                argv += ["--model", "tuned", "--weights", lv.weights]
                argv += ["--epoch", f"{lv.epoch:g}"] if lv.epoch is not None else []
            argv += ["--data", *map(str, folders), "--split", data_split]
            argv += ["--n", str(lv.n or n)] if (lv.n or n) else []
            argv += ["--out", str(out)]
            argv += to_arguments(spec.settings(lv))
            job = Job(f"generate-{split}-{name}", argv, out, (f"train-{source}",), 0.1)
            jobs[job.name] = job
    return list(jobs.values())
