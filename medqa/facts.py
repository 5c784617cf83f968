"""Checkable facts in an answer, and whether its reference (or its question) supports them.

ROUGE and embedding similarity reward an answer in MedQuAD's shape whatever it claims: "Prader-Willi syndrome is
caused by mutations in the FTO gene on chromosome 22" scores well against a reference about chromosome 15. The facts
below can be checked by reading: an answer states them or not, and the reference says the same or not.

- gene symbols: FBN1, COL4A5, SMN1 (an upper-case symbol with a digit, or any upper-case symbol followed by "gene");
  ordinary abbreviations (DNA, MRI, HIV, ...) are not genes;
- chromosomes and bands: "chromosome 15", "15q11.2", "Xq28";
- inheritance patterns: autosomal dominant or recessive, X-linked (dominant or recessive), Y-linked, mitochondrial;
- numbers: "1 in 10,000", "90%", "age 65" (digits inside a gene symbol or a band belong to that fact).

A fact is supported when its reference or its question states it: the same symbol (a wrong digit is another
gene), the same chromosome (in either form) or the same band (more or less precisely: 15q11, 15q11.2), the same pattern
(an X-linked reference supports "X-linked recessive" and the other way round; dominant never supports recessive),
the same number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABBREVIATIONS = frozenset(
    """AIDS ADHD ALS BMI BP CDC CNS COPD COVID CSF CT DNA EEG EKG ECG EMG ENT FDA GI GERD GHR GP HDL HIV HPV HRT ICU
    IQ IV LDL MD MRI MS NCI NHLBI NIA NIDDK NIH NINDS NLM OTC PCR PET RNA STD STI TB UK US USA UTI UV WHO X Y""".split()
)
_SYMBOL = r"[A-Z][A-Z0-9]{1,9}(?:-[A-Z0-9]{1,5})?"
GENE = re.compile(rf"\b({_SYMBOL})\b(?=(\s+genes?\b)?)")
BAND = re.compile(r"\b((?:[1-9]|1\d|2[0-2]|X|Y)[pq]\d{1,2}(?:\.\d{1,3})?)(?:\s*-\s*[pq]?\d{1,2}(?:\.\d{1,3})?)?\b")
CHROMOSOME = re.compile(
    r"\bchromosomes?\s+((?:[1-9]|1\d|2[0-2]|X|Y)\b(?:\s*(?:,|and|or)\s*(?:[1-9]|1\d|2[0-2]|X|Y)\b)*)"
)
INHERITANCE = re.compile(
    r"\b(autosomal[\s-]+(?:dominant|recessive)|x[\s-]*linked(?:[\s-]+(?:dominant|recessive))?|y[\s-]*linked|"
    r"mitochondrial(?=\s+(?:inheritance|pattern|dna))|maternal(?:ly)?(?=\s+inherit))",
    re.I,
)
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")  # as medqa.scoring counts them


@dataclass(frozen=True)
class Fact:
    kind: str  # gene, chromosome, band, inheritance, number
    value: str  # normalised: "FBN1", "15", "15q11.2", "autosomal dominant", "10000"
    start: int  # where the answer states it (characters)
    end: int


def _inheritance(text: str) -> str:
    t = " ".join(text.lower().replace("-", " ").split())
    if t.startswith(("mitochondrial", "maternal")):
        return "mitochondrial"
    return t.replace("x linked", "x-linked").replace("y linked", "y-linked")


def extract(text: str) -> list[Fact]:
    """The checkable facts `text` states, in order (one per mention)."""
    facts: list[Fact] = []
    taken: list[tuple[int, int]] = []  # spans of symbols and bands: their digits are not numbers

    def free(start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e in taken)

    for m in BAND.finditer(text):
        facts.append(Fact("band", m.group(1), m.start(), m.end()))
        taken.append(m.span())
    for m in CHROMOSOME.finditer(text):
        for part in re.finditer(r"[0-9]+|X|Y", m.group(1)):
            facts.append(Fact("chromosome", part.group(), m.start(1) + part.start(), m.start(1) + part.end()))
        taken.append(m.span(1))
    for m in GENE.finditer(text):
        symbol = m.group(1)
        named_gene = m.group(2) is not None
        if symbol.split("-")[0] in ABBREVIATIONS or not free(*m.span(1)):
            continue
        if any(c.isdigit() for c in symbol) or named_gene:
            if symbol[1:].isdigit():  # "H1", "T2": a label, not a symbol
                continue
            facts.append(Fact("gene", symbol, m.start(1), m.end(1)))
            taken.append(m.span(1))
    for m in INHERITANCE.finditer(text):
        facts.append(Fact("inheritance", _inheritance(m.group(1)), m.start(1), m.end(1)))
    for m in NUMBER.finditer(text):
        if free(*m.span()):
            facts.append(Fact("number", m.group().replace(",", ""), m.start(), m.end()))
    return sorted(facts, key=lambda f: f.start)


class Source:
    """What a reference (with its question) states, to check an answer's facts against."""

    def __init__(self, *texts: str):
        facts = [f for t in texts for f in extract(t)]
        self.values = {(f.kind, f.value) for f in facts}
        self.chromosomes = {f.value for f in facts if f.kind == "chromosome"}
        self.chromosomes |= {re.match(r"\d+|X|Y", f.value).group() for f in facts if f.kind == "band"}
        self.bands = {f.value for f in facts if f.kind == "band"}
        self.patterns = {f.value for f in facts if f.kind == "inheritance"}
        self.text = " ".join(texts)

    def supports(self, fact: Fact) -> bool:
        if fact.kind == "chromosome":
            return fact.value in self.chromosomes
        if fact.kind == "band":  # the same band, told more or less precisely ("15q11" and "15q11.2")
            return any(band.startswith(fact.value) or fact.value.startswith(band) for band in self.bands)
        if fact.kind == "inheritance":
            if fact.value in self.patterns:
                return True
            if fact.value == "x-linked":
                return any(p.startswith("x-linked") for p in self.patterns)
            return fact.value.startswith("x-linked") and "x-linked" in self.patterns
        if fact.kind == "gene":  # a symbol also counts where the reference names it without the word "gene"
            return ("gene", fact.value) in self.values or re.search(
                rf"\b{re.escape(fact.value)}\b", self.text
            ) is not None
        return (fact.kind, fact.value) in self.values


