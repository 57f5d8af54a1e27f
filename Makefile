# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install test demo demo-down lint format bench

install:
	@bash scripts/install.sh

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider

demo: install
	$(PY) -m evpnd.lab demo

demo-down: install
	$(PY) -m evpnd.lab down

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: install
	$(PY) benchmarks/core.py
