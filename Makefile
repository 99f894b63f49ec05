# The two commands in the README: `make demo` and `make test`. Both set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: setup test demo bench clean

setup: $(VENV)/.installed node_modules/.installed

# torch is pinned in requirements.txt to 2.13.0: on our machines that resolves to the CPU wheel.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python -m examples.demo

clean:
	rm -rf .devhost out .pytest_cache
