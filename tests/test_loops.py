"""Where an answer starts to loop: by hand, and the stopping criterion against the same cut made afterwards (on the
tiny model made to write a cycle; on the embedded model's own greedy answers with MEDQA_FULL=1)."""

import os

import pytest
import torch
from conftest import EMBEDDED_MODEL

from medqa.loops import LoopWatch, cut_loop, has_loop, loop_cut


def test_a_block_written_again_right_after_itself_is_a_loop():
    text = "Iron helps. It carries oxygen in the blood. It carries oxygen in the blood. It carries"
    assert cut_loop(text) == ("Iron helps. It carries oxygen in the blood.", True)
    assert loop_cut("A B C D a b c d") == len("A B C D ")  # words compare lower-cased


def test_short_repeats_need_more_copies():
    assert loop_cut("very " * 6) is None and loop_cut("very " * 7) == len("very ")  # 4 words written a 4th time
    assert loop_cut("a b a b a b a") is None and loop_cut("a b a b a b a b") == len("a b ")
    assert loop_cut("x y z x y z x") is None and loop_cut("x y z x y z x y") == len("x y z ")


def test_lists_and_recurring_phrases_are_not_loops():
    table = "Abnormality of the eye 90% Abnormality of the skin 90% Abnormality of the liver 50% "
    assert loop_cut(table) is None
    prose = "The disease is inherited. The disease is rare. The disease is treated with diet and exercise."
    assert loop_cut(prose) is None
    assert cut_loop("Nothing repeats here at all.") == ("Nothing repeats here at all.", False)


def test_a_phrase_written_a_fourth_time_is_a_loop_cut_where_it_first_came_back():
    text = " ".join(f"It is more common in men older than {age}." for age in (65, 55, 45, 40, 30))
    assert has_loop(text)
    assert cut_loop(text) == ("It is more common in men older than 65.", True)
    three = " ".join(f"It is more common in men older than {age}." for age in (65, 55, 45))
    assert cut_loop(three) == (three, False)  # three times is not yet a loop, for the scorer either
    assert not has_loop(three)


def test_a_cut_answer_never_loops_by_the_scorers_count():
    import random

    rng = random.Random(0)
    vocab = "the a disease gene is rare common of in and causes".split()
    for _ in range(300):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 120)))
        cut, looped = cut_loop(text)
        assert not has_loop(cut) and looped == (cut != text)


def test_the_first_loop_to_complete_is_cut():
    text = "one two three four one two three four five five five five five five five five"
    assert loop_cut(text) == len("one two three four ")
    watch = LoopWatch()
    found = [watch.add(w) for w in text.split()]
    assert found.index(4) == 7 and all(f is None for f in found[:7])  # complete at the 8th word, cut at the 5th


QUESTIONS = [  # the embedded model loops on some of these under greedy decoding within 256 tokens
    "What is the outlook for lung cancer?",
    "How can colon cancer be prevented?",
    "What is the outlook for stomach cancer?",
    "How to prevent skin cancer?",
]


class Scripted:
    """A logits processor that makes every row write its own script of words, one token each: a row whose prompt
    holds `loop_id` writes a cycle, the others words that never come back."""

    def __init__(self, tok, loop_id: int):
        self.loop_id, self.width = loop_id, None
        self.cycle = [tok.encode(f" {w}")[0] for w in ("lungs", "heart", "blood", "skin", "bone")]
        self.fresh = [
            t for t in range(1000, 6000) if tok.decode([t]).startswith(" ") and tok.decode([t]).strip().isalpha()
        ]

    def __call__(self, input_ids, scores):
        self.width = self.width or input_ids.shape[1]
        step = input_ids.shape[1] - self.width
        forced = torch.full_like(scores, float("-inf"))
        for row, ids in enumerate(input_ids[:, : self.width].tolist()):
            script = self.cycle if self.loop_id in ids else self.fresh
            forced[row, script[step % len(script)]] = 0.0
        return forced


def answers_and_stops(model, tok, questions, settings):
    """generate_answers on `model` made to follow Scripted (a fresh one each call)."""
    from transformers import LogitsProcessorList

    from medqa.generation import generate_answers

    generate = model.generate
    loop_id = tok.encode(" loop")[0]

    def scripted(*args, **kwargs):
        return generate(*args, **kwargs, logits_processor=LogitsProcessorList([Scripted(tok, loop_id)]))

    model.generate = scripted
    try:
        return generate_answers(model, tok, questions, settings, progress=False)
    finally:
        model.generate = generate


