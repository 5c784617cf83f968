"""The lever tables: each lever's scores and its paired difference from the reference (or its `compare_to`), the
decoding chosen by the spec's rule, and the check that the 4-bit model and the merged weights answer alike."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from medqa_lab.levers.plan import prediction_file
from medqa_lab.levers.spec import Spec


def lever_table(spec: Spec, work: Path, split: str | None = None, encoder=None, clean_refs: bool = False) -> dict:
    """Each lever's scores on `split` and its paired difference from the lever it is compared with (`clean_refs`:
    against the references as the cleaning rules leave them, medqa.scoring.with_clean_references)."""
    from medqa.scoring import embedder, score

    split = split or spec.split
    encoder = encoder or embedder()
    names = spec.answered(split)
    if split != spec.split:  # every lever answered there but the 4-bit checks (weights_checks below)
        names = [name for name in names if spec.lever(name).weights != "4bit"]
    rows, missing, memo = [], [], {}  # each file is scored once, however many levers it is compared with
    for name in names:
        pred = prediction_file(work, split, name)
        lv = spec.lever(name)
        other = lv.compare_to or spec.reference.name
        ref = prediction_file(work, split, other)
        if not pred.is_file():
            missing.append(name)
            continue
        compared = name != other and ref.is_file()
        result = score(pred, ref if compared else None, encoder=encoder, memo=memo, clean_refs=clean_refs)
        meta = pred.with_suffix(".meta.json")
        rows.append(
            {
                "name": name,
                "about": lv.about,
                "n": result["n"],
                "model": lv.source,
                "epoch": lv.epoch,
                "set": {**spec.train, **lv.set} if lv.trains else None,
                "decode": dataclasses.asdict(spec.settings(lv)),
                "compared_with": other if "delta" in result else None,
                "metrics": result["metrics"],
                "delta": result.get("delta"),
                **verdict(result.get("delta")),
                "identical": identical(pred, ref) if compared else None,
                "by_type": result["by_type"],
                "references": result["references"],
                "reference_perplexity": json.loads(meta.read_text()).get("reference_perplexity")
                if meta.is_file()
                else None,
            }
        )
    table = {
        "spec": str(spec.path),
        "split": split,
        "clean_references": clean_refs,
        "rows": rows,
        "missing": missing,
        "weights_checks": weights_checks(spec, work, split),
    }
    if spec.choose and split == spec.split:
        table["choice"] = choose_decoding(spec, rows)
    return table


# what a lever must not lose against the one it is compared with (the base, decoded the same way, on people's
# questions): a loss is a paired difference whose 95% CI lies below 0; must-have statements count as any other
CONTENT = ("coverage", "must_have", "rougeL", "token_f1", "embed_sim")


def verdict(delta: dict | None) -> dict:
    """The content metrics a lever loses (CI below 0) and gains (CI above 0) against the lever it is compared with."""
    loses, gains = [], []
    for m in CONTENT:
        d = (delta or {}).get(m) or {}
        if d.get("mean") is None:
            continue
        lo, hi = d["ci95"]
        loses += [m] if hi < 0 else []
        gains += [m] if lo > 0 else []
    return {"loses": loses, "gains": gains}


def identical(a: Path, b: Path) -> int:
    """How many answers of `a` are word for word those of `b` (matched by id)."""
    from medqa.predictions import load_predictions

    theirs = {r["id"]: r["prediction"] for r in load_predictions(b)}
    return sum(theirs.get(r["id"]) == r["prediction"] for r in load_predictions(a))


def choose_decoding(spec: Spec, rows: list[dict]) -> dict:
    """The spec's rule: among the candidates, those that invent numbers in no more answers than greedy decoding of
    the same model and loop in at most max_loop_rate of them; the best ROUGE-L of those wins."""
    rule = spec.choose
    by_name = {r["name"]: r for r in rows}
    greedy = by_name.get(rule.greedy)
    verdicts = []
    for name in rule.candidates:
        row = by_name.get(name)
        if row is None or greedy is None:
            verdicts.append({"name": name, "eligible": False, "why": "not measured"})
            continue
        m = row["metrics"]
        invented, loops = m["invented_numbers"]["mean"], m["loop_rate"]["mean"]
        why = []
        if invented > greedy["metrics"]["invented_numbers"]["mean"]:
            why.append(
                f"invents numbers in {invented:.1%} of answers, greedy in "
                f"{greedy['metrics']['invented_numbers']['mean']:.1%}"
            )
        if loops > rule.max_loop_rate:
            why.append(f"loops in {loops:.1%} of answers (at most {rule.max_loop_rate:.0%})")
        verdicts.append(
            {
                "name": name,
                "eligible": not why,
                "why": "; ".join(why),
                "rougeL": m["rougeL"]["mean"],
                "invented_numbers": invented,
                "loop_rate": loops,
            }
        )
    eligible = [v for v in verdicts if v["eligible"]]
    winner = max(eligible, key=lambda v: v["rougeL"])["name"] if eligible else None
    return {
        "greedy": rule.greedy,
        "max_loop_rate": rule.max_loop_rate,
        "candidates": verdicts,
        "winner": winner,
        "decode": by_name[winner]["decode"] if winner else None,
    }


def weights_checks(spec: Spec, work: Path, split: str) -> list[dict]:
    """Each 4-bit lever (the adapter on the NF4 layers: the training forward) against the lever that decodes
    the same model the same way from merged weights: how many answers are identical, and the paired difference
    of the scores."""
    from medqa.predictions import load_predictions
    from medqa.scoring import score

    def decoding(lever):  # what decides the answers (batch size and cache only decide the speed)
        return {**dataclasses.asdict(spec.settings(lever)), "batch_size": None, "cache": None}

    checks = []
    for lv in spec.levers:
        twin = next(
            (
                o
                for o in spec.levers
                if o.weights == "merged"
                and (o.source, o.epoch) == (lv.source, lv.epoch)
                and decoding(o) == decoding(lv)
            ),
            None,
        )
        four_bit, merged = prediction_file(work, split, lv.name), twin and prediction_file(work, split, twin.name)
        if lv.weights != "4bit" or not twin or not four_bit.is_file() or not merged.is_file():
            continue
        mine = load_predictions(four_bit)
        theirs = {r["id"]: r for r in load_predictions(merged)}
        pairs = [(r, theirs[r["id"]]) for r in mine if r["id"] in theirs]
        paired = score(four_bit, merged)
        checks.append(
            {
                "4bit": lv.name,
                "merged": twin.name,
                "n": len(pairs),
                "identical": sum(a["prediction"] == b["prediction"] for a, b in pairs),
                "delta": {m: paired["delta"][m] for m in ("rougeL", "invented_numbers", "embed_sim")},
            }
        )
    return checks


def _ci(d: dict, digits: int, pct: bool = False) -> str:
    lo, hi = d["ci95"]
    if pct:
        return f"{100 * d['mean']:+.1f} pp [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    return f"{d['mean']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _mark(d: dict, digits: int) -> str:
    lo, hi = d["ci95"]
    return f"{d['mean']:+.{digits}f}" + ("†" if lo > 0 or hi < 0 else "")


def _mean(metrics: dict, key: str, spec: str) -> str:
    """A metric's mean, formatted; "–" where it does not apply (a set without references) or was not measured."""
    value = metrics.get(key, {}).get("mean")
    return "–" if value is None else format(value, spec)


