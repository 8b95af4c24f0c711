# Two commands on a fresh machine with Python 3.11+:  `make run`  and  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two test workers per core: most tests wait on child processes and sockets (2 cores: ~90 s instead of ~170 s).
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/wa-devtunnel $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check wa_devtunnel tests benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q -n $(WORKERS)

bench: $(STAMP)
	$(BIN)/python benchmarks/receiver.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
