"""Preference pairs by rule, on hand-made answers: SPIN's, those aimed at fidelity, and FactTune's on-policy ones."""

import pytest
from conftest import EMBEDDED_MODEL, REPO

from medqa.generation import Answer
from medqa.preference import ended_before_trouble, fidelity_score, make_pairs
from medqa.prompts import recipe_tokenizer
from medqa.recipe import load_recipe

ROW = {
    "id": "row-1",
    "question": "What causes Marfan syndrome ?",
    "answer": "Mutations in the FBN1 gene cause Marfan syndrome. It is inherited in an autosomal dominant pattern.",
}
GOOD = "Marfan syndrome is caused by mutations in the FBN1 gene. It is inherited in an autosomal dominant pattern."
WRONG = (
    "Marfan syndrome is a disorder of the connective tissue in the body. It is caused by mutations in the FBN2 gene."
)
LOOPING = "Marfan syndrome affects the body. " + "It affects the eyes and the heart. " * 6


@pytest.fixture(scope="module")
def tok():
    return recipe_tokenizer({**load_recipe(REPO / "recipes/smollm2-135m/qlora.yml"), "base_model": str(EMBEDDED_MODEL)})


def test_fidelity_score_counts_problems_first_then_supported_facts():
    q, ref = ROW["question"], ROW["answer"]
    assert fidelity_score(GOOD, "end", q, ref) == (0, 2)
    assert fidelity_score(WRONG, "end", q, ref) == (-1, 0)
    assert fidelity_score(LOOPING, "length", q, ref) == (-3, 0)  # a loop counts twice, the cap once
    assert fidelity_score(GOOD, "length", q, ref) < fidelity_score(GOOD, "end", q, ref)


def test_an_answer_is_ended_before_the_sentence_that_goes_wrong():
    q, ref = ROW["question"], ROW["answer"]
    assert ended_before_trouble(GOOD, q, ref) is None
    assert ended_before_trouble(WRONG, q, ref) == "Marfan syndrome is a disorder of the connective tissue in the body."
    assert ended_before_trouble(LOOPING, q, ref).startswith("Marfan syndrome affects the body. It affects")
    assert ended_before_trouble("It is caused by the FBN2 gene.", q, ref) == ref  # nothing left: the reference


def test_pairs_by_rule(tok):
    spin, none = make_pairs(tok, "spin", [ROW], [[Answer(WRONG, 30, "end")]])
    assert none == 0 and spin[0]["chosen"] == f" {ROW['answer']}<|im_end|>" and WRONG in spin[0]["rejected"]
    assert spin[0]["prompt"].endswith("What causes Marfan syndrome ? [/INST]") and spin[0]["rule"] == "spin"
    fidelity, _ = make_pairs(tok, "fidelity", [ROW, ROW], [[Answer(WRONG, 30, "end")], [Answer(GOOD, 30, "end")]])
    assert (
        len(fidelity) == 1
        and fidelity[0]["chosen"] == " Marfan syndrome is a disorder of the connective tissue in the body.<|im_end|>"
    )
    samples = [Answer(LOOPING, 256, "length"), Answer(GOOD, 30, "end"), Answer(WRONG, 30, "end")]
    facttune, _ = make_pairs(tok, "facttune", [ROW], [samples])
    assert facttune[0]["chosen"] == f" {GOOD}<|im_end|>" and facttune[0]["rejected"] == f" {LOOPING.strip()}<|im_end|>"
    same, none = make_pairs(tok, "facttune", [ROW], [[Answer(GOOD, 30, "end"), Answer(GOOD, 30, "end")]])
    assert same == [] and none == 1  # no preference where the samples are equally faithful
    with pytest.raises(ValueError, match="rule"):
        make_pairs(tok, "nope", [ROW], [[Answer(GOOD, 30, "end")]])


def test_shape_pairs_reject_echoed_empty_and_nothing_known_answers(tok):
    row = {"id": "r", "question": "What are the treatments for Marfan syndrome ?", "answer": GOOD}
    echoed = Answer("What are the treatments for Marfan syndrome? Marfan syndrome is treated.", 20, "end")
    empty = Answer("It is rare.", 4, "end")
    nothing = Answer(
        "There is no known treatment for Marfan syndrome, and more research on it is needed now.", 20, "end"
    )
    pairs, none = make_pairs(tok, "shape", [row] * 4, [[echoed], [empty], [nothing], [Answer(GOOD, 30, "end")]])
    assert none == 1 and len(pairs) == 3  # a good answer gives no pair
    assert all(p["chosen"] == f" {GOOD}<|im_end|>" and p["rule"] == "shape" for p in pairs)
    assert [p["rejected"] for p in pairs] == [f" {a.text}<|im_end|>" for a in (echoed, empty, nothing)]


