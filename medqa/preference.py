"""Preference pairs for a DPO stage after fine-tuning (recipes/smollm2-135m/dpo.yml), by one of three rules:

- `spin` (self-play fine-tuning, Chen et al. 2024): for each training question the reference answer is chosen and
  the run's own greedy answer rejected;
- `fidelity`: only where the run's greedy answer loops or states a checkable fact its reference does not
  (medqa.facts): that answer is rejected, and chosen is the same answer ended before the sentence that goes wrong
  (where at least MIN_KEPT words are left), else the reference;
- `facttune` (Tian et al., "Fine-tuning Language Models for Factuality", ICLR 2024; on-policy): several sampled
  answers per question, each scored against the reference (the knowledge source) by `fidelity_score`; the best is
  chosen and the worst rejected where they differ;
- `shape`: only where the run's greedy answer repeats the question, says next to nothing or opens by saying nothing
  is known (medqa.shape): that answer is rejected and the reference (the cleaned training answer) chosen.

Rows hold the prompt and both answers as the run's chat template writes them, as text (TRL tokenises prompt +
answer as one text, so a pair's tokens are those of the run's own training examples).
"""

from __future__ import annotations

import re

from medqa import prompts
from medqa.facts import check
from medqa.loops import cut_loop
from medqa.shape import faults

RULES = ("spin", "fidelity", "facttune", "shape")
MIN_KEPT = 8  # words an answer keeps, ended early, to stand as the chosen one
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def fidelity_score(text: str, stop: str, question: str, reference: str) -> tuple[int, int]:
    """How faithful an answer is, to compare answers to one question: first the problems (each fact its reference
    and question do not state, a loop counted twice, an answer cut by the token cap once), fewer is better; then the
    facts they state, more is better."""
    kept, looped = cut_loop(text)
    supported, unsupported = check(kept, question, reference)
    problems = len(unsupported) + 2 * (looped or stop == "loop") + (stop == "length")
    return -problems, len(supported)


def ended_before_trouble(text: str, question: str, reference: str) -> str | None:
    """The answer up to the sentence that first loops or states an unsupported fact; None if it has no trouble or
    too little comes before it."""
    kept, looped = cut_loop(text)
    _, unsupported = check(kept, question, reference)
    if not unsupported and not looped:
        return None
    cut = kept
    if unsupported:  # end before the sentence that states the first one
        first = min(f.start for f in unsupported)
        cut = kept[: max(s for s in [0] + [m.end() for m in _SENTENCE_END.finditer(kept)] if s <= first)]
    cut = cut.strip()
    return cut if len(cut.split()) >= MIN_KEPT else reference


def _pair(tokenizer, row: dict, chosen: str, rejected: str, rule: str) -> dict:
    before, after = prompts.answer_frame(tokenizer)
    return {
        "id": row["id"],
        "prompt": prompts.prompt_text(tokenizer, row["question"]),
        "chosen": before + chosen.strip() + after,
        "rejected": before + rejected.strip() + after,
        "rule": rule,
    }


def make_pairs(tokenizer, rule: str, rows: list[dict], answers: list[list]) -> tuple[list[dict], int]:
    """Pairs by `rule` from each row's answers (medqa.generation.Answer: one greedy answer a row for spin and
    fidelity and shape, several samples for facttune); also the number of rows that gave none."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    out = []
    for row, own in zip(rows, answers, strict=True):
        q, ref = row["question"], row["answer"]
        if rule == "spin":
            if own[0].text.strip() != ref.strip():
                out.append(_pair(tokenizer, row, ref, own[0].text, rule))
        elif rule == "shape":
            if faults(own[0].text, q) and not faults(ref, q):
                out.append(_pair(tokenizer, row, ref, own[0].text, rule))
        elif rule == "fidelity":
            better = ended_before_trouble(own[0].text, q, ref)
            if better is not None:
                out.append(_pair(tokenizer, row, better, own[0].text, rule))
        else:
            ranked = sorted(own, key=lambda a: fidelity_score(a.text, a.stop, q, ref))
            worst, best = ranked[0], ranked[-1]
            if fidelity_score(best.text, best.stop, q, ref)[0] > fidelity_score(worst.text, worst.stop, q, ref)[0]:
                out.append(_pair(tokenizer, row, cut_loop(best.text)[0], worst.text, rule))
    return out, len(rows) - len(out)
