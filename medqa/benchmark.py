"""The Open Medical-LLM Leaderboard's sets, scored by EleutherAI's lm-evaluation-harness itself (`make benchmark`).

The base model and the run's model as `make eval` scores it (the merged weights) are each handed to lm-eval's `HFLM`
and `simple_evaluate`, zero-shot, with the tasks' own prompts and metrics. With the Hub reachable the tasks are
lm-eval's stock ones; offline (HF_HUB_OFFLINE=1, as make sets it) they are the configs in eval/tasks/, which take
the stock tasks as they are and only read ../shared/data/benchmarks/ (or BENCHMARKS=DIR) instead of the Hub.

What lm-eval gives (accuracy, its standard error, each question's log-likelihoods: `log_samples`) is kept as it
wrote it; on top, per task: the paired difference tuned minus base with a bootstrap CI, chance, the rate of always
answering the commonest right option, and whether each model is distinguishable from doing that.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medqa import paths, quiet
from medqa.errors import UserError
from medqa.fsutil import atomic_dir, atomic_write_text
from medqa.integrity import problem, read_json
from medqa.scoring import bootstrap_ci

TASK_DIR = Path("eval/tasks")  # relative to the repository root, where make runs
DATA_DIR = paths.BENCHMARKS
MMLU = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
        "professional_medicine")  # fmt: skip


@dataclass(frozen=True)
class Benchmark:
    """A leaderboard set: its name, and the Hub dataset and split lm-eval's stock task reads."""

    name: str
    dataset: str
    split: str
    questions: int  # in the stock task, from the Hub
    config: str | None = None  # the Hub dataset's configuration


BENCHMARKS = {
    "medqa_4options": Benchmark("MedQA (USMLE, 4 options)", "GBaker/MedQA-USMLE-4-options-hf", "test", 1273),
    "medmcqa": Benchmark("MedMCQA", "medmcqa", "validation", 4183),
    "pubmedqa": Benchmark("PubMedQA (PQA-L)", "bigbio/pubmed_qa", "test", 500, "pubmed_qa_labeled_fold0_source"),
    **{
        f"mmlu_{s}": Benchmark(f"MMLU {s.replace('_', ' ')}", "cais/mmlu", "test", n, s)
        for s, n in zip(MMLU, (135, 265, 144, 173, 100, 272), strict=True)
    },
}
TASKS = tuple(BENCHMARKS)  # the leaderboard's nine, the default
AGAIN = "run make benchmark again"
ONE_OPTION = 0.9  # a model that gives one option this often is read as having a preference, not knowledge


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def task_configs(tasks: list[str], data_dir: Path | None = None, hub: bool | None = None) -> list:
    """What simple_evaluate takes for `tasks`: their names (lm-eval's stock tasks, from the Hub) or, offline, the
    configs in eval/tasks/ with their data files in `data_dir`. An unknown name or a missing file: one line."""
    from lm_eval.utils import load_yaml_config

    hub = not offline() if hub is None else hub
    if hub:
        return list(tasks)
    data_dir = Path(data_dir or DATA_DIR)
    configs = []
    for task in tasks:
        path = TASK_DIR / f"{task}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in TASK_DIR.glob("*.yaml")))
            raise UserError(task, f"no offline task config in {TASK_DIR} ({known}); any lm-eval "
                            "task runs with the Hub reachable (HF_HUB_OFFLINE=0)")  # fmt: skip
        config = load_yaml_config(str(path))
        data = data_dir / Path(config["dataset_kwargs"]["data_files"]["test"]).name
        if not data.is_file():
            raise UserError(data, "no such file: the benchmark sets (../shared/data/benchmarks, or BENCHMARKS=DIR)")
        config["dataset_kwargs"] = {"data_files": {"test": str(data.resolve())}}
        configs.append(config)
    return configs


STOCK = ("medqa", "medmcqa", "pubmedqa", "mmlu/default")  # the stock task folders eval/tasks/ builds on


