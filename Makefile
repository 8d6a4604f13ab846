# Two commands do all the set-up on a fresh machine (python3, pip and make only):
#   make run    the service on http://127.0.0.1:8080 against the built-in Bedrock emulator
#               (make run PORT=9000 HOST=0.0.0.0 to change where)
#   make test   the whole test suite
PYTHON ?= python3
ARCH   ?= arm64
HOST   ?= 127.0.0.1
PORT   ?= 8080
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check --quiet
# Running needs only the service; the test tools (playwright, moto, cfn-lint, mypy…) are extra.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
WHEELS := $(VENV)/wheels
EXTRA_FLAGS := $(foreach extra,$(EXTRA),--extra $(extra))

.PHONY: run test lint bench package lock clean build-ChainserveFunction

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) install -e '.[test]'
	touch $(TEST_STAMP)

# The locked wheels for this machine, so the Lambda contract test builds its package offline.
$(WHEELS)/.done: requirements.lock requirements-otel.lock $(TEST_STAMP)
	$(BIN)/pip download --quiet --only-binary=:all: --no-deps -r requirements.lock \
		-r requirements-otel.lock -d $(WHEELS)
	touch $@

# The JavaScript clients the Node tests drive (tests/js: the AWS SDK for JavaScript, the ai
# package, @langchain/core). Only where Node is installed; elsewhere those tests skip (CI
# installs Node: .ci/run).
JS_STAMP := tests/js/node_modules/.installed
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund
	touch $@

run: $(RUN_STAMP)
	$(BIN)/chainserve dev --host $(HOST) --port $(PORT)

test: $(TEST_STAMP) $(WHEELS)/.done $(if $(shell command -v node),$(JS_STAMP))
	$(BIN)/chainserve test chains/
	$(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy

# The benchmarks (docs/performance.md): about 15 minutes; the table and bench-results.json
bench: $(TEST_STAMP)
	$(BIN)/python -m bench $(ARGS)

# The Lambda zip for ARCH (arm64 or x86_64): build/chainserve-$(ARCH).zip; EXTRA=otel adds
# OpenTelemetry (also for `EXTRA=otel sam build`).
package: $(RUN_STAMP)
	$(BIN)/chainserve package --arch $(ARCH) $(EXTRA_FLAGS)

# Resolve pyproject.toml again into requirements.lock
lock: $(RUN_STAMP)
	$(BIN)/chainserve package --update-lock

# `sam build` runs this (template.yaml: BuildMethod makefile); it needs no virtualenv.
build-ChainserveFunction:
	$(PYTHON) -m service.deploy.package --arch $(ARCH) --into "$(ARTIFACTS_DIR)" $(EXTRA_FLAGS)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
