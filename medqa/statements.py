"""Does an answer say what a physician says it must? K-QA's comprehensiveness (Manes et al., BioNLP 2024; MedLFQA's
reading of LiveQA-Med and MedicationQA, Jeong et al. 2024): the share of a question's `must_have` statements that the
answer states; and, where a judge can tell contradiction from silence, the share of all its statements (`must_have`
and `nice_to_have`) that the answer contradicts (K-QA's hallucination rate).

Offline, by default, "states" is a rule built from what the scorer already has (docs/evaluation.md calibrates it on
K-QA's dev set and on statements judged by hand): a statement is stated where a sentence of the answer, or two in a
row, is within EMBED_MATCH of it (cosine of all-MiniLM-L6-v2 embeddings), or where at least MIN_TERMS_MATCHED of its
content words (stemmed) are in the answer. It is a screen, not a judge: sentence embeddings put an answer about the
same condition close to a statement it does not make, so it counts some statements an answer only comes near (on
model answers judged by hand, 6 of the 14 statements it counted were stated, and it missed none of the 6 that were).
It cannot see a contradiction: "not stated" is all it says, and it reports none.

With a natural-language-inference model (`NLIJudge`: a cross-encoder from the Hub, or a folder, whose labels name
entailment and contradiction), each statement is the hypothesis and the answer the premise, in windows of
NLI_WINDOW sentences: a statement is stated where a window entails it, contradicted where a window contradicts it and
none entails it.
"""

from __future__ import annotations

import numpy as np

from medqa.coverage import sentences, terms

EMBED_MATCH = 0.8  # cosine of a statement and one or two sentences of the answer that state it (docs/evaluation.md)
MIN_TERMS_MATCHED = 0.7  # of a statement's content words, for the answer to state it by its terms
NLI_WINDOW = 3  # sentences of the answer an NLI judge reads at a time (a premise shorter than its limit)


def _windows(answer: str, size: int) -> list[str]:
    """The answer's sentences, one at a time and `size` in a row (the answer itself where it has no sentence)."""
    said = sentences(answer) or [answer]
    wins = list(said)
    for k in range(2, size + 1):
        wins += [" ".join(said[i : i + k]) for i in range(len(said) - k + 1)]
    return wins


def stated_by_rule(statements: list[str], answer: str, question: str, encoder) -> np.ndarray:
    """For each statement, whether the answer states it by the offline rule (see the module)."""
    if not answer.strip():
        return np.zeros(len(statements), dtype=bool)
    wins = _windows(answer, 2)
    vectors = encoder.encode(wins + statements, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    sims = (vectors[len(wins) :] @ vectors[: len(wins)].T).max(axis=1)
    said = terms(answer)
    out = []
    for statement, sim in zip(statements, sims, strict=True):
        want = terms(statement)
        by_terms = bool(want) and len(want & said) >= MIN_TERMS_MATCHED * len(want)
        out.append(bool(sim >= EMBED_MATCH) or by_terms)
    return np.asarray(out, dtype=bool)


class NLIJudge:
    """A natural-language-inference cross-encoder (transformers' sequence classification, labels that name
    entailment and contradiction, as `cross-encoder/nli-deberta-v3-base` or `MoritzLaurer/DeBERTa-v3-base-mnli`)."""

    def __init__(self, name: str, device: str | None = None, batch_size: int = 32):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name, self.batch_size = name, batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(name)
        self.model = AutoModelForSequenceClassification.from_pretrained(name).to(self.device).eval()
        labels = {i: str(label).lower() for i, label in self.model.config.id2label.items()}
        self.entail = next((i for i, label in labels.items() if label.startswith("entail")), None)
        self.contradict = next((i for i, label in labels.items() if label.startswith("contradict")), None)
        if self.entail is None or self.contradict is None:
            raise ValueError(f"its labels ({', '.join(labels.values())}) do not name entailment and contradiction")

    def labels(self, premises: list[str], hypotheses: list[str]) -> np.ndarray:
        """The predicted label id of each (premise, hypothesis) pair."""
        import torch

        out = []
        for at in range(0, len(premises), self.batch_size):
            batch = self.tokenizer(
                premises[at : at + self.batch_size],
                hypotheses[at : at + self.batch_size],
                truncation="only_first",
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                out.append(self.model(**batch).logits.argmax(dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=int)

    def judge(self, statements: list[str], answer: str) -> tuple[np.ndarray, np.ndarray]:
        """For each statement, whether the answer entails it and whether it contradicts it (and entails it nowhere)."""
        if not answer.strip():
            return np.zeros(len(statements), dtype=bool), np.zeros(len(statements), dtype=bool)
        wins = _windows(answer, NLI_WINDOW)
        labels = self.labels([w for _ in statements for w in wins], [s for s in statements for _ in wins])
        labels = labels.reshape(len(statements), len(wins))
        entailed = (labels == self.entail).any(axis=1)
        return entailed, (labels == self.contradict).any(axis=1) & ~entailed


def statement_scores(rows: list[dict], encoder, judge: NLIJudge | None = None) -> dict[str, np.ndarray]:
    """Per row: `must_have`, the share of its must-have statements the answer states (by the judge where one is
    given, else by the rule), and with a judge `contradicted`, the share of all its statements the answer
    contradicts; NaN for a row without statements."""
    must, contradicted = [], []
    for row in rows:
        needed, extra = row.get("must_have") or [], row.get("nice_to_have") or []
        if not needed and not extra:
            must.append(float("nan"))
            contradicted.append(float("nan"))
            continue
        if judge is not None:
            entailed, against = judge.judge(needed + extra, row["prediction"])
            must.append(float(entailed[: len(needed)].mean()) if needed else float("nan"))
            contradicted.append(float(against.mean()))
        else:
            stated = stated_by_rule(needed, row["prediction"], row["question"], encoder) if needed else None
            must.append(float(stated.mean()) if needed else float("nan"))
            contradicted.append(float("nan"))
    scores = {"must_have": np.asarray(must, dtype=float)}
    if judge is not None:
        scores["contradicted"] = np.asarray(contradicted, dtype=float)
    return scores
