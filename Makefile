# The few verbs people type. Every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
REDIS_STACK_PORT ?= 6380
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# The browser test drives Debian's Chromium; a tool's own browser download cannot work offline.
CHROMIUM := /usr/bin/chromium
# The benchmark's load generator (Debian's wrk).
WRK := /usr/bin/wrk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

LANGGRAPH_VENV := .venv-langgraph
LANGGRAPH_STAMP := $(LANGGRAPH_VENV)/.installed

.PHONY: install install-dev run serve test test-fast drill fuzz soak lint typecheck redis redis-cluster bench bench-console bench-semantic profile langgraph-dev clean

# What serving needs (requirements.lock): `make run` and `make serve` install nothing else.
# Bytecode is compiled at install: uv does not by default, and where PYTHONDONTWRITEBYTECODE is
# set nothing ever caches it, so every start compiled ~2,300 modules (7.6 -> 2.9 s of import).
install: $(STAMP)

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv>=0.13,<0.14"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	touch $(STAMP)

# Serving plus the tests' tools, local embeddings (torch) and the local Redis Stack.
install-dev: $(DEV_STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.lock scripts/redis_stack.py
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m scripts.redis_stack prepare
	touch $(DEV_STAMP)

run: install
	$(BIN)/uvicorn server:app --host $(HOST) --port $(PORT)

# Production command line (the Dockerfile's CMD): gunicorn with draining uvicorn workers.
serve: install
	$(BIN)/gunicorn -c gunicorn.conf.py server:app

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

# langgraph-api needs sse-starlette>=3, LangServe <2: the LangGraph dev server gets its own venv.
$(LANGGRAPH_STAMP): requirements-langgraph.lock $(DEV_STAMP)
	test -x $(LANGGRAPH_VENV)/bin/python || $(PYTHON) -m venv $(LANGGRAPH_VENV)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(LANGGRAPH_VENV)/bin/python -r requirements-langgraph.lock
	touch $@

langgraph-dev: $(LANGGRAPH_STAMP)
	$(LANGGRAPH_VENV)/bin/langgraph dev --no-browser --host $(HOST) --port 2024

# The JavaScript client test's packages, exactly as locked (npm ci).
JS_DEPS := tests/js/node_modules/.package-lock.json
$(JS_DEPS): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --silent
# The LangGraph JavaScript client's (beside LangServe's: it needs @langchain/core 1, which has
# no RemoteRunnable), and esbuild, which bundles it for the browser test.
LANGGRAPH_JS_DEPS := tests/js-langgraph/node_modules/.package-lock.json
$(LANGGRAPH_JS_DEPS): tests/js-langgraph/package.json tests/js-langgraph/package-lock.json
	npm ci --prefix tests/js-langgraph --no-audit --no-fund --silent

# Grafana's dashboard schema (@grafana/schema) and the TypeScript compiler that checks the chart's
# dashboard against it, as locked.
GRAFANA_DEPS := tests/grafana/node_modules/.package-lock.json
$(GRAFANA_DEPS): tests/grafana/package.json tests/grafana/package-lock.json
	npm ci --prefix tests/grafana --no-audit --no-fund --silent

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

$(WRK):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk

# pytest-xdist: one worker more than the cores, since about a quarter of the suite's time is
# spent waiting (leases, timeouts, servers starting); a test file runs on one worker
# (tests/work_units.py). On two cores, one run each: 2 workers 472 s, 3 workers 452 s with
# 171% of the CPU in use.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: lint typecheck $(CHROMIUM) $(WRK) $(LANGGRAPH_STAMP) $(JS_DEPS) $(LANGGRAPH_JS_DEPS) $(GRAFANA_DEPS)
	$(BIN)/pytest -n $(TEST_WORKERS) --no-loadscope-reorder --durations=20

# Everyday work, under a minute: lint, types, the pure functions' tests and the HTTP contract
# in process (create_app behind httpx's ASGI transport); no server, Redis or upstream starts.
# mypy runs beside the tests: with a cold cache it is most of the minute.
test-fast: lint
	$(BIN)/mypy & typecheck=$$!; \
	$(BIN)/pytest -q tests/unit tests/contract; tests=$$?; \
	wait $$typecheck && exit $$tests

# The drills on their full timelines (`make test` runs them shorter).
drill: install-dev
	DRILL_TIMELINE=full $(BIN)/pytest -q tests/reliability

# Long schema fuzzing (Schemathesis, every phase): at least 20,000 cases, about 11 minutes.
fuzz: install-dev
	FUZZ_PHASES=coverage,fuzzing,stateful FUZZ_EXAMPLES=500 FUZZ_MINIMUM_CASES=20000 \
		$(BIN)/pytest -s tests/http/test_fuzz.py

# Ten minutes of mixed traffic on gunicorn and Redis; results and chart in bench/results/.
soak: install-dev
	$(BIN)/python -m bench.soak

redis: install-dev
	$(BIN)/python -m scripts.redis_stack serve --port $(REDIS_STACK_PORT) --dir .redis-data --appendonly

# A throwaway local Redis Cluster (3 masters, 1 replica each) from the same binaries; it prints
# the REDIS_URL to use with REDIS_CLUSTER=true.
redis-cluster: install-dev
	$(BIN)/python -m scripts.redis_cluster

# graphgate's request path beside five reference servers (about 8 minutes): bench/results/
# and the table of docs/performance.md. The semantic cache's threshold has its own:
# `make bench-semantic`.
bench: install-dev $(WRK)
	$(BIN)/python -m bench.request_path --docs

# Where the request path spends its CPU: py-spy on graphgate under wrk's load.
profile: install-dev $(WRK)
	$(BIN)/python -m bench.profile

# The operator console over 90 days of 1,000 principals' usage, in Chromium (about a minute):
# bench/results/console.json.
bench-console: install-dev $(CHROMIUM)
	$(BIN)/python -m bench.console_render

bench-semantic: install-dev
	$(BIN)/python -m bench.semantic_threshold

clean:
	rm -rf $(VENV) $(LANGGRAPH_VENV) tests/js/node_modules tests/js-langgraph/node_modules tests/grafana/node_modules .langgraph_api .redis-data .pytest_cache .mypy_cache .ruff_cache
