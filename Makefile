# amr: two commands on a fresh machine.
#   make run   creates .venv if needed, installs amr and starts the service in the background
#   make test  installs what the tests need and runs every test (lint, layers, types, unit, integration)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run stop test lint unit integration bench bench-endpoint bench-failover bench-sharded bench-resharding clean

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
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy src

# The network tests make test hosts with network namespaces (root and iproute2, as on CI machines);
# the attack tests play another local user with the system's python3 and util-linux's setpriv/nsenter.
test: lint
	command -v ip >/dev/null || (apt-get update -qq && apt-get install -y -qq iproute2)
	test -x /usr/bin/python3 && command -v setpriv nsenter >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq python3 util-linux)
	$(BIN)/pytest -q tests

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

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
