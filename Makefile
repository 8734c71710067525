# The user's entry points. Each target is a thin wrapper over a script so that the
# logic lives in one place and can be run (and read) without make.
# Ports, data directory and external endpoints: see infra/defaults.env (override with env vars).

SHELL := /bin/bash
WITH_ENV := bash infra/with-env.sh
RATE ?= 200
DURATION ?= 60

.PHONY: help install build up down clean status env logs seed load verify test test-unit test-integration test-e2e test-cluster chaos bench bi connector-apply

help:
	@echo "make up        install what is missing, start the whole pipeline (idempotent)"
	@echo "make seed      insert a realistic batch of orders into the source"
	@echo "make load      steady mixed workload: make load RATE=500 DURATION=60"
	@echo "make verify    wait for the pipeline to catch up, reconcile source and warehouse"
	@echo "make status    what runs, connector state, replication slot lag"
	@echo "make connector-apply   show how the running connector differs from connectors/orders-source.json, apply the file (YES=1: no question)"
	@echo "make env       KEY=value lines to connect (psql, BI tools, scripts)"
	@echo "make test      type-check, unit, integration and end-to-end tests against the real stack"
	@echo "make chaos     on a cluster (KAFKA_BROKERS=3 CONNECT_WORKERS=2 PROCESSORS=2 make up): kill -9 brokers, a worker, a processor under load; verify after each"
	@echo "make test-cluster   a cluster of its own (own ports and data), make chaos against it, then down; a secured node: REST auth checks"
	@echo "make bench     benchmark against the Debezium JDBC sink and native replication"
	@echo "make bi        Apache Superset with a live Orders dashboard"
	@echo "make down      stop everything;  make clean: stop and delete all data"

install:
	@bash infra/install.sh

build:
	@npm run --silent build

up:
	@bash infra/up.sh

down:
	@bash infra/down.sh

clean:
	@bash infra/down.sh
	@bash infra/clean.sh

status:
	@bash infra/status.sh

# make up never overwrites a running connector's config (REST is the source of truth); this applies the file on purpose.
connector-apply:
	@bash infra/connect.sh apply

env:
	@bash infra/env.sh
	@bash bi/env.sh

logs:
	@bash infra/logs.sh

seed: build
	@$(WITH_ENV) node dist/seed/seed.js $(ARGS)

load: build
	@$(WITH_ENV) node dist/seed/load.js --rate $(RATE) --duration $(DURATION) $(ARGS)

verify: build
	@$(WITH_ENV) node dist/seed/verify.js $(ARGS)

test-integration: up
	@$(WITH_ENV) npx jest --selectProjects integration --runInBand

test-unit:
	@npx jest --selectProjects unit

test-e2e: up
	@$(WITH_ENV) npx jest --selectProjects e2e --runInBand

# Type-check and unit tests first (fast, no services), then the real stack, integration and end-to-end.
test:
	@bash e2e/run-all.sh

# Kills and restarts nodes of a running cluster one at a time while make load runs; make verify after each.
chaos: build
	@bash infra/chaos.sh

# Not part of make test (.ci/run runs it after make test): a secured cluster of its own (ports 20000+, DATA_DIR
# .data-cluster), make chaos against it, the secured-endpoint checks, then down; a secured node of its own for the REST checks.
test-cluster:
	@bash e2e/cluster/run.sh

bench: build
	@$(WITH_ENV) bash bench/run.sh

bi:
	@bash bi/up.sh
