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

# The stack tests run a Collector built from its Go modules (once; later runs take it from the cache). The
# script prints only the binary's path on stdout, and a failed build stops here.
test: $(VENV)/.test
	bash scripts/install-stack-tools.sh
	LLMTRACE_OTELCOL="$$(bash scripts/build-collector.sh)" && export LLMTRACE_OTELCOL && \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

# A venv of its own: the reference instrumentations must not be installed where the tests run.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.bench: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -c $(CONSTRAINTS) -e '.[bench]'
	touch $@

bench: $(BENCH_VENV)/.bench
	$(BENCH_VENV)/bin/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .hypothesis
