"""Merge a run's adapter into a standalone Hugging Face model (no adapter files, no project code to load it).

    python scripts/merge.py outputs/<run> [--out outputs/<run>/merged]

The weights are those `make eval` scores: the adapter merged (peft) into the dequantised NF4 weights it was trained
against. The folder also holds the run's tokenizer, whose chat template is the training prompt, a generation config
with `make eval`'s decoding that stops at the end-of-turn token, the run's recipe and a model card. An existing
folder is refused.
"""

import argparse
from pathlib import Path

from medqa.cli import command
from medqa.lock import lock_for
from medqa.publish import merge
from medqa.runs import Run


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by make finetune")
    parser.add_argument("--out", type=Path, default=None, help="default: RUN/merged")
    args = parser.parse_args()
    run = Run.open(args.run)
    out = args.out or run.path / "merged"
    with lock_for(run.path, out):  # one writer for each run folder
        out = merge(run, out)
    print(f"{out}: merged model (AutoModelForCausalLM.from_pretrained('{out}'))")


if __name__ == "__main__":
    main()
