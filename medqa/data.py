"""Data rules: read a question/answer dataset, clean it, split it without leakage, write it.

Accepted input: CSV (also .csv.gz, .tsv), JSONL (also .jsonl.gz; a .json file may hold one array of objects), Parquet,
or a hub dataset id; text in UTF-8, or UTF-16 / UTF-32 with a byte-order mark. Question and
answer columns are found case-insensitively; extra columns are ignored, except `document_id` (else
`focus`), which keeps a source document's rows in one split, and `must_have` / `nice_to_have`, a row's statements
(K-QA's: what a physician says a good answer must contain, and what adds to it; a JSON list of strings), which the
row keeps for scoring. The seed notebook's single `text` column (`<s>[INST] <<SYS>> ... <</SYS>> {question} [/INST]
{answer} </s>`) is accepted too.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from medqa import cleaning, prompts
from medqa.errors import UserError, first_line
from medqa.fsutil import atomic_dir, atomic_write_text
from medqa.integrity import parse_json
from medqa.prompts import messages

SPLITS = ("train", "val", "test")
GROUP_COLUMNS = ("document_id", "focus")  # the first one present groups rows by source document
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "dev": "val", "test": "test"}
NA_VALUES = {"", "nan", "NaN"}  # cells read as missing
SEED_TEXT = re.compile(r"^\s*(?:<s>)?\s*\[INST\]\s*<<SYS>>.*?<</SYS>>(?P<q>.*?)\[/INST\](?P<a>.*?)(?:</s>)?\s*$", re.S)
SEED = 42  # the seed of every split and of --limit's sample
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
STATEMENTS = ("must_have", "nice_to_have")  # a row's statements (K-QA): what an answer must contain, what adds to it
MAX_STATEMENT_WORDS = 150  # a statement is one claim; longer is a whole answer pasted into the wrong column


@dataclass
class Table:
    """Raw rows as read, before any cleaning."""

    source: str
    kind: str
    sha256: str | None
    rows: list[dict] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


def _read_bytes(path: Path) -> tuple[bytes, str]:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise UserError(path, f"broken gzip data ({err})") from None
    return raw, digest


# a byte-order mark says the encoding (spreadsheets save "Unicode text" as UTF-16 with one); without one, UTF-8
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF8, "utf-8-sig"))  # fmt: skip


def _decode(path: Path, raw: bytes) -> str:
    encoding = next((name for bom, name in BOMS if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        if encoding == "utf-8" and b"\x00" in raw[:65536]:
            raise UserError(path, "binary data, not a text CSV or JSONL file") from None
        raise UserError(
            path,
            f"not {encoding.upper().removesuffix('-SIG')} text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "save the file as UTF-8",
        ) from None
    if not text.strip():
        raise UserError(path, "empty file")
    if "\x00" in text[:65536]:
        raise UserError(path, "binary data, not a text CSV or JSONL file")
    return text


def _read_csv(path: Path, text: str, sep: str) -> tuple[list[dict], list[str]]:
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # a long answer is legitimate (training cuts it)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise UserError(path, "empty file")
        header = [h.strip() for h in header]  # "question, answer", as people type it
        rows = []
        for record in reader:
            if not record:
                continue
            if len(record) != len(header):
                raise UserError(
                    path,
                    f"malformed CSV: line {reader.line_num} has {len(record)} fields, "
                    f"the header has {len(header)} (check the quoting)",
                )
            rows.append({k: (None if v in NA_VALUES else v) for k, v in zip(header, record, strict=True)})
    except csv.Error as err:
        raise UserError(path, f"malformed CSV: line {reader.line_num}: {err}") from None
    return rows, header


def _read_jsonl(path: Path, text: str) -> tuple[list[dict], list[str]]:
    rows, columns = [], {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = parse_json(line, path, f"line {lineno}: ")
        if not isinstance(row, dict):
            raise UserError(path, f"line {lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
        columns.update(dict.fromkeys(row))
    return rows, list(columns)


def _read_json_array(path: Path, text: str) -> tuple[list[dict], list[str]]:
    """A .json file holding one array of objects (what many tools export), or JSON Lines."""
    if not text.lstrip().startswith("["):
        return _read_jsonl(path, text)
    rows = parse_json(text, path)
    if not isinstance(rows, list):
        raise UserError(path, "expected an array of JSON objects")
    columns = {}
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise UserError(path, f"item {i}: expected a JSON object, got {type(row).__name__}")
        columns.update(dict.fromkeys(row))
    return rows, list(columns)


def _read_parquet(path: Path, raw: bytes) -> tuple[list[dict], list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(raw))
        return table.to_pylist(), list(table.column_names)
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError, MemoryError) as err:
        raise UserError(path, f"not a readable Parquet file ({first_line(err, 120)})") from None


def _read_hub(dataset_id: str) -> Table:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise UserError(
            dataset_id,
            "no such file, and the hub is off (HF_HUB_OFFLINE=1, which make sets; HF_HUB_OFFLINE=0 lets a hub "
            "dataset id through)",
        )
    try:
        import datasets

        ds = datasets.load_dataset(dataset_id, split="train")
    except Exception as err:  # the hub raises many kinds; all mean "cannot read it"
        first = first_line(err, limit=10**6)
        raise UserError(dataset_id, f"cannot load this dataset from the hub: {first}") from None
    return Table(dataset_id, "hub", getattr(ds, "_fingerprint", None), ds.to_list(), list(ds.column_names))


FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson", ".gz", ".txt", ".parquet")


def looks_like_hub_id(source: str) -> bool:
    """`owner/name` that is not a path of this machine: no file suffix, and no local folder named like its owner."""
    return (
        bool(HUB_ID.match(source))
        and not source.startswith((".", "/"))
        and not source.lower().endswith(FILE_SUFFIXES)
        and not Path(source.split("/")[0]).is_dir()
    )


def read_table(source: str | Path) -> Table:
    path = Path(source)
    if not path.exists():
        if looks_like_hub_id(str(source)):
            return _read_hub(str(source))
        raise UserError(source, "no such file")
    if path.is_dir():
        raise UserError(path, "is a folder; give a CSV or JSONL file")
    raw, digest = _read_bytes(path)
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    ext = suffixes[-1] if suffixes else ""
    if ext == ".parquet":
        rows, columns = _read_parquet(path, raw)
        if not rows:
            raise UserError(path, "no data rows")
        return Table(str(source), "parquet", digest, rows, columns)
    text = _decode(path, raw)
    if ext in (".jsonl", ".json", ".ndjson"):
        rows, columns = _read_json_array(path, text) if ext == ".json" else _read_jsonl(path, text)
        kind = "jsonl"
    else:
        rows, columns = _read_csv(path, text, "\t" if ext == ".tsv" else ",")
        kind = "tsv" if ext == ".tsv" else "csv"
    if not rows:
        raise UserError(path, "no data rows (header only?)")
    return Table(str(source), kind, digest, rows, columns)


# --------------------------------------------------------------------------- cleaning


def clean_text(value) -> str:
    """Strip and collapse runs of whitespace; missing values become ''."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return " ".join(str(value).split())