@functools.lru_cache(maxsize=2)
def task_manager(hub: bool | None = None):
    """lm-eval's index of its stock tasks, built once a process. Online it indexes every task lm-eval ships (it
    reads each YAML: seconds); offline, only the folders of the stock tasks the configs in eval/tasks/ name."""
    from lm_eval import tasks
    from lm_eval.tasks import TaskManager

    hub = not offline() if hub is None else hub
    if hub:
        return TaskManager()
    root = Path(tasks.__file__).parent
    return TaskManager(include_path=[str(root / folder) for folder in STOCK], include_defaults=False)


def evaluate(model, tokenizer, tasks: list, limit: int | None = None, batch_size="auto") -> dict:
    """lm-eval's simple_evaluate on a loaded model, zero-shot, per-question results kept (log_samples); adds the
    seconds it took, the batch sizes lm-eval picked and the GPU's peak memory."""
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_batch_size=256)
    if not quiet.VERBOSE:  # its bar over every request (the harness passes no way to turn it off)
        lm.loglikelihood = functools.partial(lm.loglikelihood, disable_tqdm=True)
    # lm-eval encodes each question's text once per option (and again with the option): the same strings, so
    # the same tokens; memoised, each is encoded once
    lm.tok_encode = functools.lru_cache(maxsize=None)(lm.tok_encode)
    start = time.perf_counter()
    results = simple_evaluate(
        lm,
        tasks=[copy.deepcopy(t) for t in tasks],  # lm-eval pops keys of the configs it is given
        num_fewshot=0,
        limit=limit,
        log_samples=True,
        task_manager=task_manager(any(isinstance(t, str) for t in tasks)),
    )
    results["medqa"] = {
        "seconds": round(time.perf_counter() - start, 1),
        "batch_size": getattr(lm, "batch_size_per_gpu", batch_size),
        "batch_sizes": results.get("config", {}).get("batch_sizes") or [],
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }
    return results


def save(out: Path, results: dict, meta: dict) -> Path:
    """lm-eval's results as it writes them (results.json, samples_<task>.jsonl), with `meta` (what was asked), in one
    folder written atomically."""
    from lm_eval.utils import handle_non_serializable

    samples = results.pop("samples", {})
    with atomic_dir(out) as tmp:
        (tmp / "results.json").write_text(json.dumps(results, indent=2, default=handle_non_serializable))
        for task, rows in samples.items():
            lines = (json.dumps(r, default=handle_non_serializable, ensure_ascii=False) for r in rows)
            (tmp / f"samples_{task}.jsonl").write_text("\n".join(lines) + "\n")
        (tmp / "benchmark.json").write_text(json.dumps(meta, indent=2))
    return out


def done(out: Path, meta: dict) -> bool:
    """Whether `out` holds a finished evaluation of the same request (a damaged one is done again)."""
    if problem(out / "results.json") or problem(out / "benchmark.json"):
        return False
    return read_json(out / "benchmark.json") == meta


# --------------------------------------------------------------------------- the comparison


def _continuation(argument) -> str:
    """A request's continuation (the option's text) as lm-eval logs it: (context, continuation) or arg_0/arg_1."""
    return argument["arg_1"] if isinstance(argument, dict) else argument[1]


def _samples(folder: Path, task: str) -> dict[int, dict]:
    path = folder / f"samples_{task}.jsonl"
    if not path.is_file():
        raise UserError(path, f"missing: {AGAIN}")
    rows = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            choices = [_continuation(a).strip() for a in row["arguments"]]
            target = row["target"]  # an option's index, or its text (PubMedQA: yes, no, maybe)
            rows[int(row["doc_id"])] = {
                "target": choices.index(target.strip()) if isinstance(target, str) else int(target),
                "scores": [float(r[0]) for r in row["filtered_resps"]],
                "choices": choices,
                "acc": float(row["acc"]),
            }
        except (ValueError, KeyError, TypeError, IndexError):
            raise UserError(path, f"line {number} is not one of lm-eval's samples: {AGAIN}") from None
    return rows


