"""The cleaning rules (medqa.cleaning) on hand-made answers, the ones they must leave alone included, and how
`make data` applies and counts them."""

import csv
import json

import pytest
from conftest import run_script

from medqa.cleaning import DROP, apply, boilerplate, clean_reference, link_list, page_title, restated_question
from medqa.data import prepare

HPO = (
    "The Human Phenotype Ontology provides the following list of signs and symptoms for Foo syndrome. If the "
    "information is available, the table below includes how often the symptom is seen in people with this "
    "condition. Signs and Symptoms Approximate number of patients (when available) Abnormal gait - Seizures - "
    "The Human Phenotype Ontology (HPO) has collected information on how often a sign or symptom occurs in a "
    "condition. Sometimes, no information on frequency is available. In these cases, the sign or symptom may be "
    "rare or common."
)


# ---------------------------------------------------------------- restated_question


def test_an_opening_question_that_restates_the_question_goes():
    q = "What are the treatments for cerulean cataracts ?"
    a = "How might cerulean cataracts be treated? No treatment is known to reverse the lens changes."
    assert restated_question(q, a) == "No treatment is known to reverse the lens changes."


@pytest.mark.parametrize(
    "answer",
    [
        "Cerulean cataracts are treated with surgery when they impair vision.",  # no opening question
        "Is genetic testing available for cerulean cataracts? Yes. Testing is offered by several labs.",  # yes/no
        "Why do people snore? Air flows past relaxed tissue in the throat.",  # a question about something else
        "HIV/AIDS (What Is HIV? What Is AIDS?): HIV is a virus that damages the immune system.",  # a page title
        "How might cerulean cataracts be treated?",  # the question alone: nothing would be left
        "Surgery helps. How often? Once, in most cases, for cerulean cataracts.",  # a question later on
    ],
)
def test_restated_question_leaves_these_alone(answer):
    assert restated_question("What are the treatments for cerulean cataracts ?", answer) == answer


# ---------------------------------------------------------------- page_title


@pytest.mark.parametrize(
    ("answer", "cleaned"),
    [
        ("What causes Flu?: The flu is caused by an influenza virus.", "The flu is caused by an influenza virus."),
        ("Influenza (flu) (Treatment): Usually, rest is enough.", "Usually, rest is enough."),
        ("Seasonal affective disorder: Seasonal affective disorder (SAD) is a type of depression.",
         "Seasonal affective disorder (SAD) is a type of depression."),
        ("Summary : A1C is a blood test for diabetes.", "A1C is a blood test for diabetes."),
        ("Ischemic Stroke (Summary): Summary A stroke is a medical emergency.", "A stroke is a medical emergency."),
        ("Lung Cancer: The lungs are a pair of cone-shaped organs.", "The lungs are a pair of cone-shaped organs."),
        ("Fibromyalgia: - Fibromyalgia is a long-lasting disorder.", "- Fibromyalgia is a long-lasting disorder."),
        ("What to do for Radiation sickness?: - DO NOT remain in the area.", "- DO NOT remain in the area."),
        ("HIV/AIDS (What Is HIV? What Is AIDS?): HIV is a virus.", "HIV is a virus."),
    ],
)  # fmt: skip
def test_a_page_title_before_the_answer_goes(answer, cleaned):
    assert page_title("what is it?", answer) == cleaned


@pytest.mark.parametrize(
    "answer",
    [
        "Signs of mild to moderate dehydration: - Thirst - Dry or sticky mouth",  # a lead-in to a list
        "Symptoms may include: Fever and a cough.",  # a sentence's lead-in (a verb)
        "Gas in the digestive tract comes from two sources: air that you swallow and food.",  # the sentence goes on
        "Medlife USA: Email: info@example.org Telephone: 1-844",  # a name before its fields
        "Liver warning: This product contains acetaminophen.",  # a heading the answer does not take up
        "These resources address the diagnosis or management of Wilson disease: - Gene Review",  # link_list's
        "The flu is caused by an influenza virus.",  # no heading
    ],
)
def test_page_title_leaves_these_alone(answer):
    assert page_title("What causes it?", answer) == answer


