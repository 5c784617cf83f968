"""Benchmark the preference stage (make dpo) at a model's shape, random weights: FactTune's pairs and DPO.

    python scripts/bench_dpo.py --make-model llama2-7b --model /tmp/medqa-llama2-7b-random

A first stage of the model's first recipe is made on the random model (medqa_lab/bench/preference.py); its pairs are
timed with scripts/pairs.py on --questions training questions (FactTune: 4 answers sampled each), and the model's
preference recipe (recipes/<model>/dpo.yml) trains --steps DPO steps from it as make dpo starts it, metered (steps
a second, peak memory). Writes the `preference` section of results/bench/<date>-<gpu>.json and .md.
"""

import argparse
from pathlib import Path

from medqa import paths
from medqa.cli import command
from medqa.errors import UserError
from medqa_lab.bench.preference import data_pairs, dpo_table, first_stage, time_dpo, time_pairs
from medqa_lab.bench.random_model import add_model_arguments, model_from
from medqa_lab.bench.report import write_section

RECIPES = {shape: paths.RECIPES / shape for shape in ("llama2-7b", "smollm2-135m")}


@command
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--shape", choices=sorted(RECIPES), default="llama2-7b", help="whose recipes to run")
    parser.add_argument("--data", type=Path, default=paths.ALL_DATA)
    parser.add_argument("--out", type=Path, default=paths.BENCH_RESULTS)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: OUT/work-dpo)")
    parser.add_argument("--questions", type=int, default=100, help="training questions FactTune samples for")
    parser.add_argument("--pairs", type=int, default=200, help="DPO rows to train on")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if not (args.data / "train.jsonl").is_file():
        raise UserError(args.data / "train.jsonl", "no such file (run `make data` first)")
    shape = model_from(args) or args.shape
    import torch
    from transformers import AutoTokenizer

    work = args.work or args.out / "work-dpo"
    folder = Path(RECIPES[shape])
    run = first_stage(folder / "qlora.yml", args.model, args.data, work / "run")
    pairs = time_pairs(run, args.questions, work / "pairs-facttune")
    tokenizer = AutoTokenizer.from_pretrained(run)
    rows = data_pairs(tokenizer, args.data, work / "pairs", args.pairs, 256)
    dpo = time_dpo(folder / "dpo.yml", run, rows, work / "dpo", args.steps, args.overrides)
    row = {"shape": shape, "recipe": str(folder / "dpo.yml"), "pairs": pairs, "dpo": dpo}
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    stem = write_section(args.out, gpu, "preference", {"rows": [row]}, dpo_table([row]))
    print(f"wrote {stem}.md and .json")
    print(dpo_table([row]))


if __name__ == "__main__":
    main()
