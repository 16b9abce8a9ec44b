# Everything runs inside .venv, which these targets create on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# `make run PORT=8100 HOST=0.0.0.0`: where the web server listens (set on the command
# line; a HOST or PORT in the environment is ignored).
HOST = 127.0.0.1
PORT = 8000

.PHONY: run up test test-unit test-e2e lint format bench bench-peers clean venv browser conformance

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

## Bring everything up on this machine and run the demo pipeline (Ctrl-C stops it all).
run: $(STAMP)
	$(BIN)/pipelines up --demo --host $(HOST) --port $(PORT)

up: run

## The whole test suite (unit, end-to-end with real processes, browser).
test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Debian's Chromium for the browser tests (as root; otherwise those tests say how to get it).
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: browser tests will be skipped"

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PIPELINES_DATA_DIR=$$(mktemp -d) $(BIN)/python manage.py check
	PIPELINES_DATA_DIR=$$(mktemp -d) $(BIN)/python manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench

## clearml-server's own API tests against a fresh server of ours (docs/clearml.md):
## `make conformance CLEARML_SERVER_TESTS=/path/to/clearml-server/apiserver`.
conformance: $(STAMP)
	CLEARML_SERVER_TESTS=$(CLEARML_SERVER_TESTS) $(BIN)/python -m bench.clearml_conformance

## Prefect and MLflow in their own venv, so `make bench` compares against them too.
bench-peers: .venv-peers/.installed

.venv-peers/.installed: requirements-peers.txt
	@test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet -r requirements-peers.txt
	@touch $@

clean:
	rm -rf $(VENV) .venv-peers .pipelines-data .pytest_cache .ruff_cache
