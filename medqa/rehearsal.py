"""A rehearsal set: the base model's own answers to training questions, kept where they are faithful.

Fine-tuning on MedQuAD's short, plain answers teaches a small model to write less than it did: the base answers
people's questions in about 94 words, the tuned model in about 50. Training beside the references on the base's own
answers to the same questions, where they hold up, keeps its fluency and length. An answer is kept where it states
no checkable fact that its reference does not (medqa.facts), no number that neither its question nor its reference
states, does not repeat the question, say next to nothing or claim that nothing is known (medqa.shape), addresses at
least MIN_COVERAGE of what the question asks by its terms (medqa.coverage, without the embedding), and was not cut
by the token cap.
"""

from __future__ import annotations

import re

from medqa.coverage import coverage
from medqa.facts import check
from medqa.loops import cut_loop
from medqa.scoring import invented_numbers
from medqa.shape import faults

MIN_COVERAGE = 0.5
_LAST_SENTENCE_END = re.compile(r"^.*[.!?](?=\s|$)", re.S)


def kept_text(answer) -> str:
    """What a base answer would be kept as: cut where it starts to loop, and then after its last whole sentence."""
    text, looped = cut_loop(answer.text)
    if looped or answer.stop == "loop":
        whole = _LAST_SENTENCE_END.match(text)
        text = whole.group() if whole else text
    return text.strip()


def why_not(question: str, reference: str, answer) -> str | None:
    """Why a base answer (medqa.generation.Answer) is not kept, or None where it is."""
    text = kept_text(answer)
    if answer.stop == "length":
        return "cut by the token cap"
    if faults(text, question):
        return faults(text, question)[0]
    if check(text, question, reference)[1]:
        return "unsupported fact"
    if invented_numbers(text, question, reference):
        return "invented number"
    return None


def select(rows: list[dict], answers: list) -> tuple[list[dict], dict]:
    """The rows whose base answer is kept, with that answer as their `answer` (the reference as `answer_original`),
    and how many were left out for each reason."""
    reasons = [why_not(r["question"], r["answer"], a) for r, a in zip(rows, answers, strict=True)]
    texts = [kept_text(a) for a in answers]
    covered, _ = coverage([r["question"] for r in rows], texts)
    kept, left_out = [], {}
    for row, text, reason, share in zip(rows, texts, reasons, covered, strict=True):
        reason = reason or (None if share >= MIN_COVERAGE else f"addresses under {MIN_COVERAGE:.0%} of the question")
        if reason:
            left_out[reason] = left_out.get(reason, 0) + 1
            continue
        kept.append({**row, "answer": text, "answer_original": row["answer"], "source": f"rehearsal: {row['source']}"})
    return kept, dict(sorted(left_out.items()))
