"""Generated bad input, every reader (hypothesis): data files for make data's reader, recipes for make plan, predictions
and references for the scorer, damaged run folders for ask, merge, eval, gguf and dpo, lever specs for the lever
runner. Each case runs the command in this process, as make runs it (its main() with the same wrapper), and must
keep the contract in fuzzing.py. `make test` tries 40 cases a reader; `make fuzz` a thousand and writes
docs/robustness.md. Failing examples hypothesis found are kept as plain regression tests at the end."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, run_main
from fuzzing import PROFILE, keeps_contract
from hypothesis import given, settings
from hypothesis import strategies as st

settings.load_profile(PROFILE)
pytestmark = pytest.mark.fuzz

# --------------------------------------------------------------------------- values

TEXT = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=("Cs",)), min_size=0, max_size=40
)
WORDS = st.lists(st.sampled_from("what causes gout how is it treated the pain in my knee , . ? \" ' ; : - 1 2".split()),
                 min_size=0, max_size=25).map(" ".join)  # fmt: skip
CELL = st.one_of(TEXT, WORDS, st.just(""), st.sampled_from(['"', '""', "\n", "\r\n", "\x00", "NaN", "null", "[]"]))
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT, WORDS)
JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)  # fmt: skip
COLUMNS = ["question", "answer", "Question", "ANSWER", "text", "document_id", "focus", "source", "split", "id",
           "answers", "must_have", "nice_to_have"]  # fmt: skip
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252", "utf-32"]
CHANCE = st.floats(0, 1)  # hypothesis leans to 0.0: `draw(CHANCE) > 0.8` is a change that comes now and then


def good_rows(n):
    return [{"question": f"What causes condition {i} ?", "answer": f"Condition {i} is caused by gene G{i}. It is rare.",
             "document_id": f"doc{i}"} for i in range(n)]  # fmt: skip


@st.composite
def table_rows(draw):
    """Rows of a table: a Q/A file's columns, some changed, taken away or added, with a few values of any kind."""
    columns = ["question", "answer", "document_id"]
    for _ in range(draw(st.integers(0, 2))):
        change = draw(st.sampled_from(["drop", "add", "rename"]))
        if change == "drop" and columns:
            columns.remove(draw(st.sampled_from(columns)))
        elif change == "add":
            columns.append(draw(st.sampled_from(COLUMNS)))
        elif columns:
            at = draw(st.integers(0, len(columns) - 1))
            columns[at] = draw(st.one_of(st.sampled_from(COLUMNS), TEXT))
    n = draw(st.integers(0, 40))
    base = good_rows(n)
    odd = draw(st.sampled_from([0, 0, 0.02, 0.1, 0.5]))  # the share of cells of any value
    rows = []
    for i in range(n):
        row = {}
        for k, c in enumerate(columns):
            value = base[i].get(c)
            if value is None and c in ("must_have", "nice_to_have"):
                value = ["A statement about it."]
            if value is None or (odd and draw(st.floats(0, 1)) < odd):
                value = draw(st.one_of(CELL, JSON))
            row[f"{k}:{c}"] = value
        rows.append(row)
    return columns, rows


