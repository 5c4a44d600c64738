# Every target sets itself up: a fresh machine needs only python3 (>= 3.11) and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint bench lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)  ## synthesise the demo cohort, load it and run the whole pipeline into build/demo
	$(BIN)/registry demo --out build/demo

test: $(STAMP)  ## the whole test suite, slow tests included
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

test-fast: $(STAMP)  ## the fast tests only
	$(BIN)/python -m pytest -n 2 -q -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check registry tests benchmarks
	$(BIN)/ruff format --check registry tests benchmarks
	$(BIN)/mypy registry

bench: $(STAMP)  ## timings and peak memory at several sizes (results in benchmarks/results.md)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/tte_build.py --patients 100000
	$(BIN)/python benchmarks/tte_build.py --patients 1000000 --repeats 3

lock:  ## regenerate requirements.lock from a clean venv
	rm -rf /tmp/vr-lock && $(PY) -m venv /tmp/vr-lock
	/tmp/vr-lock/bin/python -m pip install --quiet ".[dev]"
	(echo "# Exact versions installed by the Makefile (pip install -r). Regenerate with: make lock"; \
	 /tmp/vr-lock/bin/python -m pip freeze --exclude-editable | grep -v '^vertebral-registry'; \
	 echo "setuptools==84.2.1") > requirements.lock

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
