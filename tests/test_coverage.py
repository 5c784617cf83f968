"""How much of a question an answer addresses (medqa.coverage): the parts a person's message asks, and whether an
answer takes each up by its terms or by meaning; an answer that says the question back addresses nothing."""

import numpy as np
import pytest

from medqa.coverage import coverage, parts


def test_the_parts_of_a_message_are_what_it_asks():
    message = (
        "Arthritis and HNPP. My mother is 60. How do symptoms of arthritis differ from onset of HNPP, and what are the "
        "treatments for these respective disorders?"
    )
    assert parts(message) == [
        "How do symptoms of arthritis differ from onset of HNPP",
        "what are the treatments for these respective disorders?",
    ]
    assert parts("chickenpox. Is there a blood test available? And if not which vaccine should I get?") == [
        "Is there a blood test available?",
        "And if not which vaccine should I get?",
    ]
    assert parts("What are the symptoms of Down syndrome ?") == ["What are the symptoms of Down syndrome ?"]
    assert parts("obesity. I need to lose fat") == ["I need to lose fat"]  # asks in so many words


QUESTION = "Gout. What causes gout? And how is gout treated?"
BOTH = "Gout is caused by too much uric acid in the blood. It is treated with drugs that lower uric acid and with rest."
ONE = "Gout is caused by too much uric acid in the blood, which forms crystals in a joint."


def test_an_answer_that_takes_up_every_part_covers_the_question_one_that_takes_up_one_half():
    covered, asked = coverage([QUESTION, QUESTION, QUESTION], [BOTH, ONE, "Bananas are yellow."])
    assert list(asked) == [2, 2, 2]
    assert list(covered) == [1.0, 0.5, 0.0]


def test_saying_the_question_back_addresses_nothing():
    echoed = "What causes gout? And how is gout treated?"
    covered, _ = coverage([QUESTION], [echoed])
    assert covered[0] == 0.0


class Encoder:
    """A stand-in sentence embedder: texts that name the same 'topic word' point the same way."""

    def encode(self, texts, **kwargs):
        topics = ("medicine", "colchicine", "bananas")
        vectors = np.array([[float(t in text.lower()) for t in topics] + [0.1] for text in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_part_is_taken_up_by_meaning_where_its_words_are_not_there():
    question = "Which medicine helps?"
    answer = "Colchicine and other medicine can ease an attack."  # "helps" is not there, the meaning is
    assert coverage([question], ["Bananas are yellow."], Encoder())[0][0] == 0.0
    assert coverage([question], [answer], Encoder())[0][0] == 1.0


@pytest.mark.parametrize("question", ["", "?", "Thank you!"])
def test_a_question_with_nothing_to_ask_is_one_part(question):
    covered, asked = coverage([question], ["Something."])
    assert asked[0] == 1 and 0.0 <= covered[0] <= 1.0
