# Quantsentinel — two commands on a fresh machine: `make run` and `make test`.
# Both create and reuse .venv themselves; only Python 3.11 and pip are assumed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
UV_VERSION  := 0.13.8
STAMP       := $(VENV)/.installed
# uv reads the platform certificate store (corporate proxies, custom CAs) like pip does.
export UV_SYSTEM_CERTS := 1

.PHONY: help venv run up test test-unit lint bench lock clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON_BOOT) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]'
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@echo "installing the locked dependencies into $(VENV) ..."
	@# --compile-bytecode: ship .pyc with the dependencies, as a deployed image does, so a
	@# cold process (each function the local cloud serves, each benchmark subprocess) does
	@# not recompile numpy and pg8000 from source, which it would under PYTHONDONTWRITEBYTECODE.
	@$(VENV)/bin/uv pip sync --quiet --python $(PY) --require-hashes --compile-bytecode requirements.lock
	@$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## Create or update .venv from requirements.lock

run: $(STAMP) ## The main job on embedded defaults
	$(PY) -m local run

up: $(STAMP) ## Start the local cloud and keep it up until Ctrl-C
	$(PY) -m local up

test: $(STAMP) ## Run the whole test suite (unit, functions, integration)
	@# pytest exits 5 when it collects no test at all: say so loudly rather than fail the build.
	@$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "WARNING: pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

test-unit: $(STAMP) ## Unit tests only (no I/O)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .

bench: $(STAMP) ## Benchmarks (targets live here, not in tests)
	$(PY) -m bench

lock: ## Re-resolve requirements.lock from pyproject.toml
	@test -x $(VENV)/bin/uv || (test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV); $(PY) -m pip install --quiet "uv==$(UV_VERSION)")
	$(VENV)/bin/uv pip compile pyproject.toml --extra local --extra dev --extra bench --python-version 3.11 --universal --generate-hashes -o requirements.lock

clean: ## Remove the venv and local state
	rm -rf $(VENV) .local .pytest_cache
