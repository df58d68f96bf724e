# Quantsentinel — two commands on a fresh machine: `make run` and `make test`.
# Both create and reuse .venv themselves; only Python 3.11 and pip are assumed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
UV_VERSION  := 0.13.8
STAMP       := $(VENV)/.installed
# checkov lives in its own venv: its pins conflict with requirements.lock.
VENV_INFRA  := .venv-infra
INFRA_STAMP := $(VENV_INFRA)/.installed
# make plan / make deploy: the var file, and the GCS bucket holding terraform's state.
VARS         ?= terraform/env/example.tfvars
STATE_BUCKET ?=
TF           := terraform -chdir=terraform
# uv reads the platform certificate store (corporate proxies, custom CAs) like pip does.
export UV_SYSTEM_CERTS := 1

.PHONY: help venv run up test test-unit lint bench lock clean browser
.PHONY: bundle infra-venv infra-check infra-lock plan deploy secrets tf-preflight

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

test: $(STAMP) $(INFRA_STAMP) browser ## Run the whole test suite (unit, functions, integration)
	@# pytest exits 5 when it collects no test at all: say so loudly rather than fail the build.
	@$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "WARNING: pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

browser: $(STAMP) ## Install Chromium (Debian's package) for the report test, unless one is found
	@if $(PY) -c 'import sys; from local.browser import find_chromium; sys.exit(0 if find_chromium() else 1)'; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Chromium (Debian's package) for the report's browser test ..."; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	  || echo "WARNING: installing Chromium failed: the report's browser test will fail"; \
	else echo "WARNING: no Chromium found (set QS_CHROMIUM, or install chromium as root): the report's browser test will fail"; fi

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
	rm -rf $(VENV) $(VENV_INFRA) .local .pytest_cache

# --- deployment (terraform/README.md) -------------------------------------------------

$(INFRA_STAMP): requirements-infra.lock | $(STAMP)
	@echo "installing checkov into $(VENV_INFRA) ..."
	@test -x $(VENV_INFRA)/bin/python || $(VENV)/bin/uv venv --quiet --python $(PYTHON_BOOT) $(VENV_INFRA)
	@$(VENV)/bin/uv pip sync --quiet --python $(VENV_INFRA)/bin/python --require-hashes requirements-infra.lock
	@touch $(INFRA_STAMP)

infra-venv: $(INFRA_STAMP) ## Create or update .venv-infra (checkov) from requirements-infra.lock

infra-lock: ## Re-resolve requirements-infra.lock from deploy/requirements-infra.in
	@test -x $(VENV)/bin/uv || $(MAKE) venv
	$(VENV)/bin/uv pip compile deploy/requirements-infra.in --python-version 3.11 --universal --generate-hashes -o requirements-infra.lock

bundle: $(STAMP) ## Build each function's zip (main.py + shared + its own requirements) into build/bundles
	$(PY) -m deploy bundle

infra-check: $(STAMP) $(INFRA_STAMP) ## Offline terraform checks: fmt, checkov, consistency with the code
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive -diff terraform && echo "terraform fmt: ok"; \
	 else echo "terraform is not on PATH: fmt check skipped"; fi
	$(VENV_INFRA)/bin/checkov -d terraform --framework terraform --skip-download --compact --quiet
	$(PY) -m deploy check

tf-preflight:
	@command -v terraform >/dev/null || { echo "error: terraform is not on PATH (install 1.6 or later: https://developer.hashicorp.com/terraform/install)"; exit 1; }
	@test -n "$(VARS)" || { echo "error: VARS is empty; use VARS=terraform/env/<project>.tfvars (see terraform/env/example.tfvars)"; exit 1; }
	@test -f "$(VARS)" || { echo "error: VARS=$(VARS) does not exist; copy terraform/env/example.tfvars and fill it in"; exit 1; }
	@test -n "$(STATE_BUCKET)" || { echo "error: STATE_BUCKET is empty; use STATE_BUCKET=<GCS bucket for terraform state> (terraform/README.md, step 3)"; exit 1; }
	$(TF) init -input=false -reconfigure -backend-config=bucket=$(STATE_BUCKET)

plan: bundle tf-preflight ## terraform plan (VARS=terraform/env/<project>.tfvars STATE_BUCKET=<bucket>)
	$(TF) plan -input=false -var-file=$(abspath $(VARS))

secrets: tf-preflight ## First deploy only: create the APIs and empty secrets, to populate before make deploy
	$(TF) apply -input=false -var-file=$(abspath $(VARS)) -target=google_secret_manager_secret.app

deploy: bundle tf-preflight ## Bundle, plan to a file, confirm, apply exactly that plan (AUTO_APPROVE=1 skips the question)
	$(TF) plan -input=false -var-file=$(abspath $(VARS)) -out=tfplan
	@if [ "$(AUTO_APPROVE)" != "1" ]; then read -r -p "Apply this plan to the project in $(VARS)? [y/N] " ok; [ "$$ok" = y ] || { echo "not applied"; exit 1; }; fi
	$(TF) apply -input=false tfplan
	@rm -f terraform/tfplan
