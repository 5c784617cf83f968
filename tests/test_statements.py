"""Must-have statements (K-QA): read from a data file, carried into predictions, scored by the offline rule and by
an NLI judge, and bad statements said in one line."""

import json

import numpy as np
import pytest
from conftest import REPO, run_main

from medqa.statements import NLIJudge, stated_by_rule, statement_scores

KQA_GOLDEN = REPO.parent / "shared" / "data" / "consumer" / "kqa_golden_dev.jsonl"
QUESTION = "Also what is the oral option to get rid of scabies?"
MUST = [
    "Ivermectin (Stromectol) is the oral treatment for scabies",
    "Permethrin cream (Elimite) is a topical treatment for scabies",
]


@pytest.fixture(scope="module")
def encoder():
    from medqa.scoring import embedder

    return embedder()


def test_the_rule_finds_a_statement_said_in_other_words_and_not_one_left_out(encoder):
    answer = "Scabies can be treated by mouth with ivermectin, sold as Stromectol. Wash your bedding in hot water."
    assert stated_by_rule(MUST, answer, QUESTION, encoder).tolist() == [True, False]
    both = answer + " A cream, permethrin (Elimite), is put on the skin instead."
    assert stated_by_rule(MUST, both, QUESTION, encoder).tolist() == [True, True]
    topic_only = "Scabies is an itchy rash caused by mites. The oral option depends on your doctor."
    assert not stated_by_rule(MUST, topic_only, QUESTION, encoder).any()  # the question's words state nothing
    assert not stated_by_rule(MUST, "", QUESTION, encoder).any()


@pytest.mark.skipif(not KQA_GOLDEN.is_file(), reason="K-QA's dev set is not beside the checkout")
def test_the_rule_on_k_qa_own_answers_against_another_questions(encoder):
    """The calibration's two ends (docs/evaluation.md): a physician's answer states nearly all of its own must-have
    statements, another question's answer almost none."""
    rows = [json.loads(line) for line in KQA_GOLDEN.read_text().splitlines()][:40]
    rows = [r for r in rows if any(s.strip() for s in r["must_have"])]
    own, other = [], []
    for i, row in enumerate(rows):
        must = [s for s in row["must_have"] if s.strip()]
        own += stated_by_rule(must, row["answer"], row["question"], encoder).tolist()
        other += stated_by_rule(must, rows[(i + 1) % len(rows)]["answer"], row["question"], encoder).tolist()
    assert np.mean(own) > 0.9 and np.mean(other) < 0.05


