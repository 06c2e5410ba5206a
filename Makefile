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

.PHONY: help setup text-data demo finetune test test-fast docs lint bench bench-peers clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) /usr/share/wordnet/data.noun text-data ## Create .venv and install the project with all extras, dev and docs tools (idempotent)

# WordNet (Debian's wordnet-base) is real text for tests, the training sample and offline evals.
/usr/share/wordnet/data.noun:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq wordnet-base >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null && apt-get install -y -qq wordnet-base >/dev/null; }; \
	else echo "WordNet missing: install Debian's wordnet-base (tests that need it will skip)"; fi

# Offline text for the finetuning corpus (training/recipe/sources) and the held-out benchmark
# (training/recipe/heldout.py): dictionaries (dictd, FreeDict), man pages, Vim's help, Perl's and Python's
# documentation, and the English Debian package index. As root with apt-get they are installed; otherwise one line
# says what is missing and the corpus skips that source (recorded in its manifest).
DICT_PACKAGES := dict-gcide dict-foldoc dict-jargon dict-vera dict-devil dict-elements \
	dict-freedict-eng-deu dict-freedict-eng-fra dict-freedict-eng-spa dict-freedict-eng-ita dict-freedict-eng-nld
TEXT_PACKAGES := $(DICT_PACKAGES) manpages manpages-dev vim-runtime perl-doc python3-doc unicode-data
text-data: ## Install the Debian text the finetuning corpus and the held-out benchmark read
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		ls /var/lib/apt/lists/*_i18n_Translation-en* >/dev/null 2>&1 || apt-get update -qq -o Acquire::Languages=en >/dev/null || true; \
		missing=$$(for p in $(TEXT_PACKAGES); do dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null | grep -q ' installed' || echo $$p; done); \
		[ -z "$$missing" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || \
		echo "text-data: could not install $$missing (the corpus will skip them)"; \
	else echo "text-data: not root or no apt-get: install $(TEXT_PACKAGES) and run apt-get update -o Acquire::Languages=en (the corpus skips what is missing)"; fi

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev,docs]'
	touch $(STAMP)

demo: setup ## Run the main job on the bundled offline model
	$(LOOPBACK) $(PY) -m ray_backend.demo

finetune: setup ## Build the corpus, finetune with Ray Train, evaluate, report (runs/finetune/report.md)
	$(LOOPBACK) $(PY) -m training.recipe --output runs/finetune $(FINETUNE_ARGS)

# The tests without Ray run on TEST_WORKERS processes (pytest-xdist; each gets its share of the CPU's threads),
# then the Ray tests one after another (they start clusters of their own). Exit 5 (nothing selected, e.g. a
# PYTEST_ARGS that names only unit tests) is not a failure of either half.
TEST_WORKERS ?= 2
test: setup ## Run the whole test suite (Ray tests in a loopback-only namespace)
	$(LOOPBACK) $(PY) -m pytest -m "not integration" -n $(TEST_WORKERS) $(PYTEST_ARGS) || [ $$? = 5 ]
	$(LOOPBACK) $(PY) -m pytest -m integration $(PYTEST_ARGS) || [ $$? = 5 ]

test-fast: setup ## Unit tests only (no Ray, no slow tests)
	$(PY) -m pytest tests/unit -m "not slow" $(PYTEST_ARGS)

docs: setup ## Build the docs site into site/ (mkdocs, warnings are errors)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

lint: setup ## ruff + mypy on the library packages; import contracts (.importlinter: no circles, trainer apart)
	$(VENV)/bin/ruff check instructor_plugins ray_backend training evals tests benchmarks examples
	$(VENV)/bin/ruff format --check instructor_plugins ray_backend training evals tests benchmarks examples
	$(VENV)/bin/mypy instructor_plugins ray_backend training evals
	$(VENV)/bin/lint-imports

bench: setup ## Run the benchmarks (each prints a ratio against a baseline run in the same process)
	@# bursts.py is a module the serve benchmarks share; st_peer.py runs in the peers venv under encode.py
	@for b in $(filter-out benchmarks/bursts.py benchmarks/st_peer.py,$(wildcard benchmarks/*.py)); do \
		echo "== $$b"; $(LOOPBACK) $(PY) $$b || exit 1; done

# The peer (infinity-emb) pins older numpy and sentence-transformers, so it gets its own venv; torch first, as
# for .venv, so pip takes the CPU build from local disk instead of a multi-GB CUDA one.
PEER_VENV ?= .venv-peers
PEER_STAMP := $(PEER_VENV)/.installed
INFINITY ?= infinity-emb[server,torch,optimum]==0.0.78
# sentence-transformers' onnx/openvino backends and their qint8 exports (benchmarks/encode.py, via benchmarks/st_peer.py);
# datasets for the OpenVINO calibration; numpy, hub, pyarrow and click pinned to what infinity-emb 0.0.78 and tokenizers run with
ST_PEERS ?= sentence-transformers[onnx,openvino] datasets pyarrow<20 numpy<2 huggingface-hub<1.0 click<8.2
PEER_SECONDS ?= 60

$(PEER_STAMP):
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEER_VENV)/bin/python -m pip install -q torch==2.13.0
	$(PEER_VENV)/bin/python -m pip install -q torch==2.13.0 '$(INFINITY)' $(foreach p,$(ST_PEERS),'$(p)')
	touch $(PEER_STAMP)

bench-peers: setup $(PEER_STAMP) ## Ours vs sentence-transformers' CPU backends and infinity-emb (torch, optimum) (~15 min)
	env INSTRUCTOR_PEER_VENV=$(PEER_VENV) $(PY) benchmarks/encode.py --no-instructor-math
	$(LOOPBACK) env INSTRUCTOR_PEER_VENV=$(PEER_VENV) $(PY) benchmarks/serve.py --mode peers --seconds $(PEER_SECONDS)

clean: ## Remove the virtual environments and caches
	rm -rf $(VENV) $(PEER_VENV) .pytest_cache .mypy_cache .ruff_cache