def test_a_reference_as_the_rules_leave_it_loses_its_title_too():
    assert clean_reference("What causes flu?", "What causes Flu?: A virus.") == "A virus."
    assert clean_reference("What causes flu?", "What causes Flu?: A virus.", ("restated_question",)) == (
        "What causes Flu?: A virus."
    )


# ---------------------------------------------------------------- boilerplate


def test_the_phenotype_table_goes_and_the_answer_before_it_stays():
    a = "Foo syndrome mainly affects the nerves of the legs. " + HPO
    assert (
        boilerplate("What are the symptoms of Foo syndrome ?", a)
        == "Foo syndrome mainly affects the nerves of the legs."
    )


def test_an_answer_that_is_only_the_phenotype_table_is_dropped():
    a = "What are the signs and symptoms of Foo syndrome? " + HPO
    assert boilerplate("What are the symptoms of Foo syndrome ?", a) is DROP
    assert boilerplate("What are the symptoms of Foo syndrome ?", HPO) is DROP


def test_boilerplate_leaves_an_answer_that_mentions_the_ontology_alone():
    a = "Doctors describe its signs with the Human Phenotype Ontology, a standard vocabulary of symptoms."
    assert boilerplate("What is Foo syndrome ?", a) == a


# ---------------------------------------------------------------- link_list


def test_a_list_of_resources_is_dropped_a_second_list_included():
    a = (
        "These resources address the diagnosis or management of 15q13.3 microdeletion: - Gene Review: Gene Review: "
        "15q13.3 Microdeletion - Genetic Testing Registry: 15q13.3 microdeletion syndrome These resources from "
        "MedlinePlus offer information about the diagnosis and management of various health conditions: - "
        "Diagnostic Tests - Drug Therapy - Surgery and Rehabilitation - Genetic Counseling - Palliative Care"
    )
    assert link_list("What are the treatments for 15q13.3 microdeletion ?", a) is DROP


@pytest.mark.parametrize(
    "answer",
    [
        "Symptoms include: - fever - cough - a rash on the chest",  # a list, but of symptoms
        "These resources can help: - The clinic's page. Most people recover within two weeks with rest, fluids and "
        "paracetamol for the fever, and a doctor should see anyone whose breathing gets worse or who cannot keep "
        "fluids down for a day.",  # an item that is prose
        "Treatment depends on the cause. These resources address its management: - Gene Review: Foo",  # prose first
    ],
)
def test_link_list_leaves_these_alone(answer):
    assert link_list("What are the treatments for foo ?", answer) == answer


# ---------------------------------------------------------------- applying the rules


def test_apply_counts_each_rule_by_source_and_keeps_the_original():
    rows = [
        {"question": "What causes foo ?", "answer": "What causes foo? A gene.", "source": "GARD"},
        {"question": "What is foo ?", "answer": HPO, "source": "GARD"},
        {"question": "How to treat foo ?", "answer": "These resources address foo: - A: b - C: d", "source": "GHR"},
        {"question": "What is bar ?", "answer": "Bar is a rash.", "source": "GHR"},
    ]
    kept, counts = apply(rows, ["restated_question", "boilerplate", "link_list"], lambda r: r["source"])
    assert [r["answer"] for r in kept] == ["A gene.", "Bar is a rash."]
    assert kept[0]["answer_original"] == "What causes foo? A gene." and "answer_original" not in kept[1]
    assert counts == {
        "restated_question": {"changed": {"GARD": 1}, "dropped": {}},
        "boilerplate": {"changed": {}, "dropped": {"GARD": 1}},
        "link_list": {"changed": {}, "dropped": {"GHR": 1}},
    }
    kept, counts = apply(rows, [], lambda r: r["source"])
    assert kept == rows and counts == {}