@st.composite
def data_files(draw):
    """(name, bytes) of a data file: CSV, TSV, JSONL, gzip or parquet, well formed or not, in any encoding."""
    kinds = ["csv"] * 4 + ["tsv", "jsonl", "jsonl", "gz", "parquet", "bytes", "deep", "huge", "empty"]
    kind = draw(st.sampled_from(kinds))
    columns, rows = draw(table_rows())
    if kind == "bytes":
        suffix = draw(st.sampled_from([".csv", ".jsonl", ".tsv", ".csv.gz", ".parquet", ".txt", ""]))
        return "data" + suffix, draw(st.binary(max_size=400))
    if kind == "deep":
        depth = draw(st.integers(100, 20000))
        line = draw(st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                                     '{"question": ' + "[" * depth + "]" * depth + ', "answer": "x"}']))  # fmt: skip
        return "deep.jsonl", line.encode()
    if kind == "empty":
        return draw(st.sampled_from(["empty.csv", "empty.jsonl", "header.csv"])), draw(
            st.sampled_from([b"", b"\n\n", b"question,answer\n", b"\xef\xbb\xbf", b"   "])
        )
    if kind == "huge":
        rows = good_rows(3) + [{"question": "What is gout?", "answer": "x" * draw(st.integers(1, 3)) * 2_000_000}]
        columns = ["question", "answer"]
        kind = "csv"
    if kind in ("csv", "tsv", "gz"):
        out = io.StringIO()
        sep = "\t" if kind == "tsv" else draw(st.sampled_from([",", ",", ";", "|"]))
        writer = csv.writer(
            out,
            delimiter=sep,
            quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_NONE, csv.QUOTE_ALL])),  # fmt: skip
            escapechar="\\",
            lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])),
        )
        try:
            writer.writerow(columns)
            for row in rows:
                writer.writerow([json.dumps(v) if not isinstance(v, str) else v for v in row.values()])
        except csv.Error:
            pass  # what was written so far: a file cut short
        text = out.getvalue()
        if draw(CHANCE) > 0.8:  # broken quoting: a stray quote somewhere
            at = draw(st.integers(0, len(text)))
            text = text[:at] + '"' + text[at:]
        raw = text.encode(draw(st.sampled_from(ENCODINGS[:1] * 4 + ENCODINGS)), errors="replace")
        if kind == "gz":
            raw = gzip.compress(raw)
            if draw(st.booleans()):
                raw = raw[: draw(st.integers(2, max(2, len(raw))))]  # cut short
            return "data.csv.gz", raw
        return ("data.tsv" if kind == "tsv" else "data.csv"), raw
    if kind == "jsonl":
        lines = [json.dumps({k.split(":", 1)[1]: v for k, v in row.items()} if draw(st.integers(0, 9)) else draw(JSON),
                            ensure_ascii=draw(st.booleans())) for row in rows]  # fmt: skip
        if draw(CHANCE) > 0.8 and lines:
            at = draw(st.integers(0, len(lines) - 1))
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]  # a line cut short
        return "data.jsonl", "\n".join(lines).encode(draw(st.sampled_from(ENCODINGS[:1] * 4 + ENCODINGS)), "replace")
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    names = list(dict.fromkeys(columns))
    values = {c: [v if isinstance(v := r[f"{columns.index(c)}:{c}"], str) else json.dumps(v) for r in rows]
              for c in names}  # fmt: skip
    pq.write_table(pa.table(values) if names else pa.table({"x": pa.array([], pa.string())}), buffer)
    raw = buffer.getvalue()
    if draw(CHANCE) > 0.8:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return "data.parquet", raw


SPLIT = ["--val-fraction", "0.2", "--test-fraction", "0.2"]  # a few dozen rows still fill every split
PREPARE_OPTIONS = st.sampled_from(
    [SPLIT, [], ["--questions-only", "val"], ["--split-column", "split"], [*SPLIT, "--references-column", "answers"],
     [*SPLIT, "--twins", "--merge-references"], [*SPLIT, "--limit", "3"], [*SPLIT, "--keep", "all"],
     [*SPLIT, "--answer-words", "5"]]
)  # fmt: skip