def _delta(deltas: dict, key: str, digits: int, pct: bool = False, ci: bool = True) -> str:
    if deltas.get(key, {}).get("mean") is None:
        return "–"
    return _ci(deltas[key], digits, pct) if ci else _mark(deltas[key], digits)


def table_markdown(table: dict, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        (
            "The references as medqa.cleaning's rules leave them: their restated questions and boilerplate taken "
            "out, questions whose reference is only a list of links left out. "
            if table.get("clean_references")
            else ""
        )
        + f"Split `{table['split']}`; every lever answers the same questions and is compared, paired by question, with "
        "the lever in `vs` (95% bootstrap CI; † where the CI of a difference excludes 0). P / R: ROUGE-L precision "
        "and recall. unsupported: share of answers stating a checkable fact (gene symbol, chromosome or band, "
        "inheritance pattern, number) that neither the reference nor the question states; fact P: share of the "
        "checkable facts stated that they do state. invented: share of answers with a number found in neither the "
        "question nor the reference. ended: share the model ended on its own (its end-of-turn token); loop: share of "
        "answers in which some 4 words recur 4 or more times; cap: share cut by max_new_tokens; mid-sentence: share "
        "that stop where no sentence or list item ends (medqa.shape). same: answers word for "
        "word those of `vs`. echo / short / none known: share of answers that open by saying the question again, "
        "of under 12 words, that open by saying nothing is known or there is none (medqa.shape). coverage: share "
        "of the things a question asks that the answer addresses (medqa.coverage). must-have: share of a question's "
        "must-have statements (K-QA's, where the set has them) that the answer states (medqa.statements); "
        "contradicted: share of its statements that the answer contradicts, where an NLI judge scored them. "
        "loses / gains: the content measures (coverage, must-have, ROUGE-L, token F1, embedding) whose paired "
        "difference from `vs` has its 95% CI below / above 0.",
        "",
        "| lever | change | vs | ROUGE-L | Δ ROUGE-L [95% CI] | P / R | Δ ROUGE-2 | Δ token F1 | Δ embed "
        "| coverage | Δ coverage | must-have | Δ must-have [95% CI] | contradicted | unsupported "
        "| Δ unsupported [95% CI] | fact P | invented | Δ invented [95% CI] "
        "| ended | loop | cap | mid-sentence | echo | short | none known | words | same | loses | gains |",
        "|" + "---|" * 30,
    ]
    for row in table["rows"]:
        m, d = row["metrics"], row["delta"] or {}

        def mean(key, spec, m=m):
            return _mean(m, key, spec)

        def delta(key, digits, pct=False, ci=True, d=d):
            return _delta(d, key, digits, pct, ci)

        precision, recall = mean("rougeL_precision", ".2f"), mean("rougeL_recall", ".2f")
        lines.append(
            " | ".join(
                [
                    f"| {row['name']}",
                    row["about"],
                    row["compared_with"] or "–",
                    mean("rougeL", ".3f"),
                    delta("rougeL", 3),
                    "–" if precision == "–" else f"{precision} / {recall}",
                    *(delta(k, 3, ci=False) for k in ("rouge2", "token_f1", "embed_sim")),
                    mean("coverage", ".2f"),
                    delta("coverage", 3, ci=False),
                    mean("must_have", ".1%"),
                    delta("must_have", 3, pct=True),
                    mean("contradicted", ".1%"),
                    mean("unsupported_facts", ".1%"),
                    delta("unsupported_facts", 3, pct=True),
                    mean("fact_precision", ".2f"),
                    mean("invented_numbers", ".1%"),
                    delta("invented_numbers", 3, pct=True),
                    mean("ended", ".0%"),
                    mean("loop_rate", ".1%"),
                    mean("hit_max_new_tokens", ".1%"),
                    *(mean(k, ".1%") for k in ("mid_sentence", "repeats_question", "near_empty", "nothing_known")),
                    mean("words", ".0f"),
                    str(row["identical"]) if row.get("identical") is not None else "–",
                    ", ".join(row.get("loses") or []) or "–",
                    (", ".join(row.get("gains") or []) or "–") + " |",
                ]
            )
        )
    refs = table["rows"][0]["references"] if table["rows"] else None
    if refs:
        shapes = ", ".join(
            f"{k} {refs[k]:.1%}" for k in ("repeats_question", "near_empty", "nothing_known") if k in refs
        )
        lines += [
            "",
            f"The reference answers themselves: loop {refs['loop_rate']:.1%}, {refs['words']:.0f} words"
            + (f", {shapes}" if shapes else "")
            + ".",
        ]
    if table.get("missing"):
        lines += ["", f"Not measured (no predictions in the work folder): {', '.join(table['missing'])}."]
    choice = table.get("choice")
    if choice:
        lines += [
            "",
            f"**Decoding chosen by rule**: among the candidates, those that invent numbers in no more answers than "
            f"greedy decoding (`{choice['greedy']}`) and loop in at most {choice['max_loop_rate']:.0%} of them; the "
            f"best ROUGE-L wins: **{choice['winner'] or 'none eligible'}**.",
            "",
        ]
        for v in choice["candidates"]:
            verdict = "eligible" if v["eligible"] else f"out: {v['why']}"
            score = f"ROUGE-L {v['rougeL']:.3f}, " if "rougeL" in v else ""
            lines.append(f"- `{v['name']}`: {score}{verdict}")
    for c in table.get("weights_checks", []):
        d = c["delta"]
        lines += [
            "",
            f"The model as trained (`{c['4bit']}`: the adapter on the 4-bit NF4 layers) and the merged weights "
            f"(`{c['merged']}`) gave identical answers to {c['identical']} of {c['n']} questions; 4-bit minus merged: "
            f"ROUGE-L {_ci(d['rougeL'], 4)}, invented numbers {_ci(d['invented_numbers'], 3, pct=True)}, "
            f"embedding similarity {_ci(d['embed_sim'], 4)}.",
        ]
    return "\n".join(lines) + "\n"
