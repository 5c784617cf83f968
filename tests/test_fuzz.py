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
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, run_main
from fuzzing import FUZZ, PROFILE, keeps_contract
from hypothesis import given, settings
from hypothesis import strategies as st

import medqa  # noqa: F401  (its quiet settings, as every command has them)

settings.load_profile(PROFILE)

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


def named_paths(text: str) -> list[str]:
    """The paths a recipe's text names (base model, template, datasets) as its YAML reads, where it reads."""
    import yaml

    from medqa.errors import one_line

    try:
        cfg = yaml.safe_load(text)
        entries = [d for key in ("datasets", "test_datasets") for d in (cfg.get(key) or []) if isinstance(d, dict)]
        paths = [cfg.get("chat_template_jinja"), *[d.get("path") for d in entries]]
        model = cfg.get("base_model")
    except Exception:  # not YAML, not a mapping, a list of something else: the error names the recipe itself
        return []
    hub_id = [f"{one_line(model)}: cannot load the base model"] if isinstance(model, str) else []  # `0`: a Hub id
    return [one_line(p) for p in [model, *paths] if isinstance(p, str) and "/" in p] + hub_id


@given(st.data())
def test_recipes(small, data):
    model, prepared = small
    work = Path(tempfile.mkdtemp(prefix="fuzz-recipe-"))
    try:
        recipe = work / "recipe.yml"
        text = data.draw(recipe_texts(base_recipe(model, prepared)))
        recipe.write_text(text, encoding="utf-8", errors="replace")
        result = run_main("scripts/plan.py", recipe)
        # the recipe, or a path it names (broken syntax may have changed one: `/:tmp/...`, `/- tmp/...`)
        names = [str(recipe), "/nonexistent/", str(model), str(prepared), *named_paths(text)]
        keeps_contract("recipe (make plan, scripts/plan.py)", result, [], names, work=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- predictions (eval/score.py)

PRED_FIELDS = ["id", "question", "reference", "prediction", "references", "must_have", "nice_to_have",
               "hit_max_new_tokens", "stop", "new_tokens"]  # fmt: skip


def good_predictions(n: int, seed: int) -> list[dict]:
    return [{"id": f"q{i}", "question": f"What causes condition {i}? How is it treated?",
             "reference": f"Condition {i} is caused by gene G{i}. It is treated with rest.",
             "prediction": f"Condition {i} comes from gene G{i + seed % 3}. Rest helps." if i % 4 else "",
             "must_have": [f"Gene G{i} causes condition {i}"], "hit_max_new_tokens": bool(i % 2),
             "stop": "length" if i % 2 else "end", "new_tokens": 12} for i in range(n)]  # fmt: skip


@st.composite
def prediction_files(draw):
    """(bytes of the predictions, bytes of the baseline or None): valid rows, some fields taken away or of another
    type, ids repeated or missing from the baseline, lines that are not JSON, or bytes of any kind."""
    kind = draw(st.sampled_from(["rows"] * 6 + ["bytes", "deep", "empty"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300)), None
    if kind == "deep":
        return ("[" * 50000 + "]" * 50000).encode(), None
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"{}\n"])), None
    rows = good_predictions(draw(st.integers(1, 12)), draw(st.integers(0, 5)))
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.sampled_from(rows))
        field = draw(st.sampled_from(PRED_FIELDS))
        if draw(CHANCE) > 0.7:
            row.pop(field, None)
        else:
            row[field] = draw(WRONG)
    if draw(CHANCE) > 0.85:
        rows.append(dict(rows[0]))  # an id twice
    lines = [json.dumps(r) for r in rows]
    if draw(CHANCE) > 0.85:
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
    baseline = None
    if draw(st.booleans()):
        base = good_predictions(draw(st.integers(0, 12)), 7)
        baseline = "".join(json.dumps(r) + "\n" for r in base).encode()
    return "\n".join(lines).encode(), baseline


def metrics_whole(outputs) -> bool:
    metrics = json.loads(Path(outputs[0]).read_text())
    return isinstance(metrics["n"], int) and "rougeL" in metrics["metrics"]


