"""The shape of an answer, whatever its reference: does it repeat the question, say next to nothing, claim that
nothing is known, or stop in the middle of a sentence? Each is a habit a model picks up from its training answers
(MedQuAD's open by restating their question; many say "no treatment is known"; answers cut to fit a sequence lose
their end), and each makes an answer useless to the person who asked. The scorer reports their rates (lower is
better) and the preference stage's `shape` rule rejects such answers.
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


# that nothing is known: wherever the answer opens so, it gives up
_UNKNOWN = re.compile(
    r"\b(?:"
    r"nothing is known"
    r"|(?:is|are|remains?) (?:not|currently not|still not) (?:known|understood)"
    r"|(?:is|are|remains?) unknown"
    r"|no (?:known|reported|identified) \w+"
    r"|no \w+ (?:is|are|has been|have been) (?:known|found|reported|identified)"
    r"|(?:has|have) not been (?:reported|identified|described|found|established)"
    r"|no (?:information|data) (?:is|are) available"
    r"|i (?:do not|don't) know"
    r")",
    re.I,
)
# that there is none ("There is no cure for X"): true of many conditions, a give-up only with nothing after it
_NONE = re.compile(
    r"\bthere (?:is|are) (?:currently )?no\b|\bno (?:cure|treatment|medication)s? (?:is|are|exists?)\b", re.I
)


def claims_nothing_known(answer: str) -> bool:
    """The answer opens by saying that nothing is known ("There are no known medications that cause ...", "No
    treatment is known"), or by saying that there is none with next to nothing after it ("There is no cure for
    Leigh disease. Treatment is supportive."). "There is no cure for IBS; however, these treatments help: ..." is an
    answer, and a later sentence saying that something is unknown is not counted."""
    parts = _SENTENCE_END.split(answer.strip(), maxsplit=1)
    first, rest = parts[0], parts[1] if len(parts) > 1 else ""
    if _UNKNOWN.search(first):
        return True
    return bool(_NONE.search(first)) and len(rest.split()) < NEAR_EMPTY_WORDS


# the end of a sentence: its mark, then any closing quote or bracket
_ENDS_SENTENCE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")
# the last item of a list ("- Surgery", "* Rest", "2. Ice"), on a line of its own or inline as text cleaned of its
# line breaks writes it ("... include: - Rest - Ice"): a list may end without a full stop
_LAST_ITEM = re.compile(r"(?s).*(?:^|\s)(?:[-*\u2022]|\d{1,2}[.)])\s+([^\n]*?)$")
LIST_ITEM_WORDS = 20  # an item longer than this is a sentence, and a sentence ends with its mark (docs/evaluation.md)
# what may follow the last word without cutting it: emoji and other symbols ("Hope this helps! 😊")
_TRAILING_SYMBOLS = re.compile(r"[\s\u2600-\u27bf\U0001f000-\U0001faff\ufe0f\u200d]+$")
_LINK = re.compile(r"(?:https?://|www\.)\S+$")  # an answer that ends on a link ends whole
# words that never end a sentence or an item: what follows them was cut off
_OPEN_WORDS = set(
    "a an the of to in on at by for from with and or but nor as than that which who whose whom is are was were be "
    "been being has have had do does did can could may might must shall should will would such its their your his "
    "her our my this these those if when because while although including include includes".split()
)


def ends_mid_sentence(answer: str) -> bool:
    """The answer stops where no sentence ends: its last word (emoji and other symbols after it aside) is not
    followed by a full stop, a question or an exclamation mark (closing quotes and brackets aside), unless it is the
    last item of a list, of at most LIST_ITEM_WORDS words, that does not end on a word that needs more ("- Physical
    therapy" ends a list; "It is" and "- Antibiotics to treat the" stop mid-sentence), or a link. An empty answer is
    near_empty, not this. Calibrated on the references (docs/evaluation.md): their own rate is the floor."""
    text = _TRAILING_SYMBOLS.sub("", answer)
    if not text or _ENDS_SENTENCE.search(text) or _LINK.search(text):
        return False
    item = _LAST_ITEM.match(text)
    if item is not None:
        words = item[1].split()
        last = re.sub(r"\W+$", "", words[-1].lower()) if words else ""
        if words and len(words) <= LIST_ITEM_WORDS and last not in _OPEN_WORDS and not text.endswith((",", ":", ";")):
            return False
    return True


SHAPES = {
    "repeats_question": lambda answer, question: repeats_question(answer, question),
    "near_empty": lambda answer, question: near_empty(answer),
    "nothing_known": lambda answer, question: claims_nothing_known(answer),
    "mid_sentence": lambda answer, question: ends_mid_sentence(answer),
}


def faults(answer: str, question: str) -> list[str]:
    """The names of SHAPES the answer has."""
    return [name for name, test in SHAPES.items() if test(answer, question)]
