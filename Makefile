# First commands for a new user: `make serve` and `make test` (both install into .venv when missing).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: install serve test test-fast lint format bench screenshots train-linear clean

$(STAMP):
	$(MAKE) install

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# requirements.lock pins every dependency (torch==2.13.0 CPU comes from the local wheel cache).
	$(BIN)/pip install --quiet $(if $(wildcard /opt/wheels),--find-links /opt/wheels) -c requirements.lock -e ".[train,dev]"
	touch $(STAMP)

serve: | $(STAMP)
	$(BIN)/moderation serve --host $(HOST) --port $(PORT)

test: | $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: | $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: | $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: | $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: | $(STAMP)
	$(BIN)/python -m training.bench
	$(BIN)/python -m training.bench_api

# PNGs of the review UI (queue, dashboard) on seeded demo data, drawn by Debian's chromium.
screenshots: | $(STAMP)
	$(BIN)/python -m service.ui.screenshots --out docs/screenshots

train-linear: | $(STAMP)
	$(BIN)/moderation train --kind linear

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