def tiny_nli(folder, verdict: str):
    """A tiny BERT cross-encoder whose head always says `verdict`: the judge's mechanics without a Hub model."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = "scabies ivermectin oral cream skin mouth by is the a treatment for".split()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    labels = {0: "CONTRADICTION", 1: "ENTAILMENT", 2: "NEUTRAL"}
    config = BertConfig(
        vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([10.0 * (labels[i] == verdict) for i in range(3)]))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_an_nli_judge_reads_entailment_and_contradiction_by_its_labels(tmp_path, encoder):
    said = {"question": QUESTION, "prediction": "Ivermectin by mouth. A cream on the skin.", "must_have": MUST,
            "nice_to_have": ["Wash bedding in hot water"]}  # fmt: skip
    rows = [said, {"question": "q", "prediction": "no statements"}]
    entails = statement_scores(rows, encoder, NLIJudge(str(tiny_nli(tmp_path / "yes", "ENTAILMENT"))))
    assert entails["must_have"][0] == 1.0 and entails["contradicted"][0] == 0.0
    against = statement_scores(rows, encoder, NLIJudge(str(tiny_nli(tmp_path / "no", "CONTRADICTION"))))
    assert against["must_have"][0] == 0.0 and against["contradicted"][0] == 1.0  # all three statements
    neutral = statement_scores(rows, encoder, NLIJudge(str(tiny_nli(tmp_path / "neither", "NEUTRAL"))))
    assert neutral["must_have"][0] == 0.0 and neutral["contradicted"][0] == 0.0  # not stated is not contradicted
    assert np.isnan(entails["must_have"][1]) and np.isnan(entails["contradicted"][1])  # a row without statements
    offline = statement_scores(rows, encoder)
    assert "contradicted" not in offline and np.isnan(offline["must_have"][1])  # the rule reports no contradiction


def predictions_with_statements(path, prediction):
    row = {"id": "kqa-1", "question": QUESTION, "reference": "Ivermectin is the oral option.", "must_have": MUST,
           "prediction": prediction, "new_tokens": 20, "hit_max_new_tokens": False, "stop": "end"}  # fmt: skip
    plain = {"id": "p-1", "question": "What is gout?", "reference": "A kind of arthritis.", "prediction": "Arthritis.",
             "new_tokens": 3, "hit_max_new_tokens": False, "stop": "end"}  # fmt: skip
    path.write_text(json.dumps(row) + "\n" + json.dumps(plain) + "\n")
    return path


def test_score_reports_must_have_statements_and_its_paired_difference(tmp_path):
    tuned = predictions_with_statements(
        tmp_path / "tuned.jsonl", "Ivermectin (Stromectol) is taken by mouth for scabies."
    )
    base = predictions_with_statements(tmp_path / "base.jsonl", "See a doctor about the rash.")
    result = run_main("eval/score.py", tuned, "--baseline", base, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["metrics"]["must_have"]["mean"] == pytest.approx(0.5)  # one of two; the plain row left out
    assert metrics["metrics"]["must_have"]["n"] == 1 and "contradicted" not in metrics["metrics"]
    assert metrics["delta"]["must_have"]["mean"] == pytest.approx(0.5)
    assert "n" not in metrics["metrics"]["rougeL"]  # every row scored on everything else
    no_judge = run_main("eval/score.py", tuned, "--out", tmp_path / "nli", "--nli", tmp_path / "no-such-model")
    assert no_judge.returncode == 2 and len(no_judge.stderr.strip().splitlines()) == 1
    assert "cannot load an NLI judge" in no_judge.stderr and not (tmp_path / "nli").exists()


@pytest.mark.parametrize(
    "cell, problem",
    [
        ('"Ivermectin"', "must_have must be a list of statements, got str"),
        ("[1, 2]", "must_have statement 1 is a int, not text"),
        ('[["nested"]]', "must_have statement 1 is a list, not text"),
        ("{not json", "must_have: not valid JSON"),
        (json.dumps([" ".join(["word"] * 2000)]), "must_have statement 1 has 2000 words"),
    ],
)
def test_bad_statements_are_one_line_naming_the_file_and_row(tmp_path, cell, problem):
    import csv

    path = tmp_path / "statements.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "answer", "must_have"])
        writer.writerow(["What treats scabies?", "Ivermectin.", '["Ivermectin treats scabies"]'])
        writer.writerow(["What is gout?", "A kind of arthritis.", cell])
    result = run_main("scripts/prepare_data.py", path, "--out", tmp_path / "out", "--questions-only", "val")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(path) in result.stderr and f"row 2: {problem}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_statements_travel_from_a_csv_into_the_prepared_rows_and_the_predictions(tmp_path):
    from medqa.data import read_jsonl
    from medqa.generation import Answer
    from medqa.predictions import load_predictions, prediction_lines

    path = tmp_path / "own.csv"
    path.write_text(
        "question,answer,must_have,nice_to_have\n"
        'What treats scabies?,Ivermectin.,"[""Ivermectin treats scabies"", """"]",[]\n'
        "What is gout?,A kind of arthritis.,,\n"
    )
    result = run_main("scripts/prepare_data.py", path, "--out", tmp_path / "out", "--questions-only", "val")
    assert result.returncode == 0, result.stderr
    assert "2 questions, 2 with a reference answer, 1 with must-have statements" in result.stdout
    assert "dropped: 1 empty must_have statement" in result.stdout  # counted, not lost in silence
    rows = read_jsonl(tmp_path / "out" / "val.jsonl")
    assert rows[0]["must_have"] == ["Ivermectin treats scabies"] and "nice_to_have" not in rows[0]
    assert "must_have" not in rows[1]  # a row without statements: scored on everything else
    preds = tmp_path / "preds.jsonl"
    preds.write_text(prediction_lines(rows, [Answer("Ivermectin.", 3, "end")] * 2, "m", {}))
    loaded = load_predictions(preds)
    assert loaded[0]["must_have"] == ["Ivermectin treats scabies"] and "must_have" not in loaded[1]
