# Two commands do all the set-up on a fresh machine (python3, pip and make only):
#   make run    the service on http://127.0.0.1:8080 against the built-in Bedrock emulator
#   make test   the whole test suite
PYTHON ?= python3
ARCH   ?= arm64
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WHEELS := $(VENV)/wheels

.PHONY: run test lint bench package lock clean build-ChainserveFunction

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The locked wheels for this machine, so the Lambda contract test builds its package offline.
$(WHEELS)/.done: requirements.lock $(STAMP)
	$(BIN)/pip download --quiet --only-binary=:all: --no-deps -r requirements.lock -d $(WHEELS)
	touch $@

run: $(STAMP)
	$(BIN)/chainserve dev

test: $(STAMP) $(WHEELS)/.done
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy

# The benchmarks (docs/performance.md): about 15 minutes; the table and bench-results.json
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

# The Lambda zip for ARCH (arm64 or x86_64): build/chainserve-$(ARCH).zip
package: $(STAMP)
	$(BIN)/chainserve package --arch $(ARCH)

# Resolve pyproject.toml again into requirements.lock
lock: $(STAMP)
	$(BIN)/chainserve package --update-lock

# `sam build` runs this (template.yaml: BuildMethod makefile); it needs no virtualenv.
build-ChainserveFunction:
	$(PYTHON) -m service.package --arch $(ARCH) --into "$(ARTIFACTS_DIR)"

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