def _results(folder: Path) -> dict:
    return read_json(folder / "results.json", AGAIN)


def run_summary(run: Path) -> dict | None:
    """RUN/benchmark/summary.json, where make benchmark has scored the run's tuned model (for the card and the eval
    report); a damaged one is one line."""
    path = Path(run) / "benchmark" / "summary.json"
    if not path.is_file():
        return None
    summary = read_json(path, AGAIN)
    try:
        return summary if "tuned" in summary["models"] else None
    except (KeyError, TypeError):
        raise UserError(path, f"not make benchmark's summary: {AGAIN}") from None


def _ci(values: np.ndarray) -> list[float]:
    return [round(v, 4) for v in bootstrap_ci(values)]


def task_summary(task: str, models: dict[str, Path]) -> dict:
    """One task, every model: accuracy with lm-eval's standard error, the commonest answer it gives, the paired
    difference with the first model (tuned minus base) and against always answering the commonest right option."""
    per = {label: _samples(folder, task) for label, folder in models.items()}
    ids = sorted(set.intersection(*(set(rows) for rows in per.values())))
    first = next(iter(per.values()))
    targets = np.array([first[i]["target"] for i in ids])
    n_choices = len(first[ids[0]]["scores"])
    names = first[ids[0]]["choices"] or [str(k) for k in range(n_choices)]
    commonest, count = Counter(targets.tolist()).most_common(1)[0]
    always = (targets == commonest).astype(float)
    summary = {
        "task": task,
        "n": len(ids),
        "chance": round(1 / n_choices, 4),
        "majority": {"answer": names[commonest], "acc": round(float(always.mean()), 4)},
        "models": {},
    }
    correct = {}
    for label, rows in per.items():
        acc = np.array([rows[i]["acc"] for i in ids])
        picks = Counter(int(np.argmax(rows[i]["scores"])) for i in ids)
        top, top_n = picks.most_common(1)[0]
        versus = acc - always
        lo, hi = _ci(versus)
        res = _results(models[label])["results"].get(task, {})
        correct[label] = acc
        summary["models"][label] = {
            "acc": round(float(acc.mean()), 4),
            "acc_stderr": res.get("acc_stderr,none"),
            "commonest_answer": {"answer": names[top], "share": round(top_n / len(ids), 4)},
            "vs_majority": {"mean": round(float(versus.mean()), 4), "ci95": [lo, hi]},
            "like_majority": bool(lo <= 0 <= hi),
        }
    labels = list(per)
    if len(labels) > 1:
        for other in labels[1:]:
            d = correct[other] - correct[labels[0]]
            summary["models"][other]["delta"] = {"mean": round(float(d.mean()), 4), "ci95": _ci(d)}
    return summary


