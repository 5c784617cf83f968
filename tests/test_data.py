"""The data converter: every input kind, bad input, cleaning counts, leakage, determinism, manifest."""

import csv
import gzip
import json
import re

import pytest
from conftest import REPO, run_script

from medqa.data import normalise, prepare

SAMPLE = REPO / "data" / "sample" / "medqa_demo.csv"


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def qa_rows(n, start=0):
    return [(f"What is condition {i}?", f"Condition {i} is made-up illness {i}.") for i in range(start, start + n)]


def read_split(out, name):
    return [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]


def all_rows(out):
    return {s: read_split(out, s) for s in ("train", "val", "test")}


# ---------------------------------------------------------------- input kinds


def test_csv_case_insensitive_columns_and_extra_columns(tmp_path):
    src = write_csv(
        tmp_path / "in.csv",
        ["Id", "Question", "ANSWER", "notes"],
        [(i, q, a, "x") for i, (q, a) in enumerate(qa_rows(20))],
    )
    m = prepare(src, tmp_path / "out", seed=1)
    assert m["columns"]["question"] == "Question" and m["columns"]["answer"] == "ANSWER"
    rows = all_rows(tmp_path / "out")
    assert sum(len(r) for r in rows.values()) == 20
    row = rows["train"][0]
    assert set(row) == {"id", "question", "answer", "group", "source", "messages"}
    assert row["source"] == "in"  # no source column: the file's name
    assert row["messages"] == [
        {"role": "user", "content": row["question"]},
        {"role": "assistant", "content": row["answer"]},
    ]


def test_csv_gz_and_jsonl_give_the_same_rows_as_csv(tmp_path):
    rows = qa_rows(30)
    write_csv(tmp_path / "a.csv", ["question", "answer"], rows)
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress((tmp_path / "a.csv").read_bytes()))
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in rows))
    outs = []
    for name in ("a.csv", "b.csv.gz", "c.jsonl"):
        prepare(tmp_path / name, tmp_path / f"out-{name}", seed=3)
        rows_of = all_rows(tmp_path / f"out-{name}")
        assert {r["source"] for split in rows_of.values() for r in split} == {name[0]}  # no source column
        outs.append({s: [{k: v for k, v in r.items() if k != "source"} for r in split] for s, split in rows_of.items()})
    assert outs[0] == outs[1] == outs[2]


def test_seed_notebook_text_column(tmp_path):
    text = "<s>[INST] <<SYS>> Answer the Question <</SYS>> {q} [/INST] {a} </s>"
    rows = [[text.format(q=q, a=a)] for q, a in qa_rows(10)] + [["just some text"]]
    src = write_csv(tmp_path / "seed.csv", ["text"], rows)
    m = prepare(src, tmp_path / "out", seed=0, val_fraction=0, test_fraction=0)
    train = read_split(tmp_path / "out", "train")
    assert [(r["question"], r["answer"]) for r in train] == qa_rows(10)
    assert m["dropped"] == {"text not in the seed [INST] format": 1}


def test_cleaning_collapses_whitespace_and_counts_drops(tmp_path):
    rows = [
        ("  What   is\n a cold? ", "A  mild\t\tviral infection.  "),
        ("What is a cold?", "A mild viral infection."),  # duplicate once cleaned
        ("", "An answer without a question."),
        ("A question without an answer?", "   "),
        ("NaN", "x"),
        ("What is flu?", "A viral infection of the lungs."),
    ]
    src = write_csv(tmp_path / "in.csv", ["question", "answer"], rows)
    m = prepare(src, tmp_path / "out", val_fraction=0, test_fraction=0)
    train = read_split(tmp_path / "out", "train")
    assert [(r["question"], r["answer"]) for r in train] == [
        ("What is a cold?", "A mild viral infection."),
        ("What is flu?", "A viral infection of the lungs."),
    ]
    assert m["dropped"] == {"duplicate row": 1, "empty question": 2, "empty answer": 1}
    assert m["rows"]["read"] == 6 and m["rows"]["kept"] == 2


# ---------------------------------------------------------------- bad input


