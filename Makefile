# Two commands on a fresh machine: `make run` (the portal with the demo story) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test test-fast e2e bench lint clean

$(VENV)/.app: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.app
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.app
	WATCHTOWER_DEMO=1 $(VENV)/bin/watchtower serve --port $(PORT)

test: $(VENV)/.test
	$(PY) -m pytest -q

test-fast: $(VENV)/.test
	$(PY) -m pytest -q -m "not e2e"

e2e: $(VENV)/.test
	$(PY) -m pytest -q -m e2e

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .

bench: $(VENV)/.test
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
