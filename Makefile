# Two entry points, both used by the README quick start:
#   make demo  - create .venv, install, run the main job on the embedded default (SQLite)
#   make test  - create .venv, install with test extras, run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/dialer: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

.PHONY: setup demo test lint bench
setup: $(BIN)/dialer

# The demo with the agent console: prints the address and a demo agent's login.
demo: setup
	$(BIN)/dialer demo --console-port 8080 --time-scale 2 --seconds 900

test: setup
	$(BIN)/python -m pytest -q
	$(BIN)/mypy
	$(BIN)/ruff check .

bench: setup
	for f in bench/bench_*.py; do $(BIN)/python $$f; done
