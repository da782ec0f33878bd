# Every target runs scripts/setup.sh first: a fresh clone needs nothing installed by hand.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-fast lint serve bench clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup:  ## install everything: Debian packages if missing, the venv, npm packages
	@bash scripts/setup.sh

test: setup  ## the whole suite: unit, contract (every store, real emulators), e2e, packaging
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup  ## unit and HTTP tests only (no emulators)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: setup  ## ruff and mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

serve: setup  ## serve the API locally on 127.0.0.1:8080 (SQLite in .run/local.sqlite; auth off unless OVERCAST_AUTH_ISSUER is set)
	if [ -z "$$OVERCAST_AUTH_ISSUER" ]; then export OVERCAST_AUTH_DISABLED=$${OVERCAST_AUTH_DISABLED:-true}; fi; \
	$(PY) -m handlers.local --port $${PORT:-8080}

bench: setup  ## print the benchmark figures
	$(PY) -m bench

.PHONY: drill drill-fast
DRILL_ARGS ?=

drill: setup  ## the failover drill: AWS primary, Azure secondary, Route 53 timings (~6 min); report + timeline in .run/drill/
	$(PY) -m failover drill $(DRILL_ARGS)

drill-fast: setup  ## the same drill at CI speed (Route 53 time scaled by 0.1, ~1 min)
	$(PY) -m failover drill --fast $(DRILL_ARGS)

clean:  ## remove local state and build output (keeps the venv and node_modules)
	rm -rf .run .serverless* .pytest_cache .ruff_cache .mypy_cache

.PHONY: ready
PROVIDER ?= openwhisk

ready: setup  ## readiness of a provider being added: make ready PROVIDER=<name> (docs/adding-a-provider.md)
	$(PY) -m pytest tests/readiness --provider $(PROVIDER) $(PYTEST_ARGS)

.PHONY: requirements validate
requirements: setup  ## regenerate requirements/<provider>.txt (pinned, hashed, for each cloud's Python) and validators.txt
	$(PY) -m tools.requirements compile

validate: setup  ## the vendors' validators: cfn-lint, checkov on the AWS templates (dev, prod) and the Azure ARM template; pins current
	$(PY) -m pytest tests/packaging/test_validators.py tests/packaging/test_requirements.py $(PYTEST_ARGS)

.PHONY: nemesis
RUNS ?= 10
SEED ?= 1

nemesis: setup  ## seeded nemesis runs on the local mesh (aws + azure): make nemesis RUNS=N SEED=S; histories, summary.json, convergence.png in .run/nemesis/
	$(PY) -m failover.nemesis --runs $(RUNS) --seed $(SEED)

.PHONY: sdk-drill
FAULT ?= crash

sdk-drill: setup  ## failover-client fleets through a primary fault on the local mesh (FAULT=crash|freeze|store-down); report in .run/sdk-drill/
	$(PY) -m failover.sdk_drill --fault $(FAULT)