def summarise(models: dict[str, Path], meta: dict) -> dict:
    """summary.json from each model's folder of lm-eval output ({label: folder}, the first the one the others are
    compared with)."""
    timing = {label: _results(path).get("medqa", {}) for label, path in models.items()}
    return {**meta, "models": list(models), "timing": timing, "tasks": [task_summary(t, models) for t in meta["tasks"]]}


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def report(summary: dict) -> str:
    """report.md: per task, each model's accuracy ± lm-eval's standard error, the paired difference, chance and the
    always-the-commonest-answer rate; then the tasks on which a model is indistinguishable from that."""
    labels = summary["models"]
    source = summary["source"]
    lines = [
        f"# Benchmarks: {summary['run']}",
        "",
        "The Open Medical-LLM Leaderboard's sets, zero-shot, scored by lm-evaluation-harness "
        f"{summary['lm_eval']} with each task's own prompt and metric (accuracy, %, ± lm-eval's standard error). "
        f"Tasks: {source}. "
        + (f"Δ: minus {labels[0]}, paired by question, 95% bootstrap CI. " if len(labels) > 1 else "")
        + "chance: 1 / the number of options; majority: always answering the commonest right option.",
        "",
    ]
    if summary.get("limit"):
        lines += [f"**LIMIT {summary['limit']}: the first {summary['limit']} questions of each task only.**", ""]
    head = "| task | n | " + " | ".join(labels) + "".join(f" | Δ {label} [95% CI]" for label in labels[1:])
    head += " | chance | majority |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    flags = []
    for t in summary["tasks"]:
        cells = [f"{t['task']}", f"{t['n']:,}"]
        for label in labels:
            m = t["models"][label]
            err = f" ± {100 * m['acc_stderr']:.1f}" if m.get("acc_stderr") is not None else ""
            cells.append(f"{_pct(m['acc'])}{err}")
            if m["like_majority"]:
                flags.append(
                    f"- {t['task']}, {label}: {_pct(m['acc'])}% against {_pct(t['majority']['acc'])}% for always "
                    f"answering {t['majority']['answer']} (difference {100 * m['vs_majority']['mean']:+.1f}, 95% CI "
                    f"[{100 * m['vs_majority']['ci95'][0]:+.1f}, {100 * m['vs_majority']['ci95'][1]:+.1f}]; it "
                    f"answers {m['commonest_answer']['answer']} {_pct(m['commonest_answer']['share'])}% of the time)"
                )
        for label in labels[1:]:
            d = t["models"][label]["delta"]
            cells.append(f"{100 * d['mean']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]")
        cells += [_pct(t["chance"]), f"{_pct(t['majority']['acc'])} ({t['majority']['answer']})"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""]
    letters = [
        f"- {t['task']}, {label}: {m['commonest_answer']['answer']} for {_pct(m['commonest_answer']['share'])}% of "
        "the questions"
        for t in summary["tasks"]
        for label, m in t["models"].items()
        if m["commonest_answer"]["share"] >= ONE_OPTION
    ]
    if letters:
        lines += [f"Gives the same option to {100 * ONE_OPTION:.0f}% of the questions or more (a preference for a "
                  "letter or a word, not knowledge):", "", *letters, ""]  # fmt: skip
    if flags:
        lines += [
            "Indistinguishable from always answering the commonest right option (its CI holds 0): read these rows "
            "as no knowledge shown, whatever their difference.",
            "",
            *flags,
            "",
        ]
    for t in summary["tasks"]:
        bench = BENCHMARKS.get(t["task"])
        if bench and t["n"] != bench.questions and not summary.get("limit"):
            lines.append(
                f"- {t['task']}: {t['n']:,} questions here; the stock task on the Hub has {bench.questions:,}."
            )
    timing = summary.get("timing", {})
    if timing:
        lines += ["", "| model | seconds | batch size lm-eval used | peak GPU memory (GiB) |", "|---|---|---|---|"]
        for label, t in timing.items():
            sizes = ", ".join(map(str, t.get("batch_sizes") or [])) or str(t.get("batch_size"))
            lines.append(f"| {label} | {t.get('seconds')} | {sizes} | {t.get('peak_memory_gib') or '–'} |")
    return "\n".join(lines) + "\n"


def write(folder: Path, summary: dict) -> Path:
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(folder / "report.md", report(summary))
    return folder / "report.md"


def card_results(summary: dict, model_name: str, label: str = "tuned") -> list:
    """The tuned model's accuracies as huggingface_hub EvalResults (the card's model-index, which the Hub shows)."""
    from huggingface_hub import EvalResult

    results = []
    for t in summary["tasks"]:
        bench = BENCHMARKS.get(t["task"])
        m = t["models"].get(label)
        if bench is None or m is None:
            continue
        results.append(
            EvalResult(
                task_type="multiple-choice",
                task_name=f"{t['task']} (zero-shot)",
                dataset_type=bench.dataset,
                dataset_name=bench.name,
                dataset_split=bench.split,
                dataset_config=bench.config,
                metric_type="acc",
                metric_name="accuracy",
                metric_value=m["acc"],
                source_name=f"lm-evaluation-harness {summary['lm_eval']}, {t['n']} questions",
                source_url="https://github.com/EleutherAI/lm-evaluation-harness",
            )
        )
    return results


