"""Ask a fine-tuned run a question of your own, with the run's prompt and `make eval`'s decoding (one question at a
time, no compilation: the options below).

    python scripts/ask.py outputs/<run> -q "What are the symptoms of iron deficiency anemia?"
    python scripts/ask.py outputs/<run>          # one question a line; an empty line or Ctrl-D ends

Not medical advice: the answers of a small model are fluent and often wrong.
"""

import argparse
import sys
from pathlib import Path

from medqa.cli import command
from medqa.decoding import GenerationSettings, add_arguments, from_arguments
from medqa.generation import generate_answers
from medqa.runs import Run


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by make finetune")
    parser.add_argument("-q", "--question", default=None, help="one question (default: read them from stdin)")
    add_arguments(parser, GenerationSettings(batch_size=1, cache="dynamic"))  # one question: no compile wait
    args = parser.parse_args()
    run = Run.open(args.run)
    model, tokenizer = run.load_model("merged")
    settings = from_arguments(args)

    def answer(question: str) -> str:
        return generate_answers(model, tokenizer, [question], settings, progress=False)[0].text

    if args.question:
        print(answer(args.question))
        return
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("question> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            break
        print(answer(line.strip()) + "\n", flush=True)


if __name__ == "__main__":
    main()
