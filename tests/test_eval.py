"""The scorer on hand-checkable cases, a deterministic bootstrap, and one-line errors for bad prediction files."""

import json

import numpy as np
import pytest
from conftest import REPO, run_main

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
    path.parent.mkdir(parents=True, exist_ok=True)
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
    result = run_main("eval/score.py", good, "--baseline", bad, "--out", tmp_path / "out")
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
    result = run_main("eval/score.py", path, "--out", tmp_path / "out")
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_loop_rate_counts_answers_stuck_in_a_loop(encoder):
    from medqa.scoring import has_loop

    looping = "Signs include: - Short back - Short arms - Short legs - Short back - Short arms - Short legs " * 2
    assert has_loop(looping)
    assert not has_loop("Iron deficiency anemia is treated with iron supplements and a diet rich in iron.")
    assert not has_loop("a b c d a b c d a b c d")  # three times is not a loop
    assert has_loop("a b c d a b c d a b c d A B C D")  # four, case aside
    scores = per_example([looping, "A short answer."], ["ref one", "ref two"], encoder)
    assert list(scores["loop_rate"]) == [1.0, 0.0]
    assert list(scores["words"]) == [len(looping.split()), 3.0]


def test_score_reports_length_and_cap_and_report_picks_by_rule(tmp_path):
    from medqa.scoring import score

    base = [
        {
            "id": str(i),
            "question": f"q{i}",
            "reference": f"answer number {i} about iron",
            "prediction": "no idea",
            "new_tokens": 3,
            "hit_max_new_tokens": False,
        }
        for i in range(9)
    ]
    tuned = [
        {**r, "prediction": " ".join(r["reference"].split()[: i % 5 + 1]), "hit_max_new_tokens": i % 3 == 0}
        for i, r in enumerate(base)
    ]
    b, t = write_predictions(tmp_path / "base.jsonl", base), write_predictions(tmp_path / "tuned.jsonl", tuned)
    result = score(t, b)
    assert result["metrics"]["hit_max_new_tokens"]["mean"] == pytest.approx(3 / 9)
    assert result["delta"]["hit_max_new_tokens"]["mean"] == pytest.approx(3 / 9)
    assert result["metrics"]["words"]["mean"] == pytest.approx(sum(i % 5 + 1 for i in range(9)) / 9)
    assert result["references"]["loop_rate"] == 0.0

    (tmp_path / "metrics.json").write_text(json.dumps(result))
    run = tmp_path / "run"
    run.mkdir()
    out = run_main("eval/report.py", tmp_path, "--run", run)
    assert out.returncode == 0, out.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| loop_rate |" in report and "| hit_max_new_tokens |" in report
    # the rule: ranked by ROUGE-L gain, largest first; the longest prediction (5 words) gains most
    sections = report.split("## Answers side by side")[1].split("### ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "largest gain",
        "upper quartile",
        "median",
        "lower quartile",
        "largest loss",
    ]
    assert "answer number 4 about iron" in sections[0].split("*tuned:*")[1].splitlines()[0]
    assert "| invented_numbers |" in report and "| rougeL_recall |" in report and "| unsupported_facts |" in report
    assert "### By question type" in report and "| other | 9 |" in report  # questions "q0", "q1": no MedQuAD type


def test_a_gene_symbol_with_a_wrong_digit_is_another_gene():
    from medqa.facts import check

    q, ref = "What causes Marfan syndrome ?", "Mutations in the FBN1 gene cause Marfan syndrome."
    supported, unsupported = check("Marfan syndrome is caused by mutations in the FBN2 gene.", q, ref)
    assert [f.value for f in unsupported] == ["FBN2"] and not supported
    supported, unsupported = check("Mutations in FBN1 cause it.", q, ref)
    assert [f.value for f in supported] == ["FBN1"] and not unsupported
    # a symbol without a digit is a gene where the text says so
    supported, unsupported = check("It is caused by mutations in the FTO gene.", q, ref)
    assert [(f.kind, f.value) for f in unsupported] == [("gene", "FTO")]


