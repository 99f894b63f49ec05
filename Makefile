# The two commands in the README: `make demo` and `make test`. Both set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: setup chromium lint test demo bench clean

setup: $(VENV)/.installed node_modules/.installed chromium

# The gallery's browser tests drive Debian's chromium (Playwright's own download cannot run
# here). Installed when missing and we are root (CI); otherwise the tests say they were skipped.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -q && apt-get install -y -q chromium; } \
	  || echo "chromium not installed (needs root): the gallery's browser tests will be skipped"

# torch is pinned in requirements.txt to 2.13.0: on our machines that resolves to the CPU wheel.
# requirements-dev.txt includes requirements.txt (the app) and requirements-local.txt (the
# local safety stack the tests check with), which the Azure image leaves out.
$(VENV)/.installed: requirements.txt requirements-local.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Lint (ruff, with import sorting) and types (mypy, settings in pyproject.toml) before the tests.
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python -m examples.demo

clean:
	rm -rf .devhost out .pytest_cache
