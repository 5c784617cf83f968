"""The sources `make data` prepares, each with its folder, its default input and the options that read it right: the
one place these are written (medqa.paths holds the paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medqa import paths

SEED_ROWS = 5000  # the seed notebook's MedQuAD rows (data/medqa)


@dataclass
class Source:
    name: str  # what `make data` calls it, and its option's name (--liveqa FILE, --kqa-golden FILE)
    out: Path
    input: Path  # the default file (a user's file or Hub id replaces it)
    title: str | None = None  # the data's name, for model cards
    license: str | None = None
    options: dict = field(default_factory=dict)  # medqa.data.prepare's keyword arguments
    cleaned: bool = True  # the cleaning rules apply to its training answers (make data KEEP=, ANSWER_WORDS=)
    questions_only: bool = False  # held out whole, all in the validation split (answered or not; with statements)
    people: bool = False  # people's questions: prepared only where its file is there or a file is named


def sources() -> list[Source]:
    """In the order `make data` prepares them."""
    return [
        Source(
            "seed", paths.SEED_DATA, paths.MEDQUAD_FILE, "MedQuAD", "cc-by-4.0", {"limit": SEED_ROWS}, cleaned=False
        ),
        Source("all", paths.ALL_DATA, paths.MEDQUAD_FILE, "MedQuAD", "cc-by-4.0"),
        Source(
            "liveqa",
            paths.LIVEQA,
            paths.LIVEQA_FILE,
            "TREC 2017 LiveQA-Med",
            options={"val_fraction": 0.2, "test_fraction": 0.25, "twins": True, "merge_references": True},
            people=True,
        ),
        Source(
            "mediqa",
            paths.MEDIQA,
            paths.MEDIQA_FILE,
            "MEDIQA 2019 QA",
            options={"split_column": "split", "references_column": "answers_judged_correct"},
            people=True,
        ),
        Source("kqa", paths.KQA, paths.KQA_FILE, "K-QA patients' questions", "mit", questions_only=True, people=True),
        Source(
            "kqa-golden",
            paths.KQA_GOLDEN,
            paths.KQA_GOLDEN_FILE,
            "K-QA physician-answered questions",
            "mit",
            questions_only=True,
            people=True,
        ),
    ]
