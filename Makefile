# ConnectBatch developer commands. `make help` lists them.
#
# Every target sets up what it needs: a fresh Debian machine goes from clone to a running app
# with `make run`, and to a full test run with `make test` (venv, Python packages, compiled
# parser, Debian packages the tests need). Steps that are already done are skipped: the install
# is stamped, and the parser is only recompiled when its Cython sources change.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.connectbatch-installed
ENSURE_DEBS := bash scripts/ensure-debian-packages.sh

# The compiled parser's file name depends on the interpreter (e.g. .cpython-311-x86_64-linux-gnu.so).
# Ask the venv's interpreter when it exists; before that, the one that will create it.
EXT_SUFFIX := $(shell $(if $(wildcard $(PY)),$(PY),$(PYTHON)) -c \
	'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)
EXTENSION := connectbatch/_csvcore$(EXT_SUFFIX)
# The core is one C unit: the entry .pyx, its .pxd and the parts it includes from parser/.
EXTENSION_SOURCES := connectbatch/_csvcore.pyx $(wildcard connectbatch/_csvcore.pxd) \
	$(wildcard connectbatch/parser/*.pxi) setup.py

PORT ?= 8501
ADDRESS ?= 127.0.0.1
# Debian packages the test suite needs: real servers for the transfer tests, Chromium for the browser tests.
TEST_DEBS ?= openssl vsftpd openssh-server openssh-client dovecot-imapd chromium curl lftp redis-server
FUZZ_SECONDS ?= 300
TEST_FUZZ_SECONDS ?= 20
# pytest-xdist workers for `make test` (0: one process). Most tests wait on servers, browsers
# and subprocesses rather than compute, so 3 workers on CI's 2 cores halve the suite's time;
# each test file stays on one worker (--dist loadfile) with its module's servers.
TEST_WORKERS ?= 3
FUZZ_DIR := fuzz-artifacts
BENCH_ARGS ?=

.PHONY: help venv install build run demo test fuzz bench screenshots lint clean distclean

help: ## List the targets
	@echo "ConnectBatch: make <target> [VAR=value ...]"
	@echo
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) \
		| awk -F':.*## ' '{ printf "  %-10s %s\n", $$1, $$2 }'
	@echo
	@echo "Variables: PORT=$(PORT) ADDRESS=$(ADDRESS) FUZZ_SECONDS=$(FUZZ_SECONDS)" \
		"TEST_FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) TEST_WORKERS=$(TEST_WORKERS) BENCH_ARGS='$(BENCH_ARGS)' PYTHON=$(PYTHON)"

venv: $(PY) ## Create the virtual environment in .venv

# `python3 -m venv` fails on Debian without python3-venv (no ensurepip) and leaves a venv
# without pip behind: remove it, install the package, try again.
$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || $(ENSURE_DEBS) python3 python3-venv
	@if ! $(PYTHON) -m venv $(VENV) 2>/dev/null; then \
		rm -rf $(VENV); \
		$(ENSURE_DEBS) python3-venv; \
		$(PYTHON) -m venv $(VENV); \
	fi

install: $(STAMP) ## Install ConnectBatch and its dev tools into .venv (editable)

# The editable install compiles the parser, so a C compiler and Python's headers come first.
$(STAMP): pyproject.toml setup.py | $(PY)
	@command -v cc >/dev/null 2>&1 || $(ENSURE_DEBS) gcc libc6-dev
	@$(PY) -c 'import os, sys, sysconfig; \
		sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
		|| $(ENSURE_DEBS) python3-dev
	$(PY) -m pip install -q --upgrade pip setuptools wheel cython
	$(PY) -m pip install -q --no-build-isolation -e '.[dev]'
	@touch $@

build: $(EXTENSION) ## Compile the Cython parser in place (only when its sources changed)

# The install is order-only: reinstalling (e.g. a new dependency) need not recompile.
# `touch` because build_ext may decide the .so is current and leave its time stamp alone.
$(EXTENSION): $(EXTENSION_SOURCES) | $(STAMP)
	$(PY) setup.py build_ext --inplace -q
	@touch $@

run: build ## Load the demo (`make demo`) and start the app on ADDRESS:PORT (default 127.0.0.1:8501)
	$(VENV)/bin/connectbatch demo
	$(VENV)/bin/streamlit run streamlit_asgi.py --server.headless true \
		--server.port $(PORT) --server.address $(ADDRESS) --browser.gatherUsageStats false

demo: $(STAMP) ## Load the demo connections, runs and app logins; write a demo CSV under data/demo/
	$(VENV)/bin/connectbatch demo

test: build ## Run the whole test suite, then a short fuzz run
	$(ENSURE_DEBS) $(TEST_DEBS)
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile tests
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

# Crash reproducers go next to the corpus, not into the repository root.
fuzz: build ## Fuzz the parser with atheris for FUZZ_SECONDS (default 300)
	mkdir -p $(FUZZ_DIR)/corpus
	$(PY) fuzz/fuzz_parse.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
		-artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus

bench: build ## Benchmarks: parser vs peers, whole pipeline, validation evaluator vs GX, SFTP pull and push, mapping accuracy (BENCH_ARGS='--rows 20000')
	$(PY) bench/bench_parse.py $(BENCH_ARGS)
	$(PY) bench/bench_pipeline.py $(BENCH_ARGS)
	$(PY) bench/bench_validation.py $(BENCH_ARGS)
	$(PY) bench/bench_overhead.py $(BENCH_ARGS)
	$(ENSURE_DEBS) openssh-server openssh-client
	$(PY) bench/bench_sftp.py
	$(PY) bench/bench_pull_many.py
	$(PY) bench/bench_push_many.py
	@if [ -f bench/bench_sftp_push.py ]; then $(PY) bench/bench_sftp_push.py; fi
	$(PY) bench/bench_mapping.py
	$(ENSURE_DEBS) chromium && $(PY) bench/bench_pages.py
	$(ENSURE_DEBS) redis-server && $(PY) bench/bench_distributed.py
	$(PY) bench/summary.py

screenshots: build ## Screenshots of the main screens into docs/screenshots/ (Debian's Chromium)
	$(ENSURE_DEBS) chromium
	$(PY) scripts/screenshots.py

lint: $(STAMP) ## ruff and mypy --strict
	$(VENV)/bin/ruff check connectbatch tests bench fuzz scripts app_pages streamlit_app.py streamlit_asgi.py
	$(VENV)/bin/mypy connectbatch

clean: ## Remove build products, caches and fuzz artifacts (keeps .venv and data/)
	rm -rf build dist *.egg-info $(FUZZ_DIR) test-artifacts .pytest_cache .mypy_cache \
		.ruff_cache .hypothesis
	rm -f connectbatch/_csvcore.c connectbatch/_csvcore.html connectbatch/_csvcore*.so
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean ## Also remove .venv
	rm -rf $(VENV)
