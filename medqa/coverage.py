"""How much of a question an answer addresses.

People's messages often ask several things at once ("How do symptoms of arthritis differ from onset of HNPP, and what
are the treatments for these respective disorders?"); an answer that takes up one of them, or says the question
back, leaves the rest unanswered. `parts(question)` are the things it asks: the sentences that ask something (a "?",
a question word, a request: "I would like information on ..."), the subject line and the story around them left
out, each cut again at ";" and at "and" between two things asked; a message with no such sentence is one part.
`addressed(part, answer)`: the answer takes up the part by its terms (at least half of the part's content words,
stemmed, are in the answer; of a question's several parts, the words all of them share, its topic, are left out) or
by meaning (a sentence of the answer whose all-MiniLM-L6-v2 embedding is at least EMBED_MATCH from the part's).
Sentences of the answer that say the question back (medqa.shape) do not count. `coverage` is the share of a
question's parts that the answer addresses: 1 for an answer that takes up all of them. Calibrated on people's
questions (docs/evaluation.md): an expert's answer, cut to an answer's length, addresses 62% of its question's parts,
another question's answer 4%.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

import numpy as np

from medqa.shape import repeats_question

MIN_TERMS_MATCHED = 0.5  # of a part's content words, for the answer to take it up by its terms
EMBED_MATCH = 0.5  # cosine of a part and a sentence of the answer that takes it up by meaning (docs/evaluation.md)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.?!])\s+|\s*\n+\s*|(?<=\?)(?=\S)")
_FUNCTION = set(
    "a an the of for to in on at by with from into about as than then so or and nor but if because while when where "
    "how what which who whom whose why whether is are was were be been being am do does did done doing have has had "
    "having can could will would shall should may might must i me my mine we us our you your he him his she her it "
    "its they them their this that these those there here any some all both each either neither other such no not "
    "very too also just only more most much many few lot lots one ones thing things way ways get got getting go "
    "going know knew tell told let like want wanted need needed please thank thanks hello hi dear sir madam regards "
    "help helped info information question questions ask asking wondering wonder looking look find send give "
    "appreciate kindly someone anything something anyone mr mrs ms dr doctor's name".split()
)
_ASKS = re.compile(
    r"\?|^(?:how|what|what's|which|who|why|when|where|whether|is|are|was|were|do|does|did|can|could|will|would|"
    r"should|shall|may|might|has|have|any)\b|\b(?:i|we) (?:would|'d) (?:like|love|appreciate)\b|"
    r"\b(?:i|we) (?:want|need|wish|am looking|was wondering|am wondering) \b|"
    r"\b(?:please|pls|plz|kindly) (?:tell|send|help|let|advise|suggest|give|explain|provide)\b|"
    r"\b(?:tell|send|show|give) (?:me|us)\b|\bknow (?:more|about)\b|"
    r"\b(?:information|info|literature) (?:on|about|regarding)\b|^(?:my )?questions? (?:is|are)\b",
    re.I,
)
# where one sentence asks a second thing: "..., and what are the treatments ...", "...; how long ..."
_AND_ASK = re.compile(
    r"\s*;\s*|,?\s+and\s+(?:also\s+)?(?=(?:how|what|which|who|why|when|where|if|whether|is|are|can|could|do|does|"
    r"should|will|would)\b)",
    re.I,
)


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer  # rouge-score's stemmer

    return PorterStemmer()


def terms(text: str) -> set[str]:
    """The content words of a text, stemmed."""
    stem = _stemmer().stem
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in _FUNCTION and len(w) > 1 and not w.isdigit()}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def parts(question: str) -> list[str]:
    """The things a question asks, each a short text (at least one)."""
    said = sentences(html.unescape(question))
    asks = [s for s in said if _ASKS.search(s)]
    if not asks:  # a message that asks nothing in so many words: all of it but its subject line
        asks = [" ".join(said[1:]) if len(said) > 1 else " ".join(said)]
    out = []
    for sentence in asks:
        pieces = [p for p in _AND_ASK.split(sentence) if p and terms(p)]
        out += pieces or ([sentence] if terms(sentence) else [])
    return out or [question]


def _own_words(answer: str, question: str) -> list[str]:
    """The answer's sentences but those that say the question back."""
    return [s for s in sentences(answer) if not repeats_question(s, question)]


def coverage(questions: list[str], answers: list[str], encoder=None) -> tuple[np.ndarray, np.ndarray]:
    """For each answer, the share of its question's parts that it addresses, and how many parts the question has.
    Without an `encoder` (a sentence embedder), by their terms alone."""
    asked = [parts(q) for q in questions]
    said = [_own_words(a, q) for a, q in zip(answers, questions, strict=True)]
    vectors = {}
    if encoder is not None:
        texts = list(dict.fromkeys([p for ps in asked for p in ps] + [s for ss in said for s in ss]))
        embedded = encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
        vectors = dict(zip(texts, embedded, strict=True))
    shares = []
    for ps, ss in zip(asked, said, strict=True):
        answer_terms = terms(" ".join(ss))
        sims = np.stack([vectors[s] for s in ss]) if ss and vectors else None
        shared = set.intersection(*(terms(p) for p in ps)) if len(ps) > 1 else set()  # the topic, in every part
        done = 0
        for p in ps:
            want = (terms(p) - shared) or terms(p)
            by_terms = bool(want) and len(want & answer_terms) >= MIN_TERMS_MATCHED * len(want)
            by_meaning = sims is not None and float((sims @ vectors[p]).max()) >= EMBED_MATCH
            done += by_terms or by_meaning
        shares.append(done / len(ps))
    return np.asarray(shares, dtype=float), np.asarray([len(ps) for ps in asked], dtype=float)