@given(prediction_files())
def test_predictions(files):
    preds, baseline = files
    work = Path(tempfile.mkdtemp(prefix="fuzz-preds-"))
    try:
        (work / "tuned.jsonl").write_bytes(preds)
        args = ["eval/score.py", work / "tuned.jsonl", "--out", work / "out"]
        if baseline is not None:
            (work / "base.jsonl").write_bytes(baseline)
            args += ["--baseline", work / "base.jsonl"]
        result = run_main(*args)
        names = [str(work / "tuned.jsonl"), str(work / "base.jsonl")]
        keeps_contract("predictions (eval/score.py)", result, [work / "out" / "metrics.json"], names, metrics_whole,
                       work)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- run folders (ask, merge, eval, gguf, dpo)


@pytest.fixture(scope="module")
def small_run(small, tmp_path_factory):
    """A finished run of the embedded recipe on the small model (LoRA r 8 on every linear layer), its data beside."""
    from conftest import finished_run
    from peft import LoraConfig

    model, data = small
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    run = finished_run(tmp_path_factory.mktemp("fuzz-run") / "run", "recipes/smollm2-135m/qlora.yml", model, lora)
    recipe = (run / "recipe.yml").read_text()  # every dataset of the recipe (MedQuAD and people's) the small data
    recipe = re.sub(r"data/[\w-]+/train\.jsonl", str(data / "train.jsonl"), recipe)
    (run / "recipe.yml").write_text(re.sub(r"data/[\w-]+/val\.jsonl", str(data / "val.jsonl"), recipe))
    return run, data


@st.composite
def damage(draw, files: list[str]):
    """(file, how, where, what): one of a run folder's files removed, emptied, cut short, garbled, made a folder, or
    (a JSON file) one of its values given another type."""
    name = draw(st.sampled_from(files))
    how = draw(st.sampled_from(["remove", "empty", "cut", "cut", "garble", "garble", "folder", "json"]))
    return name, how, draw(CHANCE), draw(st.binary(min_size=1, max_size=16)), draw(WRONG)


def apply_damage(run: Path, case) -> Path:
    name, how, where, what, wrong = case
    path = run / name
    raw = path.read_bytes()
    at = int(where * len(raw))
    if how == "remove":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "cut":
        path.write_bytes(raw[:at])
    elif how == "garble":
        path.write_bytes(raw[:at] + what + raw[at + len(what) :])
    elif how == "folder":
        path.unlink()
        path.mkdir()
    elif how == "json" and path.suffix == ".json":
        try:
            value = json.loads(raw)
        except ValueError:
            return path
        if isinstance(value, dict) and value:
            keys = sorted(value)
            value[keys[min(int(where * len(keys)), len(keys) - 1)]] = wrong
            path.write_text(json.dumps(value))
    return path


def in_process_steps(monkeypatch, skip: tuple[str, ...] = ()):
    """A command's steps (medqa.cli.run_module) run in this process, as their own main() with its wrapper, the
    modules in `skip` (Axolotl's training) recorded and not run."""
    import runpy
    import sys

    ran = []

    def run_module(argv):
        ran.append(argv)
        if argv[0] in skip:
            return
        old = sys.argv
        try:
            sys.argv = [argv[0], *map(str, argv[1:])]
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            if stop.code:
                sys.exit(stop.code)
        finally:
            sys.argv = old

    for module in ("medqa.cli", "medqa.cli.dpo", "medqa.cli.evaluate"):
        monkeypatch.setattr(sys.modules.get(module) or __import__(module, fromlist=["x"]), "run_module", run_module)
    return ran


RUN_COMMANDS = {
    "ask": lambda run, data, out: (["scripts/ask.py", run, "-q", "What causes gout?", "--max-new-tokens", "6"], []),
    "merge": lambda run, data, out: (["scripts/merge.py", run, "--out", out], [out]),
    "eval": lambda run, data, out: (["eval/generate.py", run, "--data", data, "--split", "test", "--n", "2",
                                     "--max-new-tokens", "6", "--out", out / "tuned.jsonl"], [out / "tuned.jsonl"]),
    "gguf": lambda run, data, out: (["scripts/export_gguf.py", run, "--out", out], [out]),
    "dpo": lambda run, data, out: (["scripts/dpo.py", run, "--recipe", "recipes/smollm2-135m/dpo.yml", "--n", "2",
                                    "--out", out], [run / "pairs-ends" / "train.jsonl"]),
}  # fmt: skip