def cell_text(source, value, column: str, row_number: int) -> str:
    """A cell that must hold text (a question, an answer, an id): text or a number, cleaned; a list, a mapping or a
    true/false is a one-line error naming the row."""
    if isinstance(value, (list, dict, bool, bytes)):
        raise UserError(source, f"row {row_number}: {column} is a {type(value).__name__}, not text")
    return clean_text(value)


def normalise(text: str) -> str:
    """The key two texts share when they say the same thing (case, punctuation, spacing aside)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def source_name(source: str) -> str:
    """What a file's rows are called where it has no `source` column: the file's name without its suffixes."""
    name = Path(str(source)).name
    return name.split(".")[0] if not looks_like_hub_id(str(source)) else str(source)


def _find_column(table: Table, name: str) -> str | None:
    found = [c for c in table.columns if c.strip().lower() == name]
    if len(found) > 1:
        raise UserError(table.source, f"several {name!r} columns: {', '.join(found)}")
    return found[0] if found else None


@dataclass
class Cleaned:
    rows: list[dict]
    dropped: Counter
    columns: dict


def _references(table: Table, value, row_number: int) -> list[str]:
    """A cell holding several reference answers: a JSON list of strings (or a single string)."""
    if isinstance(value, list):
        items = value
    else:
        try:
            items = json.loads(value) if value else []
        except (TypeError, ValueError, RecursionError):
            items = [value]
    if not isinstance(items, list):
        raise UserError(table.source, f"row {row_number}: references must be a JSON list of answers")
    return [text for item in items if (text := clean_text(item))]


def _statements(source, column: str, value, row_number: int, dropped: Counter) -> list[str] | None:
    """A cell of statements: a JSON list of strings (a list as JSONL gives it, or its JSON text in a CSV cell); None
    where the cell or the list is empty (K-QA gives `nice_to_have: []`): a row without statements is scored on
    everything else. An empty statement (K-QA has one) is left out and counted in `dropped`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    items = value
    if isinstance(value, str):
        items = parse_json(value, source, f"row {row_number}: {column}: ")
    if not isinstance(items, list):
        raise UserError(source, f"row {row_number}: {column} must be a list of statements, got {type(items).__name__}")
    if not items:
        return None
    out = []
    for k, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise UserError(source, f"row {row_number}: {column} statement {k} is a {type(item).__name__}, not text")
        text = clean_text(item)
        if not text:
            dropped[f"empty {column} statement"] += 1
            continue
        if len(text.split()) > MAX_STATEMENT_WORDS:
            raise UserError(
                source,
                f"row {row_number}: {column} statement {k} has {len(text.split())} words (a statement is one claim, "
                f"at most {MAX_STATEMENT_WORDS})",
            )
        out.append(text)
    return out or None


