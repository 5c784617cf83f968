"""Answers before and after fine-tuning, side by side, for a few held-out questions.

python scripts/demo.py outputs/demo --data data/demo -n 4
"""

import argparse
import textwrap
from pathlib import Path

from medqa.cli import command
from medqa.data import read_jsonl
from medqa.decoding import GenerationSettings, add_arguments, from_arguments
from medqa.errors import UserError
from medqa.generation import generate_answers
from medqa.inference import load_model
from medqa.runs import Run


def show(label: str, text: str, width: int = 100) -> None:
    body = textwrap.fill(text or "(empty)", width=width, initial_indent="    ", subsequent_indent="    ")
    print(f"  {label}:\n{body}")


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by make finetune")
    parser.add_argument("--data", type=Path, required=True, help="prepared data folder (its test.jsonl is used)")
    parser.add_argument("-n", type=int, default=4, help="how many test questions")
    add_arguments(parser, GenerationSettings(max_new_tokens=96))  # short answers: the demo runs on a CPU
    args = parser.parse_args()

    run = Run.open(args.run)
    rows = read_jsonl(args.data / "test.jsonl")[: args.n]
    if not rows:
        raise UserError(args.data / "test.jsonl", "no test questions")
    questions = [r["question"] for r in rows]
    settings = from_arguments(args)
    answers = {}
    for label in ("base", "tuned"):
        if label == "tuned":
            model, tokenizer = run.load_model()
        else:  # the base in its own template, as make eval asks it
            model, tokenizer = load_model(run.base_model, dtype=run.dtype)
            tokenizer.chat_template = tokenizer.chat_template or run.tokenizer().chat_template
        answers[label] = [a.text for a in generate_answers(model, tokenizer, questions, settings, False)]
        del model
    print(
        f"\n== {run.base_model}: base vs tuned ({run.path}), {len(rows)} held-out questions "
        "(demo data, not medical advice) =="
    )
    for i, row in enumerate(rows):
        print(f"\n[{i + 1}] Q: {row['question']}")
        show("reference", row["answer"])
        show("base", answers["base"][i])
        show("tuned", answers["tuned"][i])


if __name__ == "__main__":
    main()
