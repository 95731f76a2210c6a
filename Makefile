# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv and install on first use (CPU torch pin first, then the project).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/nowcast demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/python -m pytest -q

# the quick loop while editing: lint, then the tests not marked slow (CI runs them all)
test-fast: lint
	$(VENV)/bin/python -m pytest -q -m "not slow"