# cases a command: a case that reaches the model runs it (gguf: llama.cpp's converter, a process of ~10 s; dpo:
# 2 x 4 answers sampled); make test tries fewer
RUN_CASES = {"ask": 1000, "merge": 1000, "eval": 1000, "dpo": 300, "gguf": 60}


@pytest.mark.parametrize("command", sorted(RUN_COMMANDS))
def test_run_folders(small_run, command, monkeypatch):
    """A damaged copy of a finished run for each command that reads one: exit 0 with its output, or one line."""
    source, data = small_run
    files = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    cases = RUN_CASES[command] if FUZZ else min(15, RUN_CASES[command] // 10)

    @settings(max_examples=cases)
    @given(damage(files))
    def case(hurt):
        work = Path(tempfile.mkdtemp(prefix=f"fuzz-run-{command}-"))
        try:
            run = work / "run"
            shutil.copytree(source, run)
            path = apply_damage(run, hurt)
            out = work / "out"
            argv, outputs = RUN_COMMANDS[command](run, data, out)
            if command == "dpo":
                in_process_steps(monkeypatch, skip=("medqa.cli.finetune",))
            result = run_main(*argv)
            names = [str(path), str(run), str(path.parent)]
            keeps_contract(f"run folder ({command})", result, outputs, names, work=work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    case()


# --------------------------------------------------------------------------- lever specs (make levers)

GOOD_SPEC = {
    "recipe": "recipes/smollm2-135m/qlora.yml", "data": "data/medqa-all", "split": "val", "n": 10,
    "train": {"eval_strategy": "no"}, "decode": {"batch_size": 8},
    "sets": [{"name": "people", "data": ["data/mediqa"], "split": "val"}],
    "levers": [{"name": "ref", "about": "the recipe"}, {"name": "base-model", "about": "base", "model": "base"},
               {"name": "rp", "about": "rp", "model": "ref", "decode": {"repetition_penalty": 1.1}},
               {"name": "dpo", "about": "dpo", "recipe": "recipes/smollm2-135m/dpo.yml", "start": "ref",
                "rule": "ends"}],
    "test": {"n": 5, "levers": ["ref"]},
}  # fmt: skip


@st.composite
def spec_texts(draw):
    """A lever spec's text: a good one, or with a key removed, a value of another type (at the top, in a lever, in a
    set), a lever naming one that is not there, a YAML tag, an alias bomb or broken syntax."""
    import yaml

    spec = json.loads(json.dumps(GOOD_SPEC))
    change = draw(
        st.sampled_from(["none", "remove", "wrong", "lever", "lever", "set", "name", "tag", "bomb", "syntax"])
    )
    if change == "remove":
        spec.pop(draw(st.sampled_from(sorted(spec))))
    elif change == "wrong":
        spec[draw(st.sampled_from(sorted(spec)))] = draw(WRONG)
    elif change == "lever":
        lever = draw(st.sampled_from(spec["levers"]))
        keys = ["name", "about", "model", "start", "rule", "decode", "set", "epoch", "pairs", "compare_to", "prompt",
                "cut_from", "n", "weights", "x"]  # fmt: skip
        lever[draw(st.sampled_from(keys))] = draw(WRONG)
    elif change == "set":
        spec["sets"][0][draw(st.sampled_from(["name", "data", "split", "n", "levers", "x"]))] = draw(WRONG)
    elif change == "name":
        spec["levers"][2]["model"] = draw(st.sampled_from(["nope", "base-model", "rp", "dpo", "base"]))
    text = yaml.safe_dump(spec, sort_keys=False)
    if change == "tag":
        text += f"n: {draw(st.sampled_from(TAGS))}\n"
    elif change == "bomb":
        text = BOMB + text.replace("levers:\n", "levers: *i\nx:\n", 1)
    elif change == "syntax":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([":", "\t", "- ", "[", "{", "'", "&a", "*a", "\x00"])) + text[at:]
    return text


@given(spec_texts())
def test_lever_specs(text):
    work = Path(tempfile.mkdtemp(prefix="fuzz-spec-"))
    try:
        spec = work / "round.yml"
        spec.write_text(text, encoding="utf-8", errors="replace")
        result = run_main("eval/levers.py", "plan", spec, "--work", work / "w")
        keeps_contract("lever spec (make levers, eval/levers.py)", result, [], [str(spec)], work=work)
        assert not (work / "w").exists()  # plan runs nothing and writes nothing
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- what hypothesis found, kept as plain cases


def one_line(result, *names):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert all(n in lines[0] for n in names), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "name, raw, problem",
    [
        ("deep.jsonl", b"[" * 5000 + b"]" * 5000, "line 1: JSON nested too deeply to read"),
        ("ff.csv", b"0\x0c0,answer,document_id\n,A.,d\n", "found: 0\\x0c0, answer, document_id"),  # one line
        ("list.jsonl", b'{"question": ["a", "b"], "answer": "x"}\n', "row 1: question is a list, not text"),
        ("cut.parquet", b"PAR1\x00\x01", "not a readable Parquet file"),
        ("utf16.csv", b"\xff\xfe" + "question,answer\n".encode("utf-16-le") + b"\x00\xd8", "not UTF-16 text"),
    ],
)
def test_data_files_found(tmp_path, name, raw, problem):
    path = tmp_path / name
    path.write_bytes(raw)
    one_line(run_main("scripts/prepare_data.py", path, "--out", tmp_path / "out"), str(path), problem)
    assert not (tmp_path / "out").exists()


