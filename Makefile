# Two commands on a fresh machine: `make demo` and `make test`. Everything else bootstraps itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000
export UV_COMPILE_BYTECODE := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: install browser postgres demo test test-scale dev dev-stop bench docs lint format clean

install: $(STAMP)

# uv when available (on PATH, or bootstrapped into the venv with pip), else plain pip.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if command -v uv >/dev/null 2>&1; then UV=uv; \
	elif $(BIN)/pip install -q uv==0.13.9 >/dev/null 2>&1; then UV=$(BIN)/uv; \
	else UV=; fi; \
	if [ -n "$$UV" ]; then \
	  $$UV pip install --python $(BIN)/python --compile-bytecode -r requirements.lock -e '.[dev,scale]'; \
	else \
	  $(BIN)/pip install -q -r requirements.lock -e '.[dev,scale]'; \
	fi
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/elt demo

# Temp folders under the checkout: pytest keeps only its last three session folders per temp
# root, so test sessions of two checkouts sharing /tmp would delete each other's files.
test: $(STAMP) browser
	mkdir -p .pytest_tmp
	PYTEST_DEBUG_TEMPROOT=$(CURDIR)/.pytest_tmp $(BIN)/python -m pytest -q elt_platform_tests

# The control plane on PostgreSQL (README: running at scale): a throwaway server from Debian's
# postgresql package on 127.0.0.1 on a free port (elt_demo/services.py, stopped by PID at the end,
# also on failure), and the platform tests that touch the metadata store, locks and Dagster's
# storage run against it, plus elt_platform_tests/scale (deselected by plain `make test`).
SCALE_TESTS := elt_platform_tests/scale elt_platform_tests/store \
  elt_platform_tests/audit/test_ledger.py elt_platform_tests/audit/test_tamper.py \
  elt_platform_tests/governance/test_retention.py elt_platform_tests/promotion/test_gc_pending.py \
  elt_platform_tests/promotion/test_kill9.py elt_platform_tests/promotion/test_promotion.py \
  elt_platform_tests/sandboxes/test_create.py elt_platform_tests/sandboxes/test_prune.py \
  elt_platform_tests/test_concurrency.py

test-scale: $(STAMP) postgres
	mkdir -p .pytest_tmp
	pg_dir=$$(mktemp -d /tmp/elt-test-postgres.XXXXXX) && \
	PYTEST_DEBUG_TEMPROOT=$(CURDIR)/.pytest_tmp $(BIN)/python -m elt_demo.services run $$pg_dir -- \
	  $(BIN)/python -m pytest -q $(SCALE_TESTS); \
	status=$$?; rm -rf $$pg_dir; exit $$status

# Nothing to do when PostgreSQL's server binaries are there; as root (CI) apt-get installs them.
postgres:
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing postgresql (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
	  echo "PostgreSQL is missing: install it with 'sudo apt-get install -y postgresql' (make test-scale needs it)"; \
	  exit 1; \
	fi

# The browser test (elt_platform_tests/ui) drives Debian's chromium through Playwright (a dev
# dependency; Playwright's own browser download is not reachable here). Nothing to do when
# chromium is there; as root (CI) apt-get installs it; otherwise say how.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium (apt-get, ~90 s)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "chromium is missing: install it with 'sudo apt-get install -y chromium' (the browser test needs it)"; \
	  exit 1; \
	fi

dev: $(STAMP)
	$(BIN)/elt dev --port $(PORT)

DEV_PID := $(or $(ELT_HOME),.elt)/dev.pid

# dev.pid lists `elt dev` (which stops the webserver, daemon and demo API on SIGINT) and then
# its children, stopped by PID if they outlive it.
dev-stop:
	@if [ ! -f $(DEV_PID) ]; then echo "not running"; exit 0; fi; \
	pids=$$(cat $(DEV_PID)); main=$$(echo $$pids | cut -d' ' -f1); \
	echo "stopping (pids $$(echo $$pids))"; kill -INT $$main 2>/dev/null || true; \
	for i in $$(seq 1 40); do kill -0 $$main 2>/dev/null || break; sleep 0.5; done; \
	for pid in $$pids; do kill -TERM $$pid 2>/dev/null || true; done; rm -f $(DEV_PID)

docs: $(STAMP)
	$(BIN)/elt docs build

bench: $(STAMP)
	$(BIN)/python -m elt_demo.bench

lint: $(STAMP)
	$(BIN)/ruff check elt_platform elt_demo elt_platform_tests
	$(BIN)/ruff format --check elt_platform elt_demo elt_platform_tests
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix elt_platform elt_demo elt_platform_tests
	$(BIN)/ruff format elt_platform elt_demo elt_platform_tests

clean:
	rm -rf .elt dbt_project/target dbt_project/logs
