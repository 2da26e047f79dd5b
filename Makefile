# canhgac — two commands: `make run` and `make test`. Both are self-contained on a
# fresh machine: they create .venv, install the locked dependencies and what the
# tests need (Debian packages, the test Elasticsearch node), then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-stress unit integration lint lock bench fuzz deps-system package clean help

help:
	@echo "make run    start collector + agent + mock national center locally (canhgac up)"
	@echo "make test   install everything the tests need and run the whole suite"
	@echo "make test-stress   the whole suite under stress-ng load on every core"
	@echo "make lint   ruff + mypy --strict (kernel, shipper, collector)"
	@echo "make lock   re-pin requirements.lock from pyproject.toml"
	@echo "make fuzz   fuzz the validator and the query parser (FUZZ_SECONDS per target)"
	@echo "make package   dist/: canhgac-agent and canhgac-collector .deb + the offline bundle (Debian 12)"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/canhgac up

# Debian packages and servers the integration tests use (idempotent, root or sudo).
deps-system:
	bash deploy/test-deps.sh

test: $(STAMP) deps-system
	bash deploy/run-tests.sh

# The whole suite with both cores kept busy by stress-ng: no test may depend on speed.
test-stress: $(STAMP) deps-system
	bash deploy/run-stress-tests.sh

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Coverage-guided fuzzing (atheris) of the validator and the query parser, bounded:
# FUZZ_SECONDS per target (default 60); new corpus inputs land in fuzz/corpus/.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

lock:
	$(PYTHON) -m pip install -q uv && $(PYTHON) -m uv pip compile pyproject.toml --extra test -o requirements.lock --python-version 3.11

# Debian 12 packages and the offline bundle (docs/packaging.md); VERSION=... overrides the version.
package: $(STAMP)
	$(BIN)/python deploy/package/build.py $(if $(VERSION),--version $(VERSION))

bench: $(STAMP)
	@ls bench/*.py

clean:
	rm -rf $(VENV) .pytest_cache build dist
