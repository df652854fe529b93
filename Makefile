# amr: two commands on a fresh machine.
#   make run   creates .venv if needed, installs amr and starts the service in the background
#   make test  installs what the tests need and runs every test (lint, layers, types, unit, integration)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run stop test lint unit integration compat bench bench-endpoint bench-failover bench-sharded bench-resharding clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/amr serve --detach
	@echo "Use the CLI with: source $(VENV)/bin/activate  (then: amr group create -n rg-amr-lab -l eastus)"

stop: $(STAMP)
	$(BIN)/amr stop

lint: $(STAMP)
	$(BIN)/ruff check src tests bench compat
	$(BIN)/ruff format --check src tests bench compat
	$(BIN)/lint-imports
	$(BIN)/mypy src

# The network tests make test hosts with network namespaces (root and iproute2, as on CI machines);
# the attack tests play another local user with the system's python3 and util-linux's setpriv/nsenter.
test: lint
	command -v ip >/dev/null || (apt-get update -qq && apt-get install -y -qq iproute2)
	test -x /usr/bin/python3 && command -v setpriv nsenter >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq python3 util-linux)
	$(call run_tests,tests)

# Unit tests are CPU-bound: one worker per core.
unit: $(STAMP)
	$(BIN)/pytest -q -n auto --dist loadfile tests/unit

integration: $(STAMP)
	$(call run_tests,tests/integration)

# Tests run in two pytest runs: every module not marked serial side by side on TEST_WORKERS workers
# (each worker takes whole modules: a module's shared amr service starts once), then the serial ones
# (tests/conftest.py says which and why) alone. The workers mostly wait on processes, so more workers
# than the machine's 2 cores pay off. Both runs end with pytest's -ra summary; when one failed, the
# last lines are the failed test ids of both (pytest's last-failed cache, cleared by the first run).
# A serial run that finds no serial tests (exit 5) is not a failure.
TEST_WORKERS ?= 4
define run_tests
	@failed=0; \
	$(BIN)/pytest -q --cache-clear -n $(TEST_WORKERS) --dist loadfile -m "not serial" $(1) || failed=1; \
	$(BIN)/pytest -q -m serial $(1); serial=$$?; \
	[ $$serial = 0 ] || [ $$serial = 5 ] || failed=1; \
	if [ $$failed != 0 ]; then \
		echo "=== failed in $(1) (both runs) ==="; \
		$(BIN)/python -c 'import json; print(*json.load(open(".pytest_cache/v/cache/lastfailed")), sep="\n")'; \
	fi; \
	exit $$failed
endef

# Redis clients' own tests and common commands through amr and against the engine itself (compat/run.py
# says what and how); the clients install into .cache/compat on the first run. COMPAT_ARGS: its options.
compat: $(STAMP)
	$(BIN)/python compat/run.py $(COMPAT_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/provision.py

bench-endpoint: $(STAMP)
	$(BIN)/python bench/endpoint.py

bench-failover: $(STAMP)
	$(BIN)/python bench/failover.py

bench-sharded: $(STAMP)
	$(BIN)/python bench/sharded.py

bench-resharding: $(STAMP)
	$(BIN)/python bench/resharding.py

clean:
	rm -rf $(VENV) build *.egg-info
