# Two commands on a fresh machine: `make run` (the portal with the demo story and the scoring API) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
API_PORT ?= 8000
# Compiled modules (and the tests' rewritten asserts) are cached in __pycache__: every process started after the
# first imports the stack without compiling it again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-fast test-unit e2e bench lint clean

$(VENV)/.app: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.app
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.app
	WATCHTOWER_DEMO=1 WATCHTOWER_API_URL=http://127.0.0.1:$(API_PORT) \
		$(VENV)/bin/watchtower serve --port $(PORT) --api-port $(API_PORT)

# Everything: unit and integration tests on both backends in parallel (the Spark tests together on one worker),
# then the browser tests two at a time.
test: $(VENV)/.test
	$(PY) -m pytest -q -n 3 --dist loadgroup -m "not e2e"
	$(PY) -m pytest -q -n 2 --dist loadfile -m e2e

# Unit and integration tests on SQLite only, without the slowest ones and the browser.
test-fast: $(VENV)/.test
	WATCHTOWER_TEST_BACKENDS=sqlite $(PY) -m pytest -q -n 2 --dist loadgroup -m "not e2e and not slow"

# The tests that need no database, no files and no browser.
test-unit: $(VENV)/.test
	$(PY) -m pytest -q -m unit

e2e: $(VENV)/.test
	$(PY) -m pytest -q -n 2 --dist loadfile -m e2e

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .

bench: $(VENV)/.test
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