def test_stopping_at_a_loop_is_the_answer_cut_there(tiny_model):
    """The stopping criterion ends the generation of an answer that loops, and its text is the uncut answer cut by
    the rule afterwards; an answer that does not loop runs to the cap, untouched."""
    from medqa.decoding import GenerationSettings
    from medqa.inference import load_model

    model, tok = load_model(str(tiny_model))
    questions = ["Does this answer loop?", "Does this one end?", "And will this loop too?"]
    greedy = GenerationSettings(max_new_tokens=48, stop_on_loop=False, batch_size=3)
    plain = answers_and_stops(model, tok, questions, greedy)
    stopped = answers_and_stops(model, tok, questions, GenerationSettings(**{**vars(greedy), "stop_on_loop": True}))
    cuts = [cut_loop(a.text) for a in plain]
    assert [looped for _, looped in cuts] == [True, False, True]
    assert [s.text for s in stopped] == [text for text, _ in cuts]
    assert [s.stop for s in stopped] == ["loop", "length", "loop"] and not any(has_loop(s.text) for s in stopped)
    assert stopped[0].text.split() == ["lungs", "heart", "blood", "skin", "bone"]
    assert stopped[0].new_tokens < plain[0].new_tokens == 48 and stopped[1].new_tokens == plain[1].new_tokens == 48


@pytest.mark.skipif(not os.environ.get("MEDQA_FULL"), reason="opt-in (MEDQA_FULL=1): the embedded model, ~2 min")
def test_stopping_at_a_loop_is_the_greedy_answer_cut_there():
    from medqa.decoding import GenerationSettings
    from medqa.generation import generate_answers
    from medqa.inference import load_model

    model, tok = load_model(str(EMBEDDED_MODEL))
    greedy = GenerationSettings(max_new_tokens=256, stop_on_loop=False, batch_size=4)
    plain = generate_answers(model, tok, QUESTIONS, greedy, progress=False)
    stopped = generate_answers(
        model, tok, QUESTIONS, GenerationSettings(**{**vars(greedy), "stop_on_loop": True}), False
    )
    cuts = [cut_loop(a.text) for a in plain]
    assert [s.text for s in stopped] == [text for text, _ in cuts]
    assert [s.stop == "loop" for s in stopped] == [looped for _, looped in cuts]
    assert not any(has_loop(s.text) for s in stopped)
    assert any(looped for _, looped in cuts) and not all(looped for _, looped in cuts)
    for s, p in zip(stopped, plain, strict=True):  # a loop ends the generation, not only the text
        assert s.new_tokens <= p.new_tokens if s.stop == "loop" else s.new_tokens == p.new_tokens
    assert sum(s.new_tokens for s in stopped) < sum(p.new_tokens for p in plain)


WORDS = {1: " lungs", 2: " heart", 3: " blood", 4: " skin", 5: " bone", 6: " </s>", 9: "<end>"}


def decode(ids):
    return "".join(WORDS[i] for i in ids if i != 9)


@pytest.mark.parametrize(
    "tokens,cap,stop,stop_on_loop,expected",
    [
        ([1, 2, 3, 9, 4, 4], 6, None, True, ("lungs heart blood", 4, "end")),  # the end-of-turn token ends it
        ([1, 2, 3, 4, 5, 1], 6, None, True, ("lungs heart blood skin bone lungs", 6, "length")),  # to the cap
        ([1, 2, 3], 8, None, True, ("lungs heart blood", 3, "end")),  # stopped before the cap: the model ended it
        ([1, 2, 6, 3, 9], 8, "</s>", True, ("lungs heart", 5, "end")),  # the template's stop text
        ([1, 2, 3, 4, 1, 2, 3, 4], 8, None, True, ("lungs heart blood skin", 8, "loop")),  # a block written twice
        ([1, 2, 3, 4, 1, 2, 3, 4], 8, None, False, ("lungs heart blood skin lungs heart blood skin", 8, "length")),
    ],
)
def test_where_one_answer_ends(tokens, cap, stop, stop_on_loop, expected):
    """medqa.generation.finish: the end/stop/loop/length rule for one answer, from its new tokens alone."""
    from medqa.generation import finish

    answer = finish(tokens, decode, {9}, stop, max_new_tokens=cap, stop_on_loop=stop_on_loop)
    assert (answer.text, answer.new_tokens, answer.stop) == expected
