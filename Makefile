# Two commands for a newcomer: `make demo` runs the product, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Test servers on this machine; CI exports its own. Tests skip without them unless
# NOVA_REQUIRE_SERVICES=1 (set by .ci/run), which makes a missing server a failure.
export NOVA_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
export NOVA_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# Tests start their own clusters; token auth would make them depend on ~/.ray state.
TEST_ENV := RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0

.PHONY: demo test install lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	RAY_USAGE_STATS_ENABLED=0 $(BIN)/nova demo

test: $(STAMP) storefront/web-pixel/node_modules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)
	cd storefront/web-pixel && npm test --silent

storefront/web-pixel/node_modules: storefront/web-pixel/package-lock.json
	cd storefront/web-pixel && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(TEST_ENV) $(BIN)/python -m bench.ingress
	$(TEST_ENV) $(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.quality

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache storefront/web-pixel/node_modules
