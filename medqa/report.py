"""A run's evaluation report: the metrics table (base, tuned, difference with its CI), plots of the metrics, the
training loss and the answer lengths, and answers side by side, picked by rule."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from medqa.benchmark import card_lines, run_summary
from medqa.decoding import GenerationSettings, describe_decoding
from medqa.facts import mark_unsupported
from medqa.fsutil import atomic_dir, atomic_write_text
from medqa.runs import complete_checkpoints
from medqa.scoring import LOWER_IS_BETTER, QUALITY, TYPE_METRICS


def newest_trainer_state(run: Path) -> dict | None:
    checkpoints = complete_checkpoints(run)
    return json.loads((checkpoints[-1] / "trainer_state.json").read_text()) if checkpoints else None


def plots(out: Path, metrics: dict, state: dict | None, base: list, tuned: list) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    shown = [*QUALITY, *LOWER_IS_BETTER]
    fig, axes = plt.subplots(1, len(shown), figsize=(2.2 * len(shown), 3))
    for ax, m in zip(axes, shown, strict=True):
        for x, (_label, res) in enumerate(
            (("base", metrics["baseline"]["metrics"][m]), ("tuned", metrics["metrics"][m]))
        ):
            if res["mean"] is None:  # no answer the metric applies to
                continue
            lo, hi = res["ci95"]
            ax.bar(x, res["mean"], yerr=[[res["mean"] - lo], [hi - res["mean"]]], capsize=4, color=f"C{x}")
        ax.set_xticks([0, 1], ["base", "tuned"])
        ax.set_title(m, fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "metrics.png", dpi=110)
    made.append("metrics.png")
    if state:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        train = [(e["step"], e["loss"]) for e in state["log_history"] if "loss" in e]
        evals = [(e["step"], e["eval_loss"]) for e in state["log_history"] if "eval_loss" in e]
        for points, label in ((train, "train loss"), (evals, "eval loss")):
            if points:
                ax.plot(*zip(*points, strict=True), marker="." if label == "eval loss" else None, label=label)
        ax.set_xlabel("optimizer step")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "loss.png", dpi=110)
        made.append("loss.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    lengths = {
        "base": [r["prediction"] for r in base],
        "tuned": [r["prediction"] for r in tuned],
        "reference": [r["reference"] for r in tuned],
    }
    for label, texts in lengths.items():
        ax.hist([len(t.split()) for t in texts], bins=30, alpha=0.5, label=label)
    ax.set_xlabel("answer length (words)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "lengths.png", dpi=110)
    made.append("lengths.png")
    plt.close("all")
    return made


PICKS = ("largest gain", "upper quartile", "median", "lower quartile", "largest loss")


def pick_examples(tuned: list[dict], base: list[dict], k: int = len(PICKS)) -> list[tuple[str, dict, dict]]:
    """A fixed rule, not a hand pick: rank the questions by tuned minus base ROUGE-L and take evenly spaced
    ranks, from the largest gain to the largest loss (ties keep the file's order)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    by_id = {r["id"]: r for r in base}
    pairs = [(t, by_id[t["id"]]) for t in tuned if t["id"] in by_id]
    if not pairs:
        return []

    def gain(pair):
        t, b = pair
        return (
            scorer.score(t["reference"], t["prediction"])["rougeL"].fmeasure
            - scorer.score(b["reference"], b["prediction"])["rougeL"].fmeasure
        )

    ranked = sorted(pairs, key=gain, reverse=True)
    k = min(k, len(ranked))
    ranks = sorted({round(i * (len(ranked) - 1) / max(k - 1, 1)) for i in range(k)})
    labels = PICKS if k == len(PICKS) else [f"rank {r + 1} of {len(ranked)}" for r in ranks]
    return [(label, *ranked[r]) for label, r in zip(labels, ranks, strict=True)]


def fmt_value(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if metric in ("words", "bleu", "chrf") else f"{value:.4f}"


def type_table(metrics: dict) -> list[str]:
    """By MedQuAD question type: base → tuned for each of TYPE_METRICS."""
    types = metrics.get("by_type") or {}
    if not types:
        return []
    shown = [m for m in TYPE_METRICS if m in next(iter(types.values()))["metrics"]]
    lines = ["### By question type", "", "base → tuned", ""]
    lines += ["| question type | n | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    for kind, row in types.items():
        base = row.get("baseline", {})
        cells = [f"{fmt_value(m, base.get(m))} → {fmt_value(m, row['metrics'][m])}" for m in shown]
        lines.append(f"| {kind} | {row['n']} | " + " | ".join(cells) + " |")
    return lines


def metrics_table(metrics: dict, meta: dict) -> list[str]:
    """base, tuned and their paired difference with its 95% CI, a row per metric."""
    lines = ["| metric | base | tuned | delta [95% CI] |", "|---|---|---|---|"]
    for m, d in metrics["delta"].items():
        b, t = metrics["baseline"]["metrics"][m], metrics["metrics"][m]
        if d["mean"] is None:
            continue
        lo, hi = (fmt_value(m, v) for v in d["ci95"])
        lines.append(
            f"| {m} | {fmt_value(m, b['mean'])} | {fmt_value(m, t['mean'])} | "
            f"{'+' if d['mean'] >= 0 else ''}{fmt_value(m, d['mean'])} [{lo}, {hi}] |"
        )
    if all("reference_perplexity" in meta.get(k, {}) for k in ("base", "tuned")):
        lines.append(
            f"| perplexity of references | {meta['base']['reference_perplexity']:.2f} | "
            f"{meta['tuned']['reference_perplexity']:.2f} | |"
        )
    return lines


ENDINGS = {
    "ended": "ended by the model itself",
    "loop_rate": "loops (a 4-word phrase written 4 times)",
    "hit_max_new_tokens": "cut by the token cap",
    "mid_sentence": "ends mid-sentence",
}


def endings_table(metrics: dict) -> list[str]:
    """How the answers end, base and tuned each with its 95% CI, and their paired difference: what a user of either
    model sees at the end of an answer."""
    rows = [m for m in ENDINGS if m in metrics["metrics"] and m in metrics.get("baseline", {}).get("metrics", {})]
    if not rows:
        return []

    def cell(res: dict, sign: bool = False) -> str:
        lo, hi = res["ci95"]
        plus = "+" if sign and res["mean"] >= 0 else ""
        return f"{plus}{res['mean']:.1%} [{lo:.1%}, {hi:.1%}]"

    lines = ["| how the answer ends | base [95% CI] | tuned [95% CI] | delta [95% CI] |", "|---|---|---|---|"]
    for m in rows:
        base, tuned, delta = metrics["baseline"]["metrics"][m], metrics["metrics"][m], metrics["delta"][m]
        lines.append(f"| {ENDINGS[m]} | {cell(base)} | {cell(tuned)} | {cell(delta, sign=True)} |")
    return lines


def set_label(eval_dir: Path) -> str:
    """What an evaluation folder answered: the data's name (its manifest) and split, from tuned.meta.json."""
    meta_path = Path(eval_dir) / "tuned.meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    names = []
    for folder in meta.get("data") or []:
        manifest = Path(folder) / "manifest.json"
        name = json.loads(manifest.read_text()).get("name") if manifest.is_file() else None
        names.append(name or Path(folder).name)
    split = meta.get("split", Path(eval_dir).name)
    return f"{' + '.join(names)}, {split} split" if names else f"{split} split"


SHAPE_NOTE = (
    "Answer shape (lower is better): repeats_question, the answer opens by saying the question again; near_empty, "
    "under 12 words; nothing_known, it opens by saying that nothing is known or that there is none; mid_sentence, "
    "it stops where no sentence ends."
)


def write_summary(run: Path, sets: list[tuple[Path, dict, dict]]) -> Path:
    """RUN/eval/report.md: one table per evaluation set (its folder, metrics.json, meta), each linking to its full
    report."""
    lines = [f"# Evaluation: {run}", "", "Base vs tuned on each set, 95% bootstrap CIs, paired by question.", ""]
    lines += [SHAPE_NOTE, ""]
    for folder, metrics, meta in sets:
        several = metrics.get("references", {}).get("several")
        lines += [f"## {set_label(folder)}: {metrics['n']} questions", ""]
        settings = (meta.get("tuned") or {}).get("settings")
        if settings:
            known = {f.name for f in dataclasses.fields(GenerationSettings)}
            decoding = describe_decoding(GenerationSettings(**{k: v for k, v in settings.items() if k in known}))
            lines += [f"Decoding, base and tuned alike: {decoding}.", ""]
        if several:
            lines += [f"{several} questions have several reference answers: each overlap metric takes the best.", ""]
        lines += [
            *metrics_table(metrics, meta),
            "",
            *endings_table(metrics),
            "",
            f"Answers side by side: [{folder.name}]({folder.name}/report/report.md)",
            "",
        ]
    summary = run_summary(run)  # make benchmark's, where it has run
    if summary:
        lines += [
            "## Benchmarks",
            "",
            *card_lines(summary),
            "",
            "Per task and model: [benchmark](../benchmark/report.md)",
        ]
    out = Path(run) / "eval" / "report.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def write_report(out_dir: Path, run: Path, metrics: dict, base: list[dict], tuned: list[dict], meta: dict) -> Path:
    """DIR/report/ (report.md and the plots), written atomically."""
    lines = [
        f"# Evaluation: {run}",
        "",
        f"{metrics['n']} held-out questions ({set_label(out_dir)}); "
        "95% bootstrap confidence intervals; delta = tuned minus base, paired by question. "
        "rougeL_precision / rougeL_recall: how much of the answer is in the reference / of the reference in the "
        "answer. fact_precision: share of an answer's checkable facts (gene symbols, chromosomes and bands, "
        "inheritance patterns, numbers) that its reference or question states, over the answers that state any; "
        "unsupported_facts: share of answers stating at least one such fact that neither states (lower is better; "
        "marked <mark>so</mark> in the answers below). invented_numbers: share of answers with a number found in "
        "neither the question nor the reference (lower is better). "
        f"loop_rate: share of answers in which some 4 words recur 4 or more times (lower is better; "
        f"the references: {metrics['references']['loop_rate']:.3f}). ended: share of answers the model ended itself "
        f"(not cut by the cap or where it started to loop). words: mean answer length "
        f"(references: {metrics['references']['words']:.0f}); hit_max_new_tokens: share cut off by the cap; "
        "mid_sentence: share that stop where no sentence (or list item) ends. " + SHAPE_NOTE,
        "",
        *(
            [f"Decoding: {', '.join(f'{k} {v}' for k, v in tuned[0]['settings'].items())}.", ""]
            if tuned and tuned[0].get("settings")
            else []
        ),
        *metrics_table(metrics, meta),
        "",
        *endings_table(metrics),
    ]
    lines += ["", *type_table(metrics)]
    state = newest_trainer_state(run)
    with atomic_dir(out_dir / "report") as tmp:
        made = plots(tmp, metrics, state, base, tuned)
        lines += ["", *[f"![{p}]({p})" for p in made], "", "## Answers side by side", ""]
        lines += [
            "Picked by rule: the questions ranked by tuned minus base ROUGE-L, at the largest gain, the quartiles, "
            "the median and the largest loss.",
            "",
        ]
        for label, row, base_row in pick_examples(tuned, base):
            lines += [
                f"### {label}",
                "",
                f"**Q:** {row['question']}",
                "",
                f"- *reference:* {row['reference']}",
                f"- *base:* {mark_unsupported(base_row['prediction'], row['question'], row['reference'])}",
                f"- *tuned:* {mark_unsupported(row['prediction'], row['question'], row['reference'])}",
                "",
            ]
        (tmp / "report.md").write_text("\n".join(lines) + "\n")
    return out_dir / "report" / "report.md"