def statements(table: Table, raw: dict, row_number: int, dropped: Counter) -> dict:
    """A raw row's statements, by column (STATEMENTS), where it has them; empty statements counted in `dropped`."""
    found = {}
    for name in STATEMENTS:
        column = _find_column(table, name)
        if column is not None and (items := _statements(table.source, name, raw.get(column), row_number, dropped)):
            found[name] = items
    return found


def clean(table: Table, split_column: str | None = None, references_column: str | None = None) -> Cleaned:
    """Rows `{"id", "question", "answer", "group", "source"}` (with `split` where `split_column` names the split of
    each row, and `references` where `references_column` holds several reference answers); every dropped row is
    counted by reason."""
    q_col, a_col = _find_column(table, "question"), _find_column(table, "answer")
    text_col = _find_column(table, "text")
    if not (q_col and a_col) and not text_col:
        raise UserError(
            table.source,
            "no question/answer columns (nor a seed-format 'text' column); "
            f"found: {', '.join(table.columns) or 'none'}",
        )
    group_col = next((c for g in GROUP_COLUMNS if (c := _find_column(table, g))), None)
    source_col = _find_column(table, "source")
    split_col = _find_column(table, split_column) if split_column else None
    refs_col = _find_column(table, references_column) if references_column else None
    for asked, found in ((split_column, split_col), (references_column, refs_col)):
        if asked and not found:
            raise UserError(table.source, f"no {asked!r} column; found: {', '.join(table.columns)}")
    default_source = source_name(table.source)
    dropped, seen, rows = Counter(), set(), []
    for i, raw in enumerate(table.rows, 1):
        if q_col and a_col:
            question = cell_text(table.source, raw.get(q_col), q_col, i)
            answer = cell_text(table.source, raw.get(a_col), a_col, i)
        else:
            match = SEED_TEXT.match(str(raw.get(text_col) or ""))
            if not match:
                dropped["text not in the seed [INST] format"] += 1
                continue
            question, answer = clean_text(match["q"]), clean_text(match["a"])
        if not question:
            dropped["empty question"] += 1
            continue
        if not answer:
            dropped["empty answer"] += 1
            continue
        if (question, answer) in seen:
            dropped["duplicate row"] += 1
            continue
        seen.add((question, answer))
        row = {
            "id": f"row-{i}",
            "question": question,
            "answer": answer,
            "group": cell_text(table.source, raw.get(group_col), group_col, i) if group_col else "",
            "source": cell_text(table.source, raw.get(source_col), source_col, i) if source_col else default_source,
            **statements(table, raw, i, dropped),
        }
        if split_col:
            name = SPLIT_NAMES.get(cell_text(table.source, raw.get(split_col), split_col, i).lower())
            if name is None:
                raise UserError(table.source, f"row {i}: split {raw.get(split_col)!r} is not train, validation or test")
            row["split"] = name
        if refs_col:
            row["references"] = _references(table, raw.get(refs_col), i) or [answer]
        rows.append(row)
    if not rows:
        reasons = ", ".join(f"{n} {r}" for r, n in dropped.items())
        raise UserError(table.source, f"no usable rows ({reasons})")
    columns = {
        "question": q_col,
        "answer": a_col,
        "text": None if q_col and a_col else text_col,
        "group": group_col,
        "source": source_col,
        **({"split": split_col} if split_col else {}),
        **({"references": refs_col} if refs_col else {}),
        **{name: c for name in STATEMENTS if (c := _find_column(table, name))},
    }
    return Cleaned(rows, dropped, columns)