BAD_INPUTS = {
    "empty.csv": (b"", "empty file"),
    "header.csv": (b"question,answer\n", "no data rows"),
    "nocols.csv": (b"foo,bar\n1,2\n", "no question/answer columns"),
    "binary.csv": (bytes(range(256)) * 4, "binary data"),
    "latin1.csv": (
        "question,answer\nQu'est-ce que la fièvre?,Une température élevée.\n".encode("latin-1"),
        "not UTF-8",
    ),
    "quoting.csv": (b'question,answer\nWhat is it?,"an unterminated answer\nthat never ends\n', "malformed CSV"),
    "stray_quote.csv": (b'question,answer\nWhat is it?,"quoted" then more\n', "malformed CSV: line 2"),
    "fields.csv": (b"question,answer\nWhat is it?,An answer,extra\n", "line 2 has 3 fields"),
    "bad.jsonl": (b'{"question": "q", "answer": "a"}\n{"question": \n', "line 2: not valid JSON"),
    "list.jsonl": (b"[1, 2]\n", "line 1: expected a JSON object"),
    "gzip.csv.gz": (b"\x1f\x8b\x08\x00broken", "broken gzip"),
    "three.csv": (b"question,answer\nq1?,a1\nq2?,a2\nq3?,a3\n", "the val and test splits came out empty"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, name):
    content, problem = BAD_INPUTS[name]
    src = tmp_path / name
    src.write_bytes(content)
    out = tmp_path / "out"
    result = run_script("scripts/prepare_data.py", src, "--out", out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {src}: ") and problem in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [name]


def test_missing_file_and_unreachable_hub_id(tmp_path):
    (tmp_path / "data").mkdir()
    cases = (
        (tmp_path / "nope.csv", "no such file"),
        ("data/medquad.csv", "no such file"),  # one slash, but a file name: a local path, mistyped
        ("no-such-org/no-such-dataset", "HF_HUB_OFFLINE=1"),  # a hub id, with the hub off
    )
    for source, problem in cases:
        result = run_script(REPO / "scripts" / "prepare_data.py", source, "--out", tmp_path / "out", cwd=tmp_path)
        assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert ("hub" in result.stderr) == (problem != "no such file")  # a mistyped path is not sent to the hub


def test_a_header_typed_with_spaces_is_read(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("question, answer\nWhat is flu?, A viral infection.\nWhat is a cold?, A mild viral infection.\n")
    prepare(path, tmp_path / "out", val_fraction=0, test_fraction=0)
    rows = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert sorted(r["answer"] for r in rows) == ["A mild viral infection.", "A viral infection."]


def test_failed_run_keeps_the_previous_output_whole(tmp_path):
    out = tmp_path / "out"
    prepare(SAMPLE, out, val_fraction=0.1, test_fraction=0.1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (tmp_path / "empty.csv").write_bytes(b"")
    assert run_script("scripts/prepare_data.py", tmp_path / "empty.csv", "--out", out).returncode == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ---------------------------------------------------------------- splitting


def assert_no_leakage(splits):
    keys = {}
    for name, rows in splits.items():
        for r in rows:
            for key in (("q", normalise(r["question"])), ("a", normalise(r["answer"])), ("g", r["group"])):
                if key == ("g", ""):
                    continue
                assert keys.setdefault(key, name) == name, f"{key} in {keys[key]} and {name}"


def test_shared_answers_questions_and_documents_stay_in_one_split(tmp_path):
    rows = []
    for i in range(40):
        rows.append((f"What is disease {i}?", f"Disease {i} is rare.", f"doc{i}"))
        rows.append((f"What causes disease {i}?", f"Genes cause disease {i}.", f"doc{i}"))  # same document
        rows.append((f"what is DISEASE {i} ?", f"Another text about {i}.", f"other{i}"))  # same question
        rows.append((f"How common is disease {i}?", f"disease {i} is RARE", f"third{i}"))  # same answer
    src = write_csv(tmp_path / "in.csv", ["question", "answer", "document_id"], rows)
    prepare(src, tmp_path / "out", seed=5, val_fraction=0.2, test_fraction=0.2)
    splits = all_rows(tmp_path / "out")
    assert all(len(splits[s]) > 0 for s in splits)
    assert_no_leakage(splits)
    assert all(len(v) % 4 == 0 for v in splits.values())  # each disease's 4 rows moved together


def test_medquad_split_has_no_leakage_and_reproduces_the_5000_row_size(tmp_path, medquad):
    m = prepare(medquad, tmp_path / "out", limit=5000, seed=42)
    splits = all_rows(tmp_path / "out")
    assert len(splits["train"]) == 5000 == m["rows"]["train"]
    assert m["columns"]["group"] == "document_id"
    assert len(splits["test"]) >= 1000 and len(splits["val"]) >= 500
    assert_no_leakage(splits)
    assert m["rows"]["kept"] + sum(m["dropped"].values()) == m["rows"]["read"] == 15605


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        prepare(SAMPLE, tmp_path / name, seed=seed, val_fraction=0.2, test_fraction=0.2)
    files = ("train.jsonl", "val.jsonl", "test.jsonl")
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert any((tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files)


def test_manifest_records_input_options_counts(tmp_path):
    import hashlib

    m = prepare(SAMPLE, tmp_path / "out", limit=30, seed=9, val_fraction=0.1, test_fraction=0.1)
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == m
    assert m["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert m["options"] == {
        "limit": 30,
        "seed": 9,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "split_column": None,
        "references_column": None,
        "twins": False,
        "merge_references": False,
    }
    counts = {s: len(read_split(tmp_path / "out", s)) for s in ("train", "val", "test")}
    assert counts == {s: m["rows"][s] for s in counts} and counts["train"] == 30
    assert sum(counts.values()) + m["rows"]["train_unused_by_limit"] == m["rows"]["kept"] == 60


def test_a_very_long_answer_is_kept_whole(tmp_path):
    long_answer = "Iron deficiency anemia " * 15000  # 345,000 characters: beyond the csv module's default limit
    rows = [*qa_rows(19), ("What is a very long answer?", long_answer)]
    src = write_csv(tmp_path / "in.csv", ["question", "answer"], rows)
    prepare(src, tmp_path / "out", seed=1)
    kept = [
        r for split in all_rows(tmp_path / "out").values() for r in split if r["question"].startswith("What is a very")
    ]
    assert len(kept) == 1 and kept[0]["answer"] == long_answer.strip()


def test_twins_stay_in_one_split_and_a_held_out_question_is_one_row_with_every_answer(tmp_path):
    """People send one message twice (a subject line added, a word changed): with --twins both copies land in one
    split; with --merge-references a held-out question answered by several rows is one row, its answers its
    references."""
    import random

    rng, rows = random.Random(0), []
    words = [f"w{k}" for k in range(2000)]
    for i in range(30):
        message = f"number {i} " + " ".join(rng.sample(words, 12))  # a message of its own words
        rows.append((message, f"answer {i} a", f"doc-{i}"))
        rows.append((message, f"answer {i} b", f"doc-{i}"))  # a second answer to the same message
        rows.append((f"Rash. {message} please", f"answer {i} c", f"other-doc-{i}"))  # its twin, another document
    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer", "document_id"])
        w.writerows(rows)
    m = prepare(src, tmp_path / "out", seed=3, val_fraction=0.2, test_fraction=0.2, twins=True, merge_references=True)
    read = {s: [json.loads(x) for x in (tmp_path / "out" / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train", "val", "test")}  # fmt: skip
    number = re.compile(r"number (\d+) ")
    where = {s: {number.search(r["question"])[1] for r in read[s]} for s in read}
    assert not (where["train"] & where["val"]) and not (where["train"] & where["test"]) and where["test"]
    for row in read["test"] + read["val"]:
        i = number.search(row["question"])[1]
        assert sorted(row["references"]) == [f"answer {i} a", f"answer {i} b", f"answer {i} c"]
    assert m["rows"]["test"] == len(where["test"]) and m["rows"]["held_out_answers"]["test"] == 3 * len(where["test"])
    assert len(read["train"]) == 3 * len(where["train"])  # training keeps every answer as a row
    plain = prepare(src, tmp_path / "plain", seed=3, val_fraction=0.2, test_fraction=0.2)  # documents alone
    leaked = {s: {number.search(x)[1] for x in (tmp_path / "plain" / f"{s}.jsonl").read_text().splitlines()}
              for s in ("train", "test")}  # fmt: skip
    assert plain["options"]["twins"] is False and leaked["train"] & leaked["test"]  # without it, twins leak


def test_make_data_prepares_every_source_and_skips_people_s_sets_it_does_not_find(tmp_path, monkeypatch):
    """make data (scripts/data.py) where the shared data is not beside the checkout: the Q/A file given is prepared
    twice (the seed's rows uncleaned, every row cleaned) with the same held-out questions, each set of people's
    questions is skipped with a note, and one named that is not there is one line with nothing written."""
    from conftest import run_main

    demo = tmp_path / "qa.csv"
    with open(demo, "w", newline="") as f:
        csv.writer(f).writerows(
            [("question", "answer", "document_id")]
            + [
                (f"What is condition {i} ?", f"Condition {i} is a rare disorder of organ {i}.", str(i))
                for i in range(200)
            ]
        )
    monkeypatch.chdir(tmp_path)  # the library's default paths are relative to where make runs
    result = run_main(REPO / "scripts" / "data.py", "--input", demo, "--limit", "40")
    assert result.returncode == 0, result.stderr
    seed, every = (json.loads((tmp_path / "data" / d / "manifest.json").read_text()) for d in ("medqa", "medqa-all"))
    assert seed["rows"]["train"] == 40 and every["rows"]["train"] > 40 and seed["cleaning"]["rules"] == []
    assert (tmp_path / "data/medqa/test.jsonl").read_text() == (tmp_path / "data/medqa-all/test.jsonl").read_text()
    assert seed["name"] is None  # a file of the user's: no name or licence made up for it
    for title in ("TREC 2017 LiveQA-Med", "MEDIQA 2019 QA", "K-QA patients' questions"):
        assert f"skipped {title}: ../shared/data/consumer/" in result.stdout
    missing = run_main(REPO / "scripts" / "data.py", "--input", demo, "--kqa", tmp_path / "none.jsonl")
    assert missing.returncode == 2 and missing.stderr == f"error: {tmp_path / 'none.jsonl'}: no such file\n"
