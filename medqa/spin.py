"""Preference pairs from a run (self-play fine-tuning, SPIN: Chen et al. 2024, "Self-Play Fine-Tuning Converts
Weak Language Models to Strong Language Models"): for a training question, the reference answer is chosen and
the run's own greedy answer is rejected, so that a preference stage (`rl: dpo`) moves the model from what it
writes (loops, made-up names and numbers, answers that do not end) towards what the references write.

Rows hold the prompt and both answers as the run's chat template writes them, as text: TRL tokenises prompt +
answer as one text, so a pair's tokens are those of the run's own training examples.
"""

from __future__ import annotations

from medqa import prompts
from medqa.generation import GenerationSettings

# the rejected answer: what the run writes by itself, plain greedy (no loop cut, no n-gram rule)
GREEDY = GenerationSettings(no_repeat_ngram_size=0, stop_on_loop=False)


def pairs(tokenizer, rows: list[dict], answers: list[str]) -> tuple[list[dict], int]:
    """{"id", "prompt", "chosen", "rejected"} for each row whose greedy answer differs from its reference; also
    the number of rows left out because the two are the same."""
    before, after = prompts.answer_frame(tokenizer)
    out, same = [], 0
    for row, answer in zip(rows, answers, strict=True):
        if answer.strip() == row["answer"].strip():
            same += 1
            continue
        out.append(
            {
                "id": row["id"],
                "prompt": prompts.prompt_text(tokenizer, row["question"]),
                "chosen": before + row["answer"] + after,
                "rejected": before + answer + after,
            }
        )
    return out, same