def test_a_utf16_file_with_its_byte_order_mark_is_read(tmp_path):
    rows = "".join(f"What causes condition {i}?,It is caused by gene G{i}.\n" for i in range(40))
    path = tmp_path / "unicode.csv"
    path.write_bytes(("question,answer\n" + rows).encode("utf-16"))  # as spreadsheets save "Unicode text"
    result = run_main("scripts/prepare_data.py", path, "--out", tmp_path / "out", "--val-fraction", "0.2",
                      "--test-fraction", "0.2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "40 rows read, 40 kept" in result.stdout


@pytest.mark.parametrize(
    "line, problem",
    [
        ("base_model: 5", "base_model: Input should be a valid string (it takes str)"),
        ("attn_implementation: true", "attn_implementation: Input should be a valid string"),
        ("attn_implementation: {a: 1}", "attn_implementation: Input should be a valid string"),
        ("lora_target_modules: 3.5", "lora_target_modules: str: Input should be a valid string"),
        ("special_tokens: [1]", "special_tokens: Input should be a valid dictionary"),
        ("learning_rate: !!float nope", "not valid YAML"),
        ("datasets: *nowhere", "not valid YAML"),
        ("chat_template_jinja: !!binary aGVsbG8=", "chat_template_jinja: a value of YAML type !!binary"),  # make fuzz
        ("datasets: [{path: !!set {a}}]", "datasets[0].path: a value of YAML type !!set"),
        ("num_epochs: .inf", "num_epochs: inf is not a finite number"),
        ("micro_batch_size: false", "micro_batch_size: False is not a whole number of at least 1"),  # make fuzz
        ("gradient_accumulation_steps: 0", "gradient_accumulation_steps: 0 is not a whole number of at least 1"),
        ("num_epochs: -1", "num_epochs: -1 is not a number above 0"),
        ("base_model: !!str", "base_model is empty: it names a file, a folder or a Hub id"),  # make fuzz
        ("datasets: [{path: ' ', type: chat_template}]", "datasets[0].path is empty"),
    ],
)
def test_recipe_values_found(small, tmp_path, line, problem):
    import yaml

    model, data = small
    cfg = base_recipe(model, data)
    cfg.pop(line.split(":")[0], None)
    recipe = tmp_path / "recipe.yml"
    recipe.write_text(yaml.safe_dump(cfg) + line + "\n")
    one_line(run_main("scripts/plan.py", recipe), str(recipe), problem)


def test_a_recipe_that_leaves_a_key_out_gets_axolotls_default(small, tmp_path):
    import yaml

    model, data = small
    cfg = base_recipe(model, data)
    del cfg["micro_batch_size"], cfg["sequence_len"]  # Axolotl: 1 and 512
    cfg.pop("output_dir", None)  # Axolotl: ./model-out (found by make fuzz: a KeyError)
    recipe = tmp_path / "recipe.yml"
    recipe.write_text(yaml.safe_dump(cfg))
    result = run_main("scripts/plan.py", recipe)
    assert result.returncode == 0, result.stderr
    assert "packed into 512-token sequences, 1 a step" in result.stdout
    assert "output      ./model-out" in result.stdout


def test_a_base_model_path_that_is_not_there_found(small, tmp_path):
    """make fuzz: broken syntax turned base_model's path into `/:tmp/...`; the hub's "repo id must be in the form"
    came back for a path. A path (/, ./, ../, ~) that is not there is said as such, naming it."""
    import yaml

    model, data = small
    cfg = base_recipe(model, data)
    cfg["base_model"] = "/:" + str(model)[1:]
    recipe = tmp_path / "recipe.yml"
    recipe.write_text(yaml.safe_dump(cfg))
    one_line(run_main("scripts/plan.py", recipe), cfg["base_model"], "cannot load the base model: no such folder")


@pytest.mark.parametrize("epochs", [9.223372036854777e20, 9.981228616160998e303])
def test_a_recipe_that_asks_for_billions_of_steps_is_planned_found(small, tmp_path, epochs):
    """make fuzz: num_epochs 9.2e20 made make plan list every checkpoint (memory ran out) and then overflow; the
    checkpoints are counted, not listed, and the space they take is said in whole numbers (1e303 epochs' bytes are
    more than a float holds)."""
    import yaml

    model, data = small
    cfg = {**base_recipe(model, data), "num_epochs": epochs, "save_steps": 100}
    recipe = tmp_path / "recipe.yml"
    recipe.write_text(yaml.safe_dump(cfg))
    result = run_main("scripts/plan.py", recipe)
    assert result.returncode == 0, result.stderr
    assert re.search(r"checkpoints at steps 100, 200, 300, \.\.\., \d+ \([\d,]+ in all\)", result.stdout), result.stdout


def test_an_alias_bomb_is_refused_before_anything_walks_it(small, tmp_path):
    import yaml

    model, data = small
    recipe = tmp_path / "recipe.yml"
    recipe.write_text(BOMB.replace("i: &i", "lora_target_modules: &i") + yaml.safe_dump(base_recipe(model, data)))
    one_line(run_main("scripts/plan.py", recipe), str(recipe), "aliases expand to more than 100,000 values")


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"id": ["a", "b"]}, "row 1: id must be a string or a whole number, not list"),
        ({"prediction": 3}, "row 1: question, prediction and reference must be strings"),
        ({"stop": "eos"}, "row 1: stop must be one of end, length, loop"),
        ({"hit_max_new_tokens": "no"}, "row 1: hit_max_new_tokens must be true or false"),
        ({"must_have": []}, "row 1: must_have must be a non-empty list of statements"),
    ],
)
def test_predictions_found(tmp_path, change, problem):
    rows = good_predictions(2, 0)
    rows[0].update(change)
    path = tmp_path / "tuned.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    one_line(run_main("eval/score.py", path, "--out", tmp_path / "out"), str(path), problem)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "key, value, problem",
    [
        ("eos_token", None, "chat template: 'eos_token' is undefined"),
        ("model_max_length", "", "the run's tokenizer does not work"),
        ("unk_token", True, "Special token unk_token has to be either str or AddedToken"),
    ],
)
def test_run_folders_found(small_run, tmp_path, key, value, problem):
    source, _ = small_run
    run = tmp_path / "run"
    shutil.copytree(source, run)
    config = json.loads((run / "tokenizer_config.json").read_text())
    config[key] = value
    (run / "tokenizer_config.json").write_text(json.dumps(config))
    one_line(run_main("scripts/ask.py", run, "-q", "What causes gout?", "--max-new-tokens", "4"), str(run), problem)


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"recipe": None}, "not a lever spec: no 'recipe'"),
        ({"n": "ten"}, "n: Input should be a valid integer"),
        ({"decode": {"batch_size": "8-"}}, "decode: 'auto' or a whole number, got '8-'"),
        ({"levers": [{"name": ["x"], "about": "a"}]}, "levers[0].name: Input should be a valid string"),
        ({"recipe": ":recipes/smollm2-135m/qlora.yml"}, "its recipe :recipes/smollm2-135m/qlora.yml is not there"),
    ],
)
def test_lever_specs_found(tmp_path, change, problem):
    import yaml

    spec = tmp_path / "round.yml"
    spec.write_text(yaml.safe_dump({**GOOD_SPEC, **change}))
    one_line(run_main("eval/levers.py", "plan", spec, "--work", tmp_path / "w"), str(spec), problem)
