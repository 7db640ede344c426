# The two commands the README promises, on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench

$(BIN)/lamina: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/lamina

run: $(BIN)/lamina            ## serve on http://127.0.0.1:4566 and show the sample function working
	$(BIN)/lamina up --demo

test: $(BIN)/lamina           ## lint, then the whole suite (unit + end-to-end against a real server)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/pytest -q

bench: $(BIN)/lamina          ## benchmarks; results to docs/benchmarks.md
	$(BIN)/python bench/run.py