def test_dominant_is_not_recessive_and_x_linked_is_either():
    from medqa.facts import check

    q = "Is Alport syndrome inherited ?"
    recessive = "This condition is inherited in an autosomal recessive pattern."
    assert [f.value for f in check("It is inherited in an autosomal dominant pattern.", q, recessive)[1]] == [
        "autosomal dominant"
    ]
    assert check("It follows an autosomal-recessive pattern.", q, recessive)[1] == []
    x_linked = "Alport syndrome is inherited in an X-linked pattern."
    assert check("It is inherited in an X-linked recessive pattern.", q, x_linked)[1] == []
    assert check("It is X-linked.", q, "It is inherited in an X-linked dominant pattern.")[1] == []
    assert check("It is X-linked recessive.", q, "It is inherited in an X-linked dominant pattern.")[1]


def test_numbers_chromosomes_and_bands_are_checked_against_question_and_reference():
    from medqa.facts import check

    q = "What is Glycogen storage disease type 13 ?"
    ref = "It affects about 1 in 20,000 people. The gene lies on chromosome 15 (15q11-q13)."
    supported, unsupported = check(
        "Glycogen storage disease type 13 affects 1 in 20,000 people; the gene is on chromosome 15 at 15q11.2.", q, ref
    )
    assert {f.value for f in supported} == {"13", "1", "20000", "15", "15q11.2"} and not unsupported
    supported, unsupported = check("It affects 1 in 50,000 people and lies on chromosome 22 (22q13).", q, ref)
    assert {f.value for f in unsupported} == {"50000", "22", "22q13"} and {f.value for f in supported} == {"1"}


def test_ordinary_abbreviations_are_not_gene_symbols():
    from medqa.facts import extract

    text = "An MRI, a CT scan and DNA tests help; HIV and COPD are unrelated. Vitamin B12 and type 2 diabetes."
    assert [f.kind for f in extract(text)] == ["number", "number"]  # 12 and 2: numbers, not genes


def test_fact_metrics_per_answer_and_the_report_marks_unsupported_facts(encoder):
    from medqa.facts import mark_unsupported

    q, ref = "What causes Marfan syndrome ?", "Mutations in the FBN1 gene cause Marfan syndrome in 1 in 5,000 people."
    answers = ["Mutations in the FBN1 gene; 1 in 5,000 people.", "Mutations in FBN2; 1 in 90 people.", "It is rare."]
    scores = per_example(answers, [ref] * 3, encoder, [q] * 3)
    assert list(scores["unsupported_facts"]) == [0.0, 1.0, 0.0]
    assert scores["fact_precision"][0] == 1.0 and scores["fact_precision"][1] == pytest.approx(1 / 3)
    assert np.isnan(scores["fact_precision"][2])  # no checkable fact: left out of the mean
    assert summarise(scores["fact_precision"])["n"] == 2
    assert mark_unsupported(answers[1], q, ref) == "Mutations in <mark>FBN2</mark>; 1 in <mark>90</mark> people."


