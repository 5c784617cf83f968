"""The scorer on hand-checkable cases, a deterministic bootstrap, and one-line errors for bad prediction files."""

import json

import numpy as np
import pytest
from conftest import run_script

from medqa.scoring import bootstrap_ci, per_example, summarise, token_f1


@pytest.fixture(scope="module")
def encoder():
    from medqa.scoring import embedder

    return embedder()


def test_token_f1_by_hand():
    assert token_f1("The cat sat.", "the cat sat") == 1.0
    assert token_f1("dog", "cat") == 0.0
    # "the" is dropped: pred [cat, sat], ref [cat, sat, down] -> P 1, R 2/3, F1 0.8
    assert token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)


def test_identical_answers_score_perfectly_and_unrelated_ones_do_not(encoder):
    ref = "Iron deficiency anemia is treated with iron supplements."
    scores = per_example([ref, "Paris is the capital of France."], [ref, ref], encoder)
    for m in ("rougeL", "rouge1", "rouge2", "token_f1"):
        assert scores[m][0] == pytest.approx(1.0) and scores[m][1] < 0.2
    assert scores["bleu"][0] == pytest.approx(100.0) and scores["chrf"][0] == pytest.approx(100.0)
    assert scores["embed_sim"][0] == pytest.approx(1.0, abs=1e-4) and scores["embed_sim"][1] < 0.5


def test_rouge_uses_stemming(encoder):
    scores = per_example(["treating infections"], ["treated infection"], encoder)
    assert scores["rouge1"][0] == pytest.approx(1.0)


def test_bootstrap_is_deterministic_under_a_seed_and_brackets_the_mean():
    values = np.random.default_rng(1).normal(size=200)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    s = summarise(values, seed=3)
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]


def write_predictions(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_cli_paired_delta(tmp_path):
    rows = [
        {
            "id": str(i),
            "question": "q",
            "reference": f"answer number {i}",
            "prediction": f"answer number {i}",
            "model": "m",
            "settings": {},
        }
        for i in range(5)
    ]
    worse = [{**r, "prediction": "something else"} for r in rows]
    good, bad = write_predictions(tmp_path / "good.jsonl", rows), write_predictions(tmp_path / "bad.jsonl", worse[::-1])
    result = run_script("eval/score.py", good, "--baseline", bad, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n"] == 5 and metrics["metrics"]["rougeL"]["mean"] == pytest.approx(1.0)
    assert metrics["delta"]["rougeL"]["mean"] == pytest.approx(1.0)  # matched by id, not by order
    assert metrics["delta"]["rougeL"]["ci95"][0] > 0


@pytest.mark.parametrize(
    "content,problem",
    [
        ("", "empty file"),
        ('{"id": "1", "question": "q", "reference": "r"}\n', "row 1: missing field(s) prediction"),
        ('{"id": "1", "question": "q", "reference": "r", "prediction": "p"}\nnot json\n', "line 2: not valid JSON"),
    ],
)
def test_bad_prediction_files_get_one_line(tmp_path, content, problem):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    result = run_script("eval/score.py", path, "--out", tmp_path / "out")
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
