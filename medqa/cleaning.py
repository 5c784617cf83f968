"""Rules that take out of training answers what teaches a model bad habits rather than medicine.

Each rule looks at one answer (with its question) and either leaves it alone, changes it (returns the new text), or
drops the row (returns None). `make data` applies every rule by default to the training split only (validation and
test answers are references and stay as published), counts what each rule did per source, and `--keep RULE` turns a
rule off.

- `page_title`: an answer that opens with its page's title, a heading before the answer: "What causes Flu?: The flu
  is caused by ...", "Influenza (flu) (Treatment): Usually ...", "Seasonal affective disorder: Seasonal affective
  disorder (SAD) is ...", "Summary : ...". The heading goes, the answer stays. MEDIQA 2019's training answers all
  open so (a page of MedlinePlus, Mayo Clinic or GARD with its title), as do MedlinePlus's in MedQuAD ("Summary :"),
  and a model trained on them opens its answers by saying the question back as a title.
- `restated_question`: an answer that opens by restating a question ("How might cerulean cataracts be treated? No
  treatment is known ..."): the opening question goes, the answer stays. A quarter of MedQuAD's answers (GARD's
  nearly all) open so, and a model trained on them answers people by repeating their question.
- `boilerplate`: a lead-in that is the same for every disease, with what hangs on it: the Human Phenotype Ontology's
  table of signs ("The Human Phenotype Ontology provides the following list of signs and symptoms for X. If the
  information is available, the table below ...", a list of terms, then how HPO counts frequencies). The text
  before it stays; an answer that is nothing else is dropped.
- `link_list`: an answer that is only a list of resources ("These resources address the diagnosis or management of
  X: - Gene Review: ... - Genetic Testing Registry: ..."): dropped, since it answers nothing.
- `long_answer`: with a budget of words (`make data ANSWER_WORDS=N`, 150 by default; `KEEP=long_answer` keeps answers
  whole), an answer longer than it is cut where a sentence or a list item ends, the last such place within the
  budget, so that every training example ends as an answer does, with the end-of-turn token after it. Whole pages
  (MEDIQA's are thousands of words) are otherwise cut by the trainer at `sequence_len`, which drops the end-of-turn
  token, and a small model trained on them learns answers that run until something stops them. Round 8
  (results/smollm2-135m/README.md) measured it on the recipe: on people's validation questions the model trained
  so ends 21 to 31 points more of its answers itself and stops mid-sentence 18 to 30 points less often, with the same
  overlap, coverage and must-have statements as the recipe trained on whole answers. Only this rule has a parameter,
  and only this one is never applied to references.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

DROP = None  # what a rule returns to drop the row

_WORD = re.compile(r"[a-z0-9]+")
_STOP = set(
    "a an the of for to in on and or is are be been was were what how who which why when where can could do does "
    "did i my me you your it its this that these those with by from at as about have has had there their they "
    "should would will may might any some much many treated treatment treatments causes cause symptoms signs".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


# an opening sentence that is a question: no sentence end before its "?", at most 300 characters
_OPENING_QUESTION = re.compile(r"^\s*(?P<q>[^.!?]{3,300}\?)\s+(?P<rest>\S.*)$", re.S)
_YES_NO = re.compile(r"^(?:yes|no)\s*[.,;:!]", re.I)  # "Yes." "No," a reply to the opening question


def restated_question(question: str, answer: str) -> str | None:
    """The answer without an opening question that names what the question asks about. Left alone: an opening
    question about something else, one answered by a bare yes or no (taking the question away would change what
    the answer says), and an answer that is only the question."""
    match = _OPENING_QUESTION.match(answer)
    if not match or _YES_NO.match(match["rest"]) or match["q"].count("(") != match["q"].count(")"):
        return answer  # not a question, answered yes or no, or a title's question in brackets
    if not content_words(match["q"]) & content_words(question):
        return answer
    return match["rest"].strip()


# a heading before the answer, ended by a colon: a question ("What causes Flu?"), a title with its section in
# brackets ("Influenza (flu) (Treatment)"), or a bare title ("Seasonal affective disorder", "Summary")
_TITLE = re.compile(
    r"^\s*(?:"
    r"(?P<question>[^.!?:\n]{2,150}\?)"
    r"|(?P<named>[^.!?:\n()]{1,100}?)(?P<sections>(?:\s*\([^()\n]{1,80}\))+)"
    r"|(?P<bare>[^.!?:\n(),;]{2,80}?)"
    r")\s?:\s+(?P<rest>\S.*)$",
    re.S,
)
# words of a sentence, not a heading: a lead-in to a list ("Symptoms may include:", "The goals of treatment are:")
_NOT_A_HEADING = set(
    "is are was were be been being include includes including may might can could will would should must has have "
    "had do does did following these this that there here such as if when because by".split()
)
_HEADING_WORDS = 8  # a bare title is short; a sentence's lead-in is longer or has a verb
_SENTENCE = re.compile(r"^[\"'(\[]?[A-Z0-9]")  # what follows a heading: a sentence ...
_LIST = re.compile(r"^(?:-|\u2022|\*)\s*")  # ... or a list
_ANOTHER_HEADING = re.compile(r"^[A-Z][\w ]{0,30}:\s")  # "Medlife USA: Email: ...": a name, then a field


def _stems(text: str) -> set[str]:
    return {w[:-1] if w.endswith("s") else w for w in content_words(text)}


def page_title(question: str, answer: str) -> str | None:
    """The answer without the page title it opens with: a question ended by "?:", a name with its section in
    brackets, or a bare title of at most 8 words that names what the answer's first sentence (or list item) is
    about, or is one word before a sentence ("Summary : ..."). Left alone: a lead-in to a list ("Signs of
    dehydration: - Thirst"), a sentence that goes on after its colon ("Gas comes from two sources: air that you
    swallow ..."), a name before its fields ("Medlife USA: Email: ..."), and a heading whose words the answer does
    not take up ("Liver warning: This product contains acetaminophen")."""
    match = _TITLE.match(answer)
    if not match:
        return answer
    rest = match["rest"]
    listed = bool(_LIST.match(rest))
    if not (listed or _SENTENCE.match(rest)) or (match["bare"] is not None and _ANOTHER_HEADING.match(rest)):
        return answer
    if match["question"] is None:
        heading = match["named"] if match["bare"] is None else match["bare"]
        words = re.findall(r"[A-Za-z0-9'-]+", heading)
        if not words or len(words) > _HEADING_WORDS or {w.lower() for w in words} & _NOT_A_HEADING:
            return answer
        if match["bare"] is not None and (listed or len(words) > 1):
            first = re.split(r"(?<=[.!?])\s|\s-\s", _LIST.sub("", rest), maxsplit=1)[0]
            if not _stems(heading) & _stems(first):
                return answer
        if match["sections"]:  # "Ischemic Stroke (Summary): Summary A stroke is ...": the section's word again
            section = re.findall(r"\(([^()]+)\)", match["sections"])[-1].strip()
            rest = re.sub(rf"^{re.escape(section)}\s+(?=[A-Z])", "", rest)
    return rest.strip()


# the Human Phenotype Ontology's table of signs, from its lead-in to the end of how it counts frequencies
_HPO = re.compile(
    r"(?:The Human Phenotype Ontology provides the following list of signs and symptoms for .*?)"
    r"(?:In these cases, the sign or symptom may be rare or common\.|$)",
    re.S,
)
_ORPHAN_SIGNS_QUESTION = re.compile(r"^\s*What are the signs and symptoms of [^?]{1,200}\?\s*$", re.S)


def boilerplate(question: str, answer: str) -> str | None:
    """The answer without the lead-ins every disease's page shares (and the table they introduce); dropped when
    nothing else is left."""
    text = _HPO.sub(" ", answer)
    if text == answer:
        return answer
    text = " ".join(text.split())
    if not text or _ORPHAN_SIGNS_QUESTION.match(text):
        return DROP
    return text


_RESOURCES_LEAD = re.compile(
    r"(?:^|(?<=\s))(?:these|the following|other|more|additional|helpful)?\s*"
    r"(?:resources|links|websites|sites|organizations)\b.{0,200}?:(?=\s+-\s)",
    re.I,
)
_ITEM = re.compile(r"(?:^|\s+)-\s+")


def link_list(question: str, answer: str) -> str | None:
    """Dropped: an answer that opens with a list of resources and says nothing outside its lists (items of at most
    30 words: names of sites, tests, pages; a second list's lead-in may follow the first). A list of symptoms or of
    steps is left alone, and so is an answer with prose of its own."""
    if not _RESOURCES_LEAD.match(answer.lstrip()):
        return answer
    parts = _ITEM.split(_RESOURCES_LEAD.sub(" ", answer).strip())
    if parts[0].strip():  # prose before the first item
        return answer
    items = [item for item in parts[1:] if item.strip()]
    if items and all(len(item.split()) <= 30 for item in items):
        return DROP
    return answer


ANSWER_WORDS = 150  # long_answer's budget: about 200 tokens of SmolLM2's tokenizer, within make eval's 256-token cap
# where a sentence ends: its mark (and any closing quote or bracket), then a space; or where a list item starts
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*(?=\s+\S)")
_ITEM_BREAK = re.compile(r"(?=\s+(?:[-*\u2022]|\d{1,2}[.)])\s+\S)")
# a full stop that ends no sentence: an abbreviation, an initial, a list number
_NOT_AN_END = re.compile(r"(?:\b(?:e\.g|i\.e|vs|approx|etc|Dr|Mr|Mrs|Ms|St|No|Fig|al|[A-Z])|(?:^|\s)\d{1,2})\.$")


def cut_answer(answer: str, words: int) -> str:
    """The answer up to the last place within `words` words where a sentence or a list item ends (not after a
    colon or a comma, which leads into more); an answer with no such place within the budget is cut after its first
    sentence, if that is at most twice the budget, else left whole. An answer within the budget is left whole."""
    if len(answer.split()) <= words:
        return answer
    ends = sorted(
        {m.end() for m in _SENTENCE_BREAK.finditer(answer) if not _NOT_AN_END.search(answer[: m.end()])}
        | {m.start() for m in _ITEM_BREAK.finditer(answer)}
    )
    ends = [e for e in ends if answer[:e].rstrip() and answer[:e].rstrip()[-1] not in ":;,"]
    within = [e for e in ends if len(answer[:e].split()) <= words]
    if within:
        return answer[: within[-1]].strip()
    if ends and len(answer[: ends[0]].split()) <= 2 * words:
        return answer[: ends[0]].strip()
    return answer


def long_answer(question: str, answer: str, words: int | None = ANSWER_WORDS) -> str:
    """A training answer cut to its budget where a sentence or a list item ends (cut_answer); without a budget,
    left whole."""
    return answer if words is None else cut_answer(answer, words)


RULES: dict[str, Callable[[str, str], str | None]] = {
    "page_title": page_title,
    "restated_question": restated_question,
    "boilerplate": boilerplate,
    "link_list": link_list,
    "long_answer": long_answer,
}
# what a reference answer is cleaned of to score against it: its text, not its length
REFERENCE_RULES = ("page_title", "restated_question", "boilerplate", "link_list")


def rules_with(answer_words: int | None) -> dict[str, Callable[[str, str], str | None]]:
    """RULES, with long_answer's budget set where one is given."""
    if answer_words is None:
        return RULES
    if answer_words < 1:
        raise ValueError(f"the answer budget must be 1 word or more, got {answer_words}")
    return {**RULES, "long_answer": lambda question, answer: long_answer(question, answer, answer_words)}


def clean_reference(question: str, reference: str, rules: tuple[str, ...] | None = None) -> str | None:
    """A reference answer as the rules would have it in training: to score answers against references that hold
    no restated question and no boilerplate; None where a rule drops it (a reference that is only a list of links
    answers nothing to compare with). `rules`: REFERENCE_RULES, by default (a reference keeps its length)."""
    for name in rules or REFERENCE_RULES:
        new = RULES[name](question, reference)
        if new is DROP or not new.strip():
            return None
        reference = new
    return reference


def apply(
    rows: list[dict], rules: list[str], source_of: Callable[[dict], str], answer_words: int | None = None
) -> tuple[list[dict], dict]:
    """Apply `rules` in order to each row's answer (long_answer with `answer_words` as its budget, where given).
    Returns the rows kept (answers changed where a rule changed them, with `answer_original` beside the new text)
    and the counts {rule: {"changed": {source: n}, "dropped": {source: n}}}."""
    functions = rules_with(answer_words)
    counts = {name: {"changed": Counter(), "dropped": Counter()} for name in rules}
    kept = []
    for row in rows:
        answer, dropped = row["answer"], False
        for name in rules:
            new = functions[name](row["question"], answer)
            if new is DROP or not new.strip():
                counts[name]["dropped"][source_of(row)] += 1
                dropped = True
                break
            if new != answer:
                counts[name]["changed"][source_of(row)] += 1
                answer = new
        if dropped:
            continue
        kept.append(row if answer == row["answer"] else {**row, "answer": answer, "answer_original": row["answer"]})
    report = {name: {kind: dict(sorted(c.items())) for kind, c in what.items()} for name, what in counts.items()}
    return kept, report