def test_question_types_follow_medquad_wording(medquad):
    import csv

    from medqa.facts import question_type

    assert question_type("What are the symptoms of Marfan syndrome ?") == "symptoms"
    assert question_type("Is Marfan syndrome inherited ?") == "inheritance"
    assert question_type("How many people are affected by Marfan syndrome ?") == "frequency"
    with open(medquad, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    agree = sum(question_type(r["question"]) == r["qtype"] for r in rows) / len(rows)
    assert agree > 0.99, agree  # MedQuAD's own qtype column


def test_invented_numbers_are_those_in_neither_the_question_nor_the_reference(encoder):
    from medqa.scoring import invented_numbers, numbers

    assert numbers("type 13, 1,000 cases, 2.5 mg, FMR1 and 15q11.2.") == {"13", "1000", "2.5", "1", "15", "11.2"}
    q, ref = "What are the symptoms of Glycogen storage disease type 13 ?", "Abnormality of the liver 50%"
    assert invented_numbers("Glycogen storage disease type 41: liver 50%, eye 90%", q, ref) == {"41", "90"}
    assert invented_numbers("Type 13 affects the liver in 50% of cases.", q, ref) == set()
    scores = per_example(["type 41", "type 13", "no numbers"], [ref] * 3, encoder, [q] * 3)
    assert list(scores["invented_numbers"]) == [1.0, 0.0, 0.0]


def test_rouge_l_precision_and_recall_beside_f(encoder):
    ref = "iron deficiency anemia is treated with iron"
    scores = per_example(["iron deficiency anemia", ref + " supplements and a diet rich in meat"], [ref, ref], encoder)
    assert scores["rougeL_precision"][0] == pytest.approx(1.0) and scores["rougeL_recall"][0] < 0.5
    assert scores["rougeL_recall"][1] == pytest.approx(1.0) and scores["rougeL_precision"][1] < 0.6
    p, r = scores["rougeL_precision"][0], scores["rougeL_recall"][0]
    assert scores["rougeL"][0] == pytest.approx(2 * p * r / (p + r))


def test_ended_counts_answers_the_model_ended_itself(tmp_path):
    from medqa.scoring import score

    stops = ["end", "loop", "length", "end"]
    rows = [
        {
            "id": str(i),
            "question": "q",
            "reference": "r",
            "prediction": "p",
            "new_tokens": 3,
            "hit_max_new_tokens": s == "length",
            "stop": s,
        }
        for i, s in enumerate(stops)
    ]
    result = score(write_predictions(tmp_path / "p.jsonl", rows))
    assert result["metrics"]["ended"]["mean"] == pytest.approx(0.5)
    assert result["metrics"]["hit_max_new_tokens"]["mean"] == pytest.approx(0.25)
    old = [{k: v for k, v in r.items() if k != "stop"} for r in rows]  # files from before `stop`: not capped
    assert score(write_predictions(tmp_path / "old.jsonl", old))["metrics"]["ended"]["mean"] == pytest.approx(0.75)


# ---------------------------------------------------------------- answer shape and several references


@pytest.mark.parametrize(
    ("answer", "question", "faults"),
    [
        (
            "What medications can induce hypo pigmentation? Several can.",
            "What medications can induce it?",
            ["repeats_question", "near_empty"],
        ),
        (
            "My doctor says I have a thyroid nodule and I am worried about cancer and surgery next month.",
            "My doctor says I have a thyroid nodule and I am worried about cancer and surgery next month. What now?",
            ["repeats_question"],
        ),
        (
            "There are no known medications that cause hypo pigmentation of skin.",
            "What medications can induce hypo pigmentation of skin?",
            ["near_empty", "nothing_known"],
        ),
        (
            "The cause of this condition is unknown, and researchers are studying genes, infections and the "
            "environment to find out more about it.",
            "What causes it?",
            ["nothing_known"],
        ),
        (
            "Prednisone withdrawal can cause tiredness, body aches and joint pain; a doctor tapers the dose slowly "
            "to avoid it. There is no known way to skip the taper safely.",
            "Can stopping prednisone suddenly cause problems?",
            [],  # says something first: a later "no known" is not giving up
        ),
        ("", "Is this serious?", ["near_empty"]),
        (
            "There is no cure for Leigh disease. Treatment is supportive and supportive.",
            "Can my son be cured?",
            ["nothing_known"],
        ),
        (
            "There is no cure for IBS. However, there are treatments that can help manage symptoms, such as fibre, "
            "peppermint oil and medicines for cramps.",
            "My father has IBS. What can help him?",
            [],  # none of one thing, then an answer
        ),
        (
            "How might cerulean cataracts be treated? No treatment is known to reverse them, sadly.",
            "treat it?",
            ["repeats_question"],
        ),
        (
            "No treatment is known to reverse cerulean cataracts in children or adults.",
            "How are they treated?",
            ["nothing_known"],
        ),
        (
            "Metformin is a medication used to treat type 2 diabetes. It is",
            "What is metformin used for?",
            ["mid_sentence"],
        ),
        (
            "Treatment depends on the cause. Treatment may include: - Antibiotics - Pain medication - Physical therapy",
            "How is bursitis treated?",
            [],  # a list ends without a full stop
        ),
        (
            "Treatment depends on the cause. Treatment may include: - Antibiotics - Pain medication to treat the",
            "How is bursitis treated?",
            ["mid_sentence"],  # an item that stops on a word that needs more
        ),
        (
            'Ask your doctor whether the dose is right for you ("the usual dose is one tablet a day.")',
            "How much should I take?",
            [],  # closing quotes and brackets after the full stop
        ),
        (
            "Symptoms of gout include sudden severe pain, swelling and redness in a joint, often the big toe, and",
            "What are the symptoms of gout?",
            ["mid_sentence"],
        ),
        (
            "Scabies spreads by: - Close contact with an infested person - Sharing clothes, towels or bedding - "
            "Sleeping in the same bed as someone who has it - "
            "Avoiding using towels or blankets when sitting on your feet",
            "How does scabies spread?",
            [],  # the last item of a long list: the item is whole, however long the list before it
        ),
        (
            "Treatment may include: - Rest - Surgery to repair the torn ligament when rest, ice and physical therapy "
            "have not helped over several months of treatment and the knee still gives way",
            "How is a torn ligament treated?",
            ["mid_sentence"],  # an "item" of over 20 words is a sentence, and a sentence ends with its mark
        ),
        (
            "Rest and fluids help most colds. I hope you feel better soon! \U0001f60a\U0001f44d",
            "How do I treat a cold?",
            [],  # emoji after the full stop
        ),
        (
            "Adults need a flu shot every year and a tetanus booster every ten years; the CDC lists the others at "
            "https://www.cdc.gov/vaccines/adults",
            "Which vaccines do adults need?",
            [],  # a link ends whole
        ),
    ],
)
def test_answer_shapes(answer, question, faults):
    from medqa.shape import faults as shape_faults

    assert shape_faults(answer, question) == faults


def test_several_references_take_the_best_and_support_facts_from_any(encoder):
    refs = ["Marfan syndrome is caused by FBN1 mutations.", "It is inherited in an autosomal dominant pattern."]
    pred = "Marfan syndrome is inherited in an autosomal dominant pattern and is caused by FBN1."
    several = per_example([pred], [refs], encoder, ["What causes Marfan syndrome?"])
    alone = {r: per_example([pred], [r], encoder, ["What causes Marfan syndrome?"]) for r in refs}
    for m in ("rougeL", "rouge1", "token_f1", "embed_sim"):
        assert several[m][0] == pytest.approx(max(alone[r][m][0] for r in refs), abs=1e-5)
    assert several["unsupported_facts"][0] == 0.0  # the gene from one, the inheritance from the other
    assert alone[refs[1]]["unsupported_facts"][0] == 1.0


def test_a_report_per_set_and_one_summary(tmp_path):
    from medqa.scoring import score

    run = tmp_path / "run"
    folders = []
    for name, refs in (("test", None), ("mediqa-test", ["a first answer", "iron helps anaemia"])):
        folder = run / "eval" / name
        rows = [
            {"id": str(i), "question": f"q{i} about iron?", "reference": "iron helps anaemia", "prediction": p}
            | ({"references": refs} if refs else {})
            for i, p in enumerate(["iron helps anaemia", "q3 about iron?", "no", "iron helps"])
        ]
        base = [{**r, "prediction": "I do not know."} for r in rows]
        b, t = write_predictions(folder / "base.jsonl", base), write_predictions(folder / "tuned.jsonl", rows)
        (folder / "metrics.json").write_text(json.dumps(score(t, b)))
        (folder / "tuned.meta.json").write_text(json.dumps({"data": [str(tmp_path / name)], "split": "test"}))
        folders.append(folder)
    out = run_main("eval/report.py", *folders, "--run", run)
    assert out.returncode == 0, out.stderr
    summary = (run / "eval" / "report.md").read_text()
    assert summary.count("| metric | base | tuned | delta [95% CI] |") == 2
    assert "## test, test split: 4 questions" in summary and "## mediqa-test, test split: 4 questions" in summary
    assert "4 questions have several reference answers" in summary and "| repeats_question |" in summary
    assert all((f / "report" / "report.md").is_file() for f in folders)
    (folders[1] / "metrics.json").unlink()  # a set not scored: one line, and no report is rewritten
    (folders[0] / "report" / "report.md").unlink()
    out = run_main("eval/report.py", *folders, "--run", run)
    assert out.returncode == 2 and out.stderr.strip().endswith("metrics.json: missing: run make eval again")
    assert not (folders[0] / "report" / "report.md").exists()


def test_scores_against_cleaned_references_leave_link_lists_out(tmp_path):
    from medqa.scoring import score, with_clean_references

    rows = [
        {"id": "1", "question": "What causes foo ?", "reference": "What causes foo? A gene.", "prediction": "A gene."},
        {
            "id": "2",
            "question": "How to treat foo ?",
            "reference": "These resources address foo: - A: b",
            "prediction": "Rest.",
        },
        {"id": "3", "question": "What is bar ?", "reference": "Bar is a rash.", "prediction": "Bar is a rash."},
    ]
    cleaned = with_clean_references(rows)
    assert [r["id"] for r in cleaned] == ["1", "3"] and cleaned[0]["reference"] == "A gene."
    path = write_predictions(tmp_path / "p.jsonl", rows)
    result = score(path, path, clean_refs=True)
    assert result["n"] == 2 and result["left_out"] == 1 and result["metrics"]["rougeL"]["mean"] == pytest.approx(1.0)
    assert score(path)["metrics"]["rougeL"]["mean"] < 0.8  # as published, "What causes foo?" is in the reference


def test_make_eval_answers_and_scores_every_set_of_peoples_questions_apart(tmp_path, tiny_run, monkeypatch, capsys):
    """make eval (eval/evaluate.py, its steps recorded instead of run): the run's split and each prepared set of
    people's questions answered by both models and scored in a folder of its own, one report over all; a set named
    on the command line that is not there is one line and exit 2, a default one missing is a note."""
    import subprocess

    import medqa.cli.evaluate as evaluate

    sets = []
    for name in ("mediqa", "liveqa"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "test.jsonl").write_text("{}\n")
        sets.append(str(tmp_path / name))
    made = subprocess.run(["make", "--no-print-directory", "-n", "eval", "RUN=outputs/r", f"CONSUMER={' '.join(sets)}"],
                          capture_output=True, text=True, cwd=REPO)  # fmt: skip
    words = " ".join(w for w in made.stdout.split() if w != "\\")  # one command, continued over lines
    assert made.returncode == 0 and f"eval/evaluate.py outputs/r --consumer {' '.join(sets)}" in words

    steps = []
    monkeypatch.setattr(evaluate, "run_module", steps.append)
    monkeypatch.setattr("sys.argv", ["eval/evaluate.py", str(tiny_run), "--consumer", *sets])
    evaluate.main()
    for name, data in (("test", []), ("mediqa-test", ["--data", sets[0]]), ("liveqa-test", ["--data", sets[1]])):
        folder = str(tiny_run / "eval" / name)
        for model in ("base", "tuned"):
            assert ["medqa.cli.generate", str(tiny_run), "--model", model, *data] == steps[0][: 4 + len(data)], name
            assert steps.pop(0)[-2:] == ["--out", f"{folder}/{model}.jsonl"]
        assert steps.pop(0) == ["medqa.cli.score", f"{folder}/tuned.jsonl", "--baseline", f"{folder}/base.jsonl",
                                "--out", folder]  # fmt: skip
    assert steps.pop(0)[:4] == ["medqa.cli.report", *(str(tiny_run / "eval" / n) for n in ("test", "mediqa-test",
                                                                                           "liveqa-test"))]  # fmt: skip
    assert steps == []

    monkeypatch.setattr("sys.argv", ["eval/evaluate.py", str(tiny_run), "--consumer", str(tmp_path / "none")])
    with pytest.raises(SystemExit) as stop:
        evaluate.main()
    assert (
        stop.value.code == 2
        and capsys.readouterr().err
        == f"error: {tmp_path / 'none'}/test.jsonl: no such file (a folder from make data)\n"
    )
    monkeypatch.chdir(tmp_path)  # no data/mediqa, data/liveqa here: the defaults are left out with a note
    monkeypatch.setattr("sys.argv", ["eval/evaluate.py", str(tiny_run)])
    evaluate.main()
    assert "note: data/mediqa/test.jsonl not there" in capsys.readouterr().out


def test_the_rehearsal_set_keeps_the_base_answers_that_hold_up():
    from medqa.generation import Answer
    from medqa.rehearsal import select

    rows = [
        {"id": str(i), "question": q, "answer": ref, "source": "LiveQA"}
        for i, (q, ref) in enumerate(
            [
                ("What causes gout? How is it treated?", "Uric acid crystals. Drugs that lower uric acid."),
                ("What causes gout? How is it treated?", "Uric acid crystals."),
                ("What causes gout?", "Uric acid crystals."),
                ("What causes gout?", "Uric acid crystals."),
                ("What causes gout?", "Uric acid crystals."),
            ]
        )
    ]
    answers = [
        Answer("Gout is caused by uric acid. It is treated with drugs that lower uric acid.", 20, "end"),
        Answer("Gout is caused by uric acid crystals in a joint, and diet plays a part in it.", 20, "end"),  # half
        Answer("Gout is caused by 7 kinds of acid in the joints of the feet and the hands.", 20, "end"),
        Answer("Gout is caused by uric acid crystals in the joints, and it is very common in", 256, "length"),
        Answer("What causes gout?", 5, "end"),
    ]
    kept, left_out = select(rows, answers)
    assert [r["id"] for r in kept] == ["0", "1"]
    assert kept[0]["answer"] == answers[0].text and kept[0]["answer_original"] == rows[0]["answer"]
    assert kept[0]["source"] == "rehearsal: LiveQA"
    assert left_out == {"cut by the token cap": 1, "repeats_question": 1, "unsupported fact": 1}


def test_questions_without_references_are_scored_on_what_needs_none(tmp_path, encoder):
    """K-QA's patients' questions have no answers: how an answer ends, loops, its shape and coverage are measured;
    overlap and facts are not (NaN, left out of the mean), and the report's tables still come out."""
    from medqa.report import endings_table, metrics_table
    from medqa.scoring import score

    answers = [
        ("Is it contagious?", "Yes. Strep throat spreads through droplets when an infected person coughs.", "end"),
        ("Can I take Pepto?", "Pepto-Bismol is a medication used to treat upset stomach. It is", "length"),
        ("Is it contagious?", "It is not contagious. " * 6, "end"),
    ]
    rows = [
        {"id": f"kqa-{i}", "question": q, "reference": "", "prediction": p, "new_tokens": 9,
         "hit_max_new_tokens": stop == "length", "stop": stop}
        for i, (q, p, stop) in enumerate(answers)
    ]  # fmt: skip
    base = write_predictions(
        tmp_path / "base.jsonl", [{**r, "stop": "length", "hit_max_new_tokens": True} for r in rows]
    )
    result = score(write_predictions(tmp_path / "tuned.jsonl", rows), base, encoder=encoder)
    m = result["metrics"]
    for name in ("rougeL", "token_f1", "embed_sim", "unsupported_facts", "invented_numbers"):
        assert m[name]["mean"] is None and m[name]["n"] == 0
    assert m["ended"]["mean"] == pytest.approx(2 / 3) and m["hit_max_new_tokens"]["mean"] == pytest.approx(1 / 3)
    assert m["mid_sentence"]["mean"] == pytest.approx(1 / 3) and m["loop_rate"]["mean"] == pytest.approx(1 / 3)
    assert m["coverage"]["mean"] is not None
    assert result["delta"]["ended"]["mean"] == pytest.approx(2 / 3)  # the base: every answer cut by the cap
    table = "\n".join(endings_table(result))
    assert "| ended by the model itself | 0.0% [0.0%, 0.0%] | 66.7% [" in table and "ends mid-sentence" in table
    assert not any("rougeL" in line for line in metrics_table(result, {}))  # what does not apply is left out
