"""The predictions format, one JSON object a line, as `make eval`'s generation writes it and everything after reads
it (the scorer, the report, the loop cut, the lever tables): FIELDS first, then what generation knows of the answer
(new_tokens, hit_max_new_tokens, stop: "end", "length" or "loop"), the model and its decoding settings; a question
with several reference answers carries them all in `references`, and one with statements (K-QA's) carries them as
`must_have` and `nice_to_have` (medqa.data.STATEMENTS), so that a predictions file is scored on its own."""

from __future__ import annotations

import json
from pathlib import Path

from medqa.data import STATEMENTS, read_jsonl
from medqa.errors import UserError

FIELDS = ("id", "question", "reference", "prediction")
STOPS = ("end", "length", "loop")  # why generation stopped: the model ended, the token cap, the loop stop


def prediction_lines(rows: list[dict], answers: list, model: str, settings: dict) -> str:
    """A predictions file (JSONL, one row per question, FIELDS first) from prepared rows and their answers
    (medqa.generation.Answer)."""
    return "".join(
        json.dumps(
            {
                "id": r["id"],
                "question": r["question"],
                "reference": r["answer"],
                **({"references": r["references"]} if r.get("references") else {}),
                **{k: r[k] for k in STATEMENTS if r.get(k)},
                "prediction": a.text,
                "new_tokens": a.new_tokens,
                "hit_max_new_tokens": a.hit_max_new_tokens,
                "stop": a.stop,
                "model": model,
                "settings": settings,
            },
            ensure_ascii=False,
        )
        + "\n"
        for r, a in zip(rows, answers, strict=True)
    )


def load_predictions(path: Path) -> list[dict]:
    rows = read_jsonl(path)
    if not rows:
        raise UserError(path, "no predictions (empty file)")
    for i, row in enumerate(rows, 1):
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise UserError(path, f"row {i}: missing field(s) {', '.join(missing)}")
        if not all(isinstance(row[k], str) for k in ("question", "prediction", "reference")):
            raise UserError(path, f"row {i}: question, prediction and reference must be strings")
        if not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool):
            raise UserError(path, f"row {i}: id must be a string or a whole number, not {type(row['id']).__name__}")
        if not isinstance(row.get("hit_max_new_tokens", False), bool):
            raise UserError(path, f"row {i}: hit_max_new_tokens must be true or false")
        if row.get("stop", "end") not in STOPS:
            raise UserError(path, f"row {i}: stop must be one of {', '.join(STOPS)}")
        refs = row.get("references")
        if refs is not None and (not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs)):
            raise UserError(path, f"row {i}: references must be a non-empty list of strings")
        for key in STATEMENTS:
            items = row.get(key)
            if items is not None and (
                not isinstance(items, list) or not items or not all(isinstance(t, str) and t.strip() for t in items)
            ):
                raise UserError(path, f"row {i}: {key} must be a non-empty list of statements (non-empty strings)")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise UserError(path, "duplicate ids")
    return rows