def test_the_ends_rule_prefers_an_answer_that_ends_and_answers_over_a_short_or_cut_one(tok):
    from medqa.preference import ending_score

    q, ref = ROW["question"], ROW["answer"]
    cut = "Marfan syndrome is caused by mutations in the FBN1 gene. It is inherited in an"
    short = "Marfan syndrome is a genetic condition."
    assert ending_score(GOOD, "end", q, ref) > ending_score(cut, "length", q, ref)  # the cap, mid-sentence
    assert ending_score(GOOD, "end", q, ref) > ending_score(LOOPING, "end", q, ref)  # a loop, even if ended
    assert ending_score(GOOD, "end", q, ref) > ending_score(WRONG, "end", q, ref)  # FBN2: a fact the reference lacks
    assert ending_score(GOOD, "end", q, ref) > ending_score(short, "end", q, ref)  # under 12 words: a fault of shape
    longer = GOOD + " Signs include tall stature, long arms and a dislocated lens."
    assert ending_score(longer, "end", q, ref)[0] == ending_score(GOOD, "end", q, ref)[0]  # more words: no penalty
    samples = [Answer(cut, 256, "length"), Answer(GOOD, 40, "end"), Answer(LOOPING, 256, "length")]
    ends, none = make_pairs(tok, "ends", [ROW], [samples])
    assert none == 0 and ends[0]["chosen"] == f" {GOOD}<|im_end|>" and ends[0]["rule"] == "ends"
    assert ends[0]["rejected"] == f" {LOOPING.strip()}<|im_end|>"  # the worst: capped and looping
    same, none = make_pairs(tok, "ends", [ROW], [[Answer(GOOD, 30, "end"), Answer(GOOD, 30, "end")]])
    assert same == [] and none == 1
    bad, none = make_pairs(tok, "ends", [ROW], [[Answer(cut, 256, "length"), Answer(LOOPING, 256, "length")]])
    assert bad == [] and none == 1  # no clean answer among the samples: no pair that teaches another fault


def test_the_covers_rule_rejects_the_answer_that_leaves_most_of_the_question_unanswered(tok):
    row = {
        "id": "row-2",
        "question": "What causes Marfan syndrome? How is it treated?",
        "answer": ROW["answer"] + " Treatment includes beta blockers and surgery to repair the aorta.",
    }
    both = GOOD + " It is treated with beta blockers, and surgery repairs the aorta."
    cause_only = GOOD  # clean, but leaves the treatment unanswered
    cut = "Marfan syndrome is treated with beta blockers, and surgery may be needed to repair the"
    samples = [Answer(cause_only, 30, "end"), Answer(both, 40, "end"), Answer(cut, 256, "length")]
    covers, none = make_pairs(tok, "covers", [row], [samples])
    assert none == 0 and covers[0]["rule"] == "covers"
    assert covers[0]["chosen"] == f" {both}<|im_end|>"  # clean and addresses both parts: what ends would choose too
    assert covers[0]["rejected"] == f" {cause_only}<|im_end|>"  # one part of two; ends rejects the cut one
    ends, _ = make_pairs(tok, "ends", [row], [samples])
    assert ends[0]["chosen"] == covers[0]["chosen"] and ends[0]["rejected"] == f" {cut}<|im_end|>"
    capped = [Answer(cut, 256, "length"), Answer(cut + " aorta", 256, "length")]
    flawed, none = make_pairs(tok, "covers", [row], [capped])
    assert flawed == [] and none == 1  # no clean answer: no pair


def test_pair_questions_are_taken_in_turn_from_each_source():
    from medqa.cli.pairs import in_turn

    medquad = [{"id": f"m{i}"} for i in range(5)]
    people = [{"id": "p0"}, {"id": "p1"}]
    assert [r["id"] for r in in_turn([medquad, people], 6)] == ["m0", "p0", "m1", "p1", "m2", "m3"]
    assert [r["id"] for r in in_turn([medquad], 2)] == ["m0", "m1"] and in_turn([[], []], 3) == []