# --------------------------------------------------------------------------- splitting


TWIN_JACCARD = 0.6  # people's questions this alike are one question sent twice (LiveQA-Med has 40 such pairs)


def question_twins(rows: list[dict]) -> list[tuple[int, int]]:
    """Pairs of rows (indices) whose questions are one question sent twice: the same words (case and punctuation
    aside), or sets of words that overlap by TWIN_JACCARD or more (Jaccard), as in LiveQA-Med, where a message comes
    back with a subject line added or a word changed. For people's messages only: MedQuAD's templated questions
    ("What are the symptoms of X ?") share most of their words across diseases."""
    words = [frozenset(normalise(r["question"]).split()) for r in rows]
    first: dict[frozenset, int] = {}
    for i, w in enumerate(words):
        first.setdefault(w, i)
    pairs = [(i, first[w]) for i, w in enumerate(words) if first[w] != i]
    distinct = list(first.items())
    for a, (wa, ia) in enumerate(distinct):
        for wb, ib in distinct[a + 1 :]:
            if wa and wb and len(wa & wb) >= TWIN_JACCARD * len(wa | wb):
                pairs.append((ia, ib))
    return pairs


def components(n: int, edges) -> list[list[int]]:
    """The connected components of n items joined by `edges` (pairs of indices), each in order, by its first."""
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in edges:
        parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def _shared_keys(rows: list[dict], key) -> list[tuple[int, int]]:
    """Pairs joining each row to the first row with the same key(s)."""
    first: dict = {}
    return [(i, first.setdefault(k, i)) for i, row in enumerate(rows) for k in key(row)]


def leakage_groups(rows: list[dict], twins: bool = False) -> list[list[int]]:
    """Connected components of rows sharing a normalised question, a normalised answer or a document (and, with
    `twins`, of rows whose questions are twins: question_twins)."""

    def keys(row):
        return [("q", normalise(row["question"])), ("a", normalise(row["answer"]))] + (
            [("d", row["group"])] if row["group"] else []
        )

    return components(len(rows), _shared_keys(rows, keys) + (question_twins(rows) if twins else []))


def split(
    rows: list[dict], val_fraction: float, test_fraction: float, seed: int, twins: bool = False
) -> dict[str, list[dict]]:
    """Whole leakage groups, in seeded order, fill test, then val, up to their share of the rows; a group
    too large for the room left in either (MedQuAD has one of 2,000 rows) goes to train."""
    groups = leakage_groups(rows, twins)
    random.Random(seed).shuffle(groups)
    want = {"test": round(test_fraction * len(rows)), "val": round(val_fraction * len(rows))}
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    for group in groups:
        target = next((s for s in ("test", "val") if len(parts[s]) + len(group) <= want[s]), "train")
        parts[target].extend(group)
    return {s: [rows[i] for i in sorted(idx)] for s, idx in parts.items()}


def one_row_per_question(rows: list[dict], twins: bool = False) -> list[dict]:
    """Held-out rows of one question (the same question, or with `twins` its twin) as one row, its answers as its
    `references` (the first also as `answer`), in the order of first appearance: a question answered by several
    rows is asked once and scored against the best of its answers, instead of counting once per answer."""
    edges = _shared_keys(rows, lambda row: [normalise(row["question"])]) + (question_twins(rows) if twins else [])
    merged = []
    for group in components(len(rows), edges):
        refs = list(dict.fromkeys(a for i in group for a in rows[i].get("references") or [rows[i]["answer"]]))
        merged.append({**rows[group[0]], "references": refs})
    return merged


