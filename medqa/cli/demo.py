"""The whole pipeline on a CPU in minutes (make demo): the project's demo set (or your file) prepared, a short 4-bit
QLoRA run of the embedded recipe through Axolotl, then base and tuned answers to a few held-out questions, side by
side.

    python scripts/demo.py [--input FILE] [-n 4]

Writes data/demo and outputs/demo (both replaced). The run is `make finetune`'s, in a process of its own, with the
settings below that make it short.
"""

import argparse
import shutil
import textwrap
from pathlib import Path

from medqa import paths
from medqa.cli import command, run_module
from medqa.cli.prepare_data import say
from medqa.data import prepare, read_jsonl
from medqa.decoding import GenerationSettings, add_arguments, from_arguments
from medqa.errors import UserError
from medqa.generation import generate_answers
from medqa.inference import load_model
from medqa.runs import Run


def show(label: str, text: str, width: int = 100) -> None:
    body = textwrap.fill(text or "(empty)", width=width, initial_indent="    ", subsequent_indent="    ")
    print(f"  {label}:\n{body}")


# a run short enough for two CPU cores: 200 rows, 6 epochs of 256-token sequences
DEMO_ROWS = 200
DEMO_SET = ["num_epochs=6", "sequence_len=256", "micro_batch_size=2", "learning_rate=1e-3", "save_steps=5",
            "eval_steps=5"]  # fmt: skip


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=None, help=f"a Q/A file of your own (default {paths.DEMO_INPUT})")
    parser.add_argument("-n", type=int, default=4, help="how many test questions")
    add_arguments(parser, GenerationSettings(max_new_tokens=96))  # short answers: the demo runs on a CPU
    args = parser.parse_args()
    source = args.input or paths.DEMO_INPUT
    manifest = prepare(source, paths.DEMO_DATA, limit=DEMO_ROWS, val_fraction=0.1, test_fraction=0.1)
    say(source, paths.DEMO_DATA, manifest)
    shutil.rmtree(paths.DEMO_RUN, ignore_errors=True)
    argv = [
        "medqa.cli.finetune",
        str(paths.RECIPE),
        "--data",
        str(paths.DEMO_DATA),
        "--output-dir",
        str(paths.DEMO_RUN),
    ]
    run_module([*argv, *(a for kv in DEMO_SET for a in ("--set", kv))])
    side_by_side(Run.open(paths.DEMO_RUN), paths.DEMO_DATA, args.n, from_arguments(args))


def side_by_side(run: Run, data: Path, n: int, settings: GenerationSettings) -> None:
    """Base and tuned answers to the first n test questions of `data`, with their references."""
    rows = read_jsonl(data / "test.jsonl")[:n]
    if not rows:
        raise UserError(data / "test.jsonl", "no test questions")
    questions = [r["question"] for r in rows]
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