def check(answer: str, question: str, reference: str) -> tuple[list[Fact], list[Fact]]:
    """The answer's checkable facts, split into those its reference or question supports and those they do not."""
    source = Source(question, reference)
    facts = extract(answer)
    supported = [f for f in facts if source.supports(f)]
    return supported, [f for f in facts if not source.supports(f)]


def mark_unsupported(answer: str, question: str, reference: str, before="<mark>", after="</mark>") -> str:
    """The answer with each unsupported fact wrapped in `before` ... `after`."""
    _, unsupported = check(answer, question, reference)
    out, at = [], 0
    for fact in sorted(unsupported, key=lambda f: f.start):
        if fact.start < at:
            continue
        out += [answer[at : fact.start], before, answer[fact.start : fact.end], after]
        at = fact.end
    return "".join(out) + answer[at:]


# MedQuAD's question types, told by the question's wording (a user's own file has no qtype column)
QUESTION_TYPES = (
    ("information", r"^\s*(?:what is \(are\)|do you have information about)"),  # MedQuAD's own wording first
    ("considerations", r"^\s*what to do for\b"),
    ("symptoms", r"\bsymptoms?\b|\bsigns?\b"),
    ("genetic changes", r"\bgenetic changes?\b|\bgenes? (?:related|associated)\b"),
    ("inheritance", r"\binherit"),
    ("frequency", r"\bhow many people\b|\bhow common\b|\bprevalen"),
    ("causes", r"\bwhat causes?\b|\bcauses? of\b|\bwhat (?:is|are) the causes?\b"),
    ("treatment", r"\btreatments?\b|\btreat(?:ed)?\b|\btherap"),
    ("exams and tests", r"\bdiagnos|\btests?\b|\bexams?\b"),
    ("outlook", r"\boutlook\b|\bprognosis\b"),
    ("prevention", r"\bprevent"),
    ("susceptibility", r"\bat risk\b|\brisk factors?\b"),
    ("research", r"\bresearch\b|\bclinical trials?\b"),
    ("stages", r"\bstages?\b"),
    ("complications", r"\bcomplications?\b"),
    ("information", r"^\s*(?:what|who) (?:is|are)\b|^\s*do you have information\b"),
)


def question_type(question: str) -> str:
    """MedQuAD's question type from the wording: "What are the symptoms of X ?" is symptoms, "What is (are) X ?"
    information, and so on; "other" where none fits."""
    q = question.lower()
    return next((name for name, pattern in QUESTION_TYPES if re.search(pattern, q)), "other")
