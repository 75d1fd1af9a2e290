# Document Processing Gateway — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast browser compose-test lint docs bench mutation clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install the project with its test tools

run: $(STAMP) ## Run API, worker, relay, consumer and Flower in the foreground (Ctrl-C stops all)
	$(BIN)/python -m gateway.launcher

test: $(STAMP) ## Run the whole suite against real PostgreSQL and Redis
	$(BIN)/pytest

test-fast: $(STAMP) ## The suite without the slow end-to-end tests (crashes, restarts, make run)
	$(BIN)/pytest -m 'not slow'

browser: ## Install Debian's Chromium for the browser tests (root; they skip without it)
	@dpkg -s chromium chromium-driver >/dev/null 2>&1 || { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@chromium --version 2>/dev/null

compose-test: ## Start docker-compose.yml on a private Docker engine and exercise it (root; deploy/)
	bash deploy/test-compose.sh

lint: $(STAMP) ## Ruff (lint and format check), mypy, and the import layers (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

docs: $(STAMP) ## Regenerate docs/configuration.md's tables and .env.example from gateway/config.py
	$(BIN)/python -m gateway.config_docs

bench: export EXTRACTOR_PROVIDER ?= fast  # the simulated extractor: the benchmarks measure the pipeline
bench: $(STAMP) ## Benchmarks: entity quality on the corpus, list cost, pipeline throughput, load
	$(BIN)/python -m bench.quality
	$(BIN)/python -m bench.list_jobs
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.load

mutation: $(STAMP) ## Mutation testing of the service layer with the fast tests, and its score (slow; docs/testing.md)
	$(BIN)/python -m tests.mutation

clean: ## Remove the virtualenv, caches and the embedded instance data
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info mutants
