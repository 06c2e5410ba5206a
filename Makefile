# Two commands matter: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests and the demo start Ray; on these machines Ray must not listen beyond loopback, so when we
# are root we run them in a fresh network namespace that has only `lo` (see README, "Networking").
LOOPBACK := $(shell if [ "$$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then \
	echo "unshare -n sh -c 'ip link set lo up 2>/dev/null || true; exec \"\$$@\"' sh"; fi)
PYTEST_ARGS ?=

.PHONY: help setup demo test test-fast lint bench clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) /usr/share/wordnet/data.noun ## Create .venv and install the project with all extras (idempotent)

# WordNet (Debian's wordnet-base) is real text for tests, the training sample and offline evals.
/usr/share/wordnet/data.noun:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq wordnet-base >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null && apt-get install -y -qq wordnet-base >/dev/null; }; \
	else echo "WordNet missing: install Debian's wordnet-base (tests that need it will skip)"; fi

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

demo: setup ## Run the main job on the bundled offline model
	$(LOOPBACK) $(PY) -m ray_backend.demo

test: setup ## Run the whole test suite (Ray tests in a loopback-only namespace)
	$(LOOPBACK) $(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup ## Unit tests only (no Ray, no slow tests)
	$(PY) -m pytest tests/unit -m "not slow" $(PYTEST_ARGS)

lint: setup ## ruff + mypy on the library packages
	$(VENV)/bin/ruff check instructor_plugins ray_backend training evals tests benchmarks examples
	$(VENV)/bin/ruff format --check instructor_plugins ray_backend training evals tests benchmarks examples
	$(VENV)/bin/mypy instructor_plugins ray_backend training evals

bench: setup ## Run the benchmarks (each prints a ratio against a baseline run in the same process)
	@for b in benchmarks/*.py; do echo "== $$b"; $(LOOPBACK) $(PY) $$b || exit 1; done

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