def write_rows(path, rows, header=("question", "answer", "source", "document_id")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def restating_rows(n):
    return [
        (
            f"What causes condition {i} ?",
            f"What causes condition {i}? Condition {i} comes from gene G{i}.",
            "GARD",
            f"d{i}",
        )
        for i in range(n)
    ]


def test_make_data_cleans_training_answers_only_and_counts_them(tmp_path):
    src = write_rows(tmp_path / "in.csv", restating_rows(40))
    m = prepare(src, tmp_path / "out", seed=0, val_fraction=0.2, test_fraction=0.2)
    splits = {
        s: [json.loads(x) for x in (tmp_path / "out" / f"{s}.jsonl").read_text().splitlines()]
        for s in m["rows"]
        if s in ("train", "val", "test")
    }
    assert all(not r["answer"].startswith("What causes") for r in splits["train"])
    assert all(r["answer"].startswith("What causes") for r in splits["val"] + splits["test"])  # references as published
    assert all(r["messages"][1]["content"] == r["answer"] for r in splits["train"])  # what Axolotl trains on
    assert m["cleaning"]["counts"]["restated_question"]["changed"] == {"GARD": len(splits["train"])}
    assert m["sources"]["GARD"] == {s: len(splits[s]) for s in ("train", "val", "test")}


def test_a_rule_can_be_turned_off_and_a_wrong_name_is_one_line(tmp_path):
    src = write_rows(tmp_path / "in.csv", restating_rows(40))
    m = prepare(src, tmp_path / "out", seed=0, keep=("restated_question",))
    train = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert all(r["answer"].startswith("What causes") for r in train)
    assert m["cleaning"]["off"] == ["restated_question"] and "restated_question" not in m["cleaning"]["counts"]
    result = run_script("scripts/prepare_data.py", str(src), "--out", str(tmp_path / "bad"), "--keep", "restated")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --keep: no cleaning rule restated (rules: page_title, restated_question, boilerplate, link_list, "
        "long_answer)"
    ]
    assert not (tmp_path / "bad").exists()


def test_prepare_data_says_what_the_cleaning_did(tmp_path):
    src = write_rows(tmp_path / "in.csv", restating_rows(40))
    result = run_script("scripts/prepare_data.py", str(src), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    n = json.loads((tmp_path / "out" / "manifest.json").read_text())["rows"]["train"]
    assert f"cleaning the training answers: restated_question: changed {n} GARD" in result.stdout


def test_page_titles_are_cut_from_training_answers_whatever_their_source_and_counted(tmp_path):
    rows = [(f"what causes flu {i}?", f"What causes Flu {i}?: A virus {i}.", src, f"d{i}")
            for i, src in enumerate(["MEDIQA", "LiveQA"] * 20)]  # fmt: skip
    m = prepare(write_rows(tmp_path / "in.csv", rows), tmp_path / "out", seed=0)
    train = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (tmp_path / "out" / "test.jsonl").read_text().splitlines()]
    assert all(r["answer"].startswith("A virus") and r["answer_original"].startswith("What causes") for r in train)
    assert all(r["answer"].startswith("What causes") for r in test)  # references as published
    by_source = {s: sum(r["source"] == s for r in train) for s in ("MEDIQA", "LiveQA")}
    assert m["cleaning"]["counts"]["page_title"]["changed"] == by_source


def test_a_split_column_and_several_references(tmp_path):
    rows = [
        (f"question {i} from a person?", f"answer {i}", json.dumps([f"answer {i}", f"another answer {i}"]), split)
        for i, split in enumerate(["train"] * 6 + ["validation"] * 2 + ["test"] * 3)
    ]
    src = write_rows(tmp_path / "in.csv", rows, header=("question", "answer", "answers_judged_correct", "split"))
    m = prepare(src, tmp_path / "out", split_column="split", references_column="answers_judged_correct")
    assert (m["rows"]["train"], m["rows"]["val"], m["rows"]["test"]) == (6, 2, 3)
    test = [json.loads(x) for x in (tmp_path / "out" / "test.jsonl").read_text().splitlines()]
    assert test[0]["references"] == ["answer 8", "another answer 8"] and "split" not in test[0]
    bad = write_rows(
        tmp_path / "bad.csv", [("q?", "a", "[]", "holdout")], header=("question", "answer", "refs", "split")
    )
    result = run_script("scripts/prepare_data.py", str(bad), "--out", str(tmp_path / "o2"), "--split-column", "split")
    assert result.returncode == 2 and "row 1: split 'holdout' is not train, validation or test" in result.stderr


def test_a_long_answer_is_cut_where_a_sentence_or_a_list_item_ends_within_the_budget():
    from medqa.cleaning import cut_answer

    sentences = " ".join(f"Sentence {i} says one thing about the condition and its care." for i in range(30))
    cut = cut_answer(sentences, 50)
    assert cut.endswith("care.") and 40 < len(cut.split()) <= 50 and sentences.startswith(cut)
    listed = "Treatment may include: " + " ".join(f"- option number {i}" for i in range(40))
    cut = cut_answer(listed, 20)
    assert cut.startswith("Treatment may include: - option number 0") and len(cut.split()) <= 20
    assert not cut.endswith(":") and cut.split()[-1].isdigit()  # ends after an item, not before one
    short = "A short answer. It ends here."
    assert cut_answer(short, 50) == short  # within the budget: whole
    abbreviations = "Take it with food, e.g. rice or bread, as Dr. Smith says " + "and more words " * 20 + "here."
    assert cut_answer(abbreviations, 20) == abbreviations  # no end within 2 x the budget: left whole
    first = "One long sentence " + "that goes on " * 5 + "and ends. Then another short one."
    assert cut_answer(first, 10) == first.split(" Then")[0]  # no end within the budget: the first sentence


def test_make_data_cuts_long_training_answers_to_a_budget_given_and_counts_them(tmp_path):
    rows = [
        {"question": f"What is condition {i} ?", "answer": " ".join(["It is a rare condition."] * (10 + i)),
         "source": "S", "document_id": str(i)}
        for i in range(40)
    ]  # fmt: skip
    src = write_rows(
        tmp_path / "in.csv", [[r[k] for k in ("question", "answer", "source", "document_id")] for r in rows]
    )
    m = prepare(src, tmp_path / "out", seed=0, answer_words=30)
    train = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert all(len(r["answer"].split()) <= 30 and r["answer"].endswith(".") for r in train)
    assert all(r["messages"][1]["content"] == r["answer"] for r in train)  # what Axolotl trains on
    assert m["cleaning"]["answer_words"] == 30 and sum(m["cleaning"]["counts"]["long_answer"]["changed"].values())
    held_out = [
        json.loads(x) for s in ("val", "test") for x in (tmp_path / "out" / f"{s}.jsonl").read_text().splitlines()
    ]
    assert held_out and all(len(r["answer"].split()) > 30 for r in held_out)  # references stay whole
    whole = prepare(src, tmp_path / "whole", seed=0, keep=("long_answer",))
    assert "long_answer" not in whole["cleaning"]["counts"] and "answer_words" not in whole["cleaning"]
    default = prepare(src, tmp_path / "default", seed=0)  # the default budget, 150 words
    assert default["cleaning"]["answer_words"] == 150
    trained = [json.loads(x) for x in (tmp_path / "default" / "train.jsonl").read_text().splitlines()]
    assert all(len(r["answer"].split()) <= 150 for r in trained)
    longer = sum(len(r.get("answer_original", r["answer"]).split()) > 150 for r in trained)
    assert longer and sum(default["cleaning"]["counts"]["long_answer"]["changed"].values()) == longer
    result = run_script("scripts/prepare_data.py", str(src), "--out", str(tmp_path / "bad"), "--answer-words", "0")
    assert result.returncode == 2 and result.stderr.strip() == "error: --answer-words: must be 1 or more, got 0"
    assert not (tmp_path / "bad").exists()
