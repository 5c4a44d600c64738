# Every target sets itself up: a fresh machine needs only python3 (>= 3.11) and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint bench r-packages profile lock clean

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

bench: $(STAMP) r-packages  ## stages, peak memory, pandas and R side by side at 10k/100k/1M (benchmarks/results/)
	$(BIN)/python benchmarks/run.py --sizes 10000,100000,1000000
	$(BIN)/python benchmarks/versus_r.py --sizes 100000,1000000 --crr-sizes 10000,20000 \
		--results benchmarks/results/versus_r_synthetic.md
	$(BIN)/python benchmarks/target_trial_timing.py --sizes $${TT_SIZES:-10000,100000,1000000}
	$(BIN)/python benchmarks/imputation_timing.py --sizes $${MI_SIZES:-10000,100000,1000000}
	$(BIN)/python benchmarks/mi_analysis_timing.py --sizes $${MI_ANALYSIS_SIZES:-10000,100000}
	$(BIN)/python benchmarks/target_trial_versus_r.py --sizes $${TTR_SIZES:-10000,100000}
	$(BIN)/python benchmarks/executor_timing.py --sizes $${EXEC_SIZES:-10000,100000}
	@# the 10,000,000-patient row (about 40 minutes; SCALE_SIZES= leaves it out), added to latest.md
	if [ -n "$${SCALE_SIZES-10000000}" ]; then $(BIN)/python benchmarks/run.py \
		--sizes $${SCALE_SIZES-10000000} --cases synth,refresh --no-compare --append \
		--study benchmarks/studies/scale_10m.toml --memory-limit 4GB; fi

r-packages:  ## R with survival, cmprsk and mice (Debian), for make bench and tests/reference/*.R
	@if ! Rscript -e 'library(survival); library(cmprsk); library(mice)' >/dev/null 2>&1; then \
		as_root=""; [ "$$(id -u)" -eq 0 ] || as_root="sudo -n"; \
		$$as_root apt-get update -q </dev/null && \
		$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 \
			--no-install-recommends r-base-core r-cran-survival r-cran-cmprsk r-cran-mice </dev/null; \
	fi

profile: $(STAMP)  ## pyinstrument profiles of ingest, analyze and report at PATIENTS (default 1,000,000)
	$(BIN)/python benchmarks/profile_stages.py --patients $${PATIENTS:-1000000}

lock:  ## regenerate requirements.lock from a clean venv
	rm -rf /tmp/vr-lock && $(PY) -m venv /tmp/vr-lock
	/tmp/vr-lock/bin/python -m pip install --quiet ".[dev]"
	(echo "# Exact versions installed by the Makefile (pip install -r). Regenerate with: make lock"; \
	 /tmp/vr-lock/bin/python -m pip freeze --exclude-editable | grep -v '^vertebral-registry'; \
	 echo "setuptools==84.2.1") > requirements.lock

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
