"""Where things are, by default: every path relative to the repository's root, where `make` runs (nothing here works
out where the checkout is, so the package runs the same from an installed wheel). Each default path is written here
once; commands take their options' defaults from here and the Makefile passes only what the user gave."""

from __future__ import annotations

from pathlib import Path

RECIPES = Path("recipes")
RECIPE = RECIPES / "smollm2-135m" / "qlora.yml"  # make finetune's default; what a machine without CUDA can train
FLAGSHIP = RECIPES / "llama2-7b" / "qlora.yml"  # the 7B recipe (make bench and make scale-check measure it)
ACCELERATE = RECIPES / "accelerate"  # the launch configs: one GPU, DDP, DeepSpeed ZeRO-2
TEMPLATES = RECIPES / "templates"
MODEL = Path("models") / "SmolLM2-135M-Instruct"  # the embedded base model `make setup` builds

DATA = Path("data")
SEED_DATA = DATA / "medqa"  # the seed's 5,000 MedQuAD rows, not cleaned (the flagship's seed.yml)
ALL_DATA = DATA / "medqa-all"  # every MedQuAD row, cleaned: what the recipes train on beside people's questions
LIVEQA = DATA / "liveqa"
MEDIQA = DATA / "mediqa"
KQA = DATA / "kqa"
KQA_GOLDEN = DATA / "kqa-golden"
PEOPLE = (MEDIQA, LIVEQA, KQA_GOLDEN, KQA)  # make eval's sets of people's questions
DEMO_INPUT = DATA / "sample" / "medqa_demo.csv"  # the project's own demo set (not medical advice)
DEMO_DATA = DATA / "demo"  # the sets of people's questions `make eval` answers beside the run's own split

SHARED = Path("../shared/data")  # the data beside the checkout (read only; never copied into the repository)
MEDQUAD_FILE = SHARED / "medquad" / "medquad_qa.csv"
LIVEQA_FILE = SHARED / "consumer" / "liveqa_train.csv"
MEDIQA_FILE = SHARED / "consumer" / "mediqa_qa.csv"
KQA_FILE = SHARED / "consumer" / "kqa_questions.jsonl"
KQA_GOLDEN_FILE = SHARED / "consumer" / "kqa_golden_dev.jsonl"
BENCHMARKS = SHARED / "benchmarks"

OUTPUTS = Path("outputs")
DEMO_RUN = OUTPUTS / "demo"
LEVERS = OUTPUTS / "levers"  # the lever runner's work folders
RESULTS = Path("results")  # every committed result
BENCH_RESULTS = RESULTS / "bench"