def limit_rows(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    if limit is None or len(rows) <= limit:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


# --------------------------------------------------------------------------- writing


def by_source(parts: dict[str, list[dict]]) -> dict:
    """Rows per split for each source."""
    sources = sorted({r["source"] for rows in parts.values() for r in rows})
    return {src: {s: sum(r["source"] == src for r in parts[s]) for s in SPLITS} for src in sources}


def described(source, table: Table, name, license) -> dict:
    """A manifest's first keys: the data's name and licence (for model cards), and what was read."""
    return {"name": name, "license": license, "input": str(source), "input_kind": table.kind, "sha256": table.sha256}


def prepare(
    source,
    out: Path,
    limit=None,
    seed=SEED,
    val_fraction=0.05,
    test_fraction=0.1,
    name=None,
    license=None,
    keep: tuple[str, ...] = (),
    split_column: str | None = None,
    references_column: str | None = None,
    twins: bool = False,
    merge_references: bool = False,
    answer_words: int | None = None,
) -> dict:
    """Read, clean, split and write `out/{train,val,test}.jsonl` and `out/manifest.json` atomically. Rows are
    {"id", "question", "answer", "group", "source", "messages"} (+ "references", "answer_original"); `name` and
    `license` (of the data) go into the manifest, for model cards.

    The split comes first (by leakage group, or from `split_column`), then medqa.cleaning's rules, all but those
    in `keep`, clean the training answers; validation and test answers are references and stay as published.
    Every change and every dropped row is counted by rule and source in the manifest. `twins`: people's questions
    sent twice (question_twins) stay in one split; `merge_references`: a held-out question answered by several
    rows becomes one row with every answer as a reference (one_row_per_question); `answer_words`: the long_answer
    rule's budget (default: off)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UserError("options", "--val-fraction and --test-fraction must be in [0, 1) and sum below 1")
    if limit is not None and limit < 1:
        raise UserError("options", "--limit must be a positive number of training rows")
    unknown = sorted(set(keep) - set(cleaning.RULES))
    if unknown:
        raise UserError("--keep", f"no cleaning rule {', '.join(unknown)} (rules: {', '.join(cleaning.RULES)})")
    if answer_words is not None and answer_words < 1:
        raise UserError("--answer-words", f"must be 1 or more, got {answer_words}")
    table = read_table(source)
    cleaned = clean(table, split_column, references_column)
    if split_column:
        parts = {s: [r for r in cleaned.rows if r["split"] == s] for s in SPLITS}
        fractions = {s: 1.0 if parts[s] else 0.0 for s in ("val", "test")}
    else:
        parts = split(cleaned.rows, val_fraction, test_fraction, seed, twins)
        fractions = {"val": val_fraction, "test": test_fraction}
    rules = [r for r in cleaning.RULES if r not in keep]
    cleaning_counts = {}
    words = answer_words or cleaning.ANSWER_WORDS
    parts["train"], cleaning_counts = cleaning.apply(parts["train"], rules, lambda row: row["source"], words)
    held_out_rows = {s: len(parts[s]) for s in ("val", "test")}
    if merge_references:
        parts["val"], parts["test"] = (one_row_per_question(parts[s], twins) for s in ("val", "test"))
    unused = len(parts["train"])
    parts["train"] = limit_rows(parts["train"], limit, seed)
    unused -= len(parts["train"])
    if not parts["train"]:
        raise UserError(source, f"no rows left for training after the split ({len(cleaned.rows)} usable rows)")
    empty = [name for name, fraction in fractions.items() if fraction > 0 and not parts[name]]
    if empty:
        raise UserError(
            source,
            f"the {' and '.join(empty)} split{'s' if len(empty) > 1 else ''} came out empty ({len(cleaned.rows)} "
            "usable rows; a source document's rows stay together): give more rows, or a larger "
            + " / ".join(f"--{name}-fraction" for name in empty),
        )
    manifest = {
        **described(source, table, name, license),
        "columns": cleaned.columns,
        "options": {
            "limit": limit,
            "seed": seed,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "split_column": split_column,
            "references_column": references_column,
            "twins": twins,
            "merge_references": merge_references,
        },
        "rows": {
            "read": len(table.rows),
            "kept": len(cleaned.rows),
            **{s: len(parts[s]) for s in SPLITS},
            "train_unused_by_limit": unused,
            **({"held_out_answers": held_out_rows} if merge_references else {}),
        },
        "dropped": dict(sorted(cleaned.dropped.items())),
        "cleaning": {
            "rules": rules,
            "off": list(keep),
            "split": "train",
            "counts": cleaning_counts,
            **({"answer_words": words} if "long_answer" in rules and words else {}),
        },
        "sources": by_source(parts),
    }
    with atomic_dir(Path(out)) as tmp:
        for split_name in SPLITS:
            with open(tmp / f"{split_name}.jsonl", "w", encoding="utf-8") as f:
                for row in parts[split_name]:
                    row = {k: v for k, v in row.items() if k != "split"}
                    conversation = messages(row["question"], row["answer"])  # what Axolotl's chat_template type reads
                    f.write(json.dumps({**row, "messages": conversation}, ensure_ascii=False) + "\n")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def prepare_questions(source, out: Path, split: str = "val", name=None, license=None) -> dict:
    """Questions held out whole, for evaluation only: K-QA's patients' questions (no answers: the measures that need
    no reference, how an answer ends, loops, its shape, coverage of the question) or its physician-answered ones
    (the physician's answer as the reference, and the `must_have` / `nice_to_have` statements). `out/{split}.jsonl`
    rows {"id", "question", "answer" (the reference, or ""), "source"} (+ the statements) and `out/manifest.json`,
    atomically. Empty and repeated questions are dropped and counted."""
    if split not in SPLITS:
        raise UserError("--questions-only", f"a split is one of {', '.join(SPLITS)}, got {split!r}")
    table = read_table(source)
    q_col, a_col, id_col = (_find_column(table, c) for c in ("question", "answer", "id"))
    if not q_col:
        raise UserError(table.source, f"no question column; found: {', '.join(table.columns) or 'none'}")
    default_source = source_name(table.source)
    dropped, seen, rows = Counter(), set(), []
    for i, raw in enumerate(table.rows, 1):
        question = cell_text(table.source, raw.get(q_col), q_col, i)
        if not question:
            dropped["empty question"] += 1
            continue
        if normalise(question) in seen:
            dropped["repeated question"] += 1
            continue
        seen.add(normalise(question))
        row_id = cell_text(table.source, raw.get(id_col), id_col, i) if id_col else ""
        answer = cell_text(table.source, raw.get(a_col), a_col, i) if a_col else ""
        rows.append({"id": row_id or f"{default_source}-{i}", "question": question, "answer": answer,
                     "source": default_source, **statements(table, raw, i, dropped)})  # fmt: skip
    if not rows:
        raise UserError(table.source, "no questions")
    with_statements = sum("must_have" in r for r in rows)
    manifest = {
        **described(source, table, name, license),
        "held_out": split,
        "rows": {
            "read": len(table.rows),
            "kept": len(rows),
            split: len(rows),
            "with_answer": sum(bool(r["answer"]) for r in rows),
            "with_must_have": with_statements,
        },
        "dropped": dict(sorted(dropped.items())),
    }
    with atomic_dir(Path(out)) as tmp:
        with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def write_seed_text(folder: Path) -> dict[str, int]:
    """A prepared folder's train and val rows as the seed notebook's single `text` column (FOLDER/train_text.jsonl,
    val_text.jsonl), for Axolotl's `type: completion`: the rows plain Axolotl's baseline and the seed's bench train
    on. Returns the rows written a split."""
    template, written = prompts.SEED_TEXT.read_text(), {}
    for split in ("train", "val"):
        rows = read_jsonl(Path(folder) / f"{split}.jsonl")
        text = "".join(
            json.dumps({"id": r["id"], "text": prompts.render(template, r["question"], r["answer"], eos_token="")},
                       ensure_ascii=False) + "\n"
            for r in rows
        )  # fmt: skip
        atomic_write_text(Path(folder) / f"{split}_text.jsonl", text)
        written[split] = len(rows)
    return written


def read_jsonl(path: Path) -> list[dict]:
    """Read a prepared split (or predictions); a broken file is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "no such file")
    text = _decode(path, path.read_bytes())
    rows, _ = _read_jsonl(path, text)
    return rows