def card_lines(summary: dict) -> list[str]:
    """The tuned model's table for the card and RUN/eval/report.md: base and tuned accuracy (%), the paired
    difference, chance and majority."""
    limit = f", the first {summary['limit']} questions of each" if summary.get("limit") else ""
    lines = [
        f"Zero-shot, lm-evaluation-harness {summary['lm_eval']} (`make benchmark`{limit}): accuracy (%) ± its "
        "standard error; tuned minus base paired by question with a 95% bootstrap CI; majority: always answering the "
        "commonest right option.",
        "",
        "| task | questions | base | tuned | difference [95% CI] | chance | majority |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in summary["tasks"]:
        b, m = t["models"].get("base"), t["models"]["tuned"]
        d = m.get("delta")
        pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
        lines.append(
            f"| {t['task']} | {t['n']:,} | {pct(b['acc']) if b else '–'} | {pct(m['acc'])} ± "
            f"{100 * (m.get('acc_stderr') or 0):.1f} | "
            + (f"{100 * d['mean']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]" if d else "–")
            + f" | {pct(t['chance'])} | {pct(t['majority']['acc'])} |"
        )
    like = [t["task"] for t in summary["tasks"] if t["models"]["tuned"]["like_majority"]]
    if like:
        lines += ["", "Indistinguishable from always answering the commonest option: " + ", ".join(like) + "."]
    return lines


def load(run, which: str):
    """A run's model as make benchmark scores it: the base as published, or the tuned model as make eval scores it
    (the adapter merged into the weights it was trained against)."""
    from medqa.inference import load_model

    if which == "tuned":
        return run.load_model("merged")
    return load_model(run.base_model, dtype=run.dtype)


def table_from_scored(pairs: list[str], out: Path | None) -> Path:
    """One report from models already scored (LABEL=DIR pairs, the first the one the others are compared with),
    written to `out`; models scored on different tasks, limits or data are refused."""
    if out is None or any("=" not in p for p in pairs):
        raise UserError("--table", "give LABEL=DIR pairs and --out DIR")
    models = {label: Path(folder) for label, folder in (p.split("=", 1) for p in pairs)}
    metas = []
    for label, folder in models.items():
        try:
            metas.append(json.loads((folder / "benchmark.json").read_text()))
        except (OSError, ValueError):
            raise UserError(folder / "benchmark.json", f"missing or not JSON: {label} is not a scored model") from None
    keys = ("tasks", "limit", "source", "lm_eval")
    if any({k: m.get(k) for k in keys} != {k: metas[0].get(k) for k in keys} for m in metas):
        raise UserError("--table", "the models were scored on different tasks, limits or data: not comparable")
    meta = {"run": ", ".join(f"{label} ({m['run']})" for label, m in zip(models, metas, strict=True)),
            **{k: metas[0].get(k) for k in keys}}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    return write(out, summarise(models, meta))


def console_lines(summary: dict, models: list[str]) -> str:
    """The summary as make benchmark prints it: each task's accuracies and where a model is like always answering
    the commonest option."""
    lines = []
    for t in summary["tasks"]:
        accs = "  ".join(f"{m} {100 * t['models'][m]['acc']:.1f}" for m in models)
        flag = [m for m in models if t["models"][m]["like_majority"]]
        note = f"  (indistinguishable from always {t['majority']['answer']}: {', '.join(flag)})" if flag else ""
        lines.append(f"  {t['task']:28s} n={t['n']:<5d} {accs}  majority {100 * t['majority']['acc']:.1f}{note}")
    return "\n".join(lines)
