# Two entry points for a fresh machine: `make demo` and `make test`. Both build .venv from this repository.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := ci/constraints.txt

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[demo]'
	touch $@

$(VENV)/.test: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $@

demo: $(VENV)/.demo
	$(BIN)/llmtrace demo $(ARGS)

test: $(VENV)/.test
	bash scripts/install-stack-tools.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
