"""The shape of an answer, whatever its reference: does it repeat the question, say next to nothing, or claim that
nothing is known? Each is a habit a model picks up from its training answers (MedQuAD's open by restating their
question; many say "no treatment is known"), and each makes an answer useless to the person who asked. The scorer
reports their rates (lower is better) and the preference stage's `shape` rule rejects such answers.
"""

from __future__ import annotations

import re

NEAR_EMPTY_WORDS = 12  # an answer of fewer words says next to nothing
_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _lcs(a: list[str], b: list[str]) -> int:
    """The length of the longest common subsequence of two token lists."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def repeats_question(answer: str, question: str) -> bool:
    """The answer opens by saying the question again: its first sentence is a question, or at least 80% of its
    first sentence (of 5 words or more) is the question's words in the question's order."""
    first = _SENTENCE_END.split(answer.strip(), maxsplit=1)[0]
    if first.endswith("?"):
        return True
    words = _tokens(first)[:200]
    return len(words) >= 5 and _lcs(words, _tokens(question)[:400]) >= 0.8 * len(words)


def near_empty(answer: str) -> bool:
    """Fewer than NEAR_EMPTY_WORDS words."""
    return len(answer.split()) < NEAR_EMPTY_WORDS


_NOTHING_KNOWN = re.compile(
    r"\b(?:"
    r"nothing is known"
    r"|(?:is|are|remains?) (?:not|currently not|still not) (?:known|understood)"
    r"|(?:is|are) unknown"
    r"|there (?:is|are) (?:currently )?no (?:known|specific|effective|established|reported|available)?\s*\w+"
    r"|no (?:known |specific )?\w+ (?:is|are|has been|have been) (?:known|found|reported|identified|available)"
    r"|(?:has|have) not been (?:reported|identified|described|found|established)"
    r"|no (?:information|data) (?:is|are) available"
    r"|i (?:do not|don't) know"
    r")",
    re.I,
)


def claims_nothing_known(answer: str) -> bool:
    """The answer's first sentence says that nothing is known, that there is none, or that it does not know ("There
    are no known medications that cause ..."): the habit of an answer that gives up. A later sentence saying so
    after an answer is not counted."""
    first = _SENTENCE_END.split(answer.strip(), maxsplit=1)[0]
    return bool(_NOTHING_KNOWN.search(first))


SHAPES = {
    "repeats_question": lambda answer, question: repeats_question(answer, question),
    "near_empty": lambda answer, question: near_empty(answer),
    "nothing_known": lambda answer, question: claims_nothing_known(answer),
}


def faults(answer: str, question: str) -> list[str]:
    """The names of SHAPES the answer has."""
    return [name for name, test in SHAPES.items() if test(answer, question)]