def prepared_whole(outputs) -> bool:
    out = Path(outputs[0])
    manifest = json.loads((out / "manifest.json").read_text())
    splits = [manifest["held_out"]] if manifest.get("held_out") else ["train", "val", "test"]
    for split in splits:
        for line in (out / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            assert isinstance(row["question"], str) and row["question"]
    return True


@given(data_files(), PREPARE_OPTIONS, CHANCE)
def test_data_files(file, options, chance):
    as_folder = chance > 0.95
    name, raw = file
    work = Path(tempfile.mkdtemp(prefix="fuzz-data-"))
    try:
        path = work / name
        if as_folder:  # a folder where a file is expected
            path.mkdir()
        else:
            path.write_bytes(raw)
        out = work / "out"
        result = run_main("scripts/prepare_data.py", path, "--out", out, *options)
        keeps_contract("data file (make data, scripts/prepare_data.py)", result, [out], [str(path)], prepared_whole,
                       work)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- recipes (make plan)

WRONG = st.one_of(JSON_LEAF, st.lists(JSON_LEAF, max_size=3), st.dictionaries(WORDS, JSON_LEAF, max_size=3),
                  st.sampled_from([-1, 0, 10**30, 1e308, -0.0, "", "auto", "none", [], {}]))  # fmt: skip
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
TAGS = ["!!python/object/apply:os.system ['true']", "!!binary aGVsbG8=", "!!set {a, b}", "!!timestamp 2026-12-07",
        "!custom value", "!!float nope", "!!int 1.5", "!!omap [a: 1]", "!!str", "!!null x"]  # fmt: skip


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from conftest import EMBEDDED_MODEL, prepare_demo_data
    from fuzzing import small_model

    root = tmp_path_factory.mktemp("fuzz-small")
    return small_model(root / "model", EMBEDDED_MODEL), prepare_demo_data(root / "data")


def base_recipe(model: Path, data: Path) -> dict:
    import yaml

    cfg = yaml.safe_load((REPO / "recipes/smollm2-135m/qlora.yml").read_text())
    cfg["base_model"] = str(model)
    cfg["datasets"] = [{**cfg["datasets"][0], "path": str(data / "train.jsonl")}]
    cfg["test_datasets"] = [{**cfg["test_datasets"][0], "path": str(data / "val.jsonl")}]
    cfg["chat_template_jinja"] = str(REPO / cfg["chat_template_jinja"])
    return cfg


@st.composite
def recipe_texts(draw, cfg: dict):
    """A recipe's text: the base recipe, or with a key removed, given a value of another type (at the top or in a
    dataset entry), a key it does not know, a path that is not there, a YAML tag, an alias bomb or broken syntax."""
    import yaml

    cfg = json.loads(json.dumps(cfg))
    change = draw(st.sampled_from(["none", "remove", "wrong", "wrong", "dataset", "unknown", "path", "tag", "bomb",
                                   "syntax", "top"]))  # fmt: skip
    key = draw(st.sampled_from(sorted(cfg)))
    if change == "remove":
        cfg.pop(key)
    elif change == "wrong":
        cfg[key] = draw(WRONG)
    elif change == "dataset":
        entry = cfg["datasets"][0]
        entry[draw(st.sampled_from(sorted(entry) + ["split", "name", "type"]))] = draw(WRONG)
    elif change == "unknown":
        cfg[draw(WORDS) or "x"] = draw(WRONG)
    elif change == "path":
        target = draw(st.sampled_from(["base_model", "datasets", "chat_template_jinja", "test_datasets"]))
        missing = "/nonexistent/" + draw(st.text("abc/", min_size=1, max_size=8))
        if target in ("datasets", "test_datasets"):
            cfg[target][0]["path"] = missing
        else:
            cfg[target] = missing
    text = yaml.safe_dump(cfg, sort_keys=False)
    if change == "tag":
        text += f"{draw(st.sampled_from(sorted(cfg)))}: {draw(st.sampled_from(TAGS))}\n"
    elif change == "bomb":
        text = BOMB + text
    elif change == "syntax":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", ":", "\t", "- ", "[", "{", "'", '"', "&a", "*a", "\x00",
                                                 "\n  bad: [", "%YAML 9\n---\n"])) + text[at:]  # fmt: skip
        text = text[: draw(st.integers(0, len(text)))] if draw(CHANCE) > 0.5 else text
    elif change == "top":
        text = yaml.safe_dump(draw(st.one_of(JSON_LEAF, st.lists(JSON_LEAF, max_size=3))))
    return text


@given(st.data())
def test_recipes(small, data):
    model, prepared = small
    work = Path(tempfile.mkdtemp(prefix="fuzz-recipe-"))
    try:
        recipe = work / "recipe.yml"
        recipe.write_text(data.draw(recipe_texts(base_recipe(model, prepared))), encoding="utf-8", errors="replace")
        result = run_main("scripts/plan.py", recipe)
        names = [str(recipe), "/nonexistent/", str(model), str(prepared)]
        keeps_contract("recipe (make plan, scripts/plan.py)", result, [], names, work=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
