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
  is known (medqa.shape): that answer is rejected and the reference (the cleaned training answer) chosen;
- `ends` (on-policy, as facttune): several sampled answers per question, ranked by `ending_score`: an answer the
  model ended itself, that does not loop, stop mid-sentence or have another fault of shape and states no fact its
  reference does not, over one with such problems; then the one that addresses more of what the question asks
  (medqa.coverage, by its terms); then the one that states more of its reference's facts. The best is chosen and
  the worst rejected where the best has no such problem and they differ. Unlike facttune, which favours the answer
  with the fewest facts, it does not reward saying less.
- `covers` (on-policy, as ends): the same samples and the same chosen answer (clean, by `ending_score`, and of those
  the one that addresses the most of what the question asks), but the rejected one is the answer that addresses the
  least of it (a problem breaks the tie): a pair where the chosen covers more, or covers as much without the
  rejected one's problems. Where `ends` teaches above all to end cleanly, `covers` teaches to answer all of the
  question, never at the price of ending badly or stating an unsupported fact.

Rows hold the prompt and both answers as the run's chat template writes them, as text (TRL tokenises prompt +
answer as one text, so a pair's tokens are those of the run's own training examples).
"""

from __future__ import annotations

import re

from medqa import prompts
from medqa.coverage import coverage
from medqa.facts import check
from medqa.loops import cut_loop, has_loop
from medqa.shape import faults

RULES = ("spin", "fidelity", "facttune", "shape", "ends", "covers")
SAMPLED = ("facttune", "ends", "covers")  # the rules that rank several sampled answers per question
DEFAULT_RULE = "ends"  # make dpo's
PAIR_QUESTIONS = 1000  # make dpo's questions: the whole stage in under 4 minutes on one H100 (SmolLM2)
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


def ending_score(text: str, stop: str, question: str, reference: str) -> tuple[int, float, int]:
    """How well an answer ends and answers, to compare answers to one question: first the problems (not ended by
    the model itself, a loop: twice each; each fault of shape, mid-sentence included; each fact its reference and
    question do not state), fewer is better; then the share of the question's parts it addresses; then the facts
    it states that its reference does."""
    supported, unsupported = check(text, question, reference) if reference.strip() else ([], [])
    problems = 2 * (stop != "end") + 2 * has_loop(text) + len(faults(text, question)) + len(unsupported)
    covered, _ = coverage([question], [text])
    return -problems, float(covered[0]), len(supported)


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
    fidelity and shape, several samples for the SAMPLED rules); also the number of rows that gave none."""
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
        elif rule in ("ends", "covers"):
            scores = [ending_score(a.text, a.stop, q, ref) for a in own]
            best = max(reversed(range(len(own))), key=lambda i: scores[i])  # the last of equals, as a stable sort
            if rule == "ends":
                worst = min(range(len(own)), key=lambda i: scores[i])
                differ = scores[best][:2] > scores[worst][:2]
            else:  # the least of the question addressed; of those, the one with the most problems
                worst = min(range(len(own)), key=lambda i: (scores[i][1], scores[i][0]))
                differ = (scores[best][1], scores[best][0]) > (scores[worst][1], scores[worst][0])
            if scores[best][0] == 0 and differ:  # a clean answer wins
                out.append(_pair(tokenizer, row, own[best].text, own[worst].text, rule))
        else:
            ranked = sorted(own, key=lambda a: fidelity_score(a.text, a.stop, q, ref))
            worst, best = ranked[0], ranked[-1]
            if fidelity_score(best.text, best.stop, q, ref)[0] > fidelity_score(worst.text, worst.stop, q, ref)[0]:
                out.append(_pair(tokenizer, row, cut_loop(best.text)[0], worst.text, rule))
    return out, len(rows) - len(out)
