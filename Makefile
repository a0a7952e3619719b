# flight_fees — two commands on a fresh machine: `make demo`, then `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# flight-fees serve (maps, invoices, logs); links use FLIGHT_FEES_PUBLIC_URL (default :8090)
SERVE_PORT ?= 8090
# the Dagster instance of demo / dev / test: local (SQLite under .dagster_home, dagster.yaml) or,
# with DAGSTER_INSTANCE=postgres, dagster-prod.yaml (runs, events, schedules, sensor ticks on
# PostgreSQL at DAGSTER_POSTGRES_URL) under .dagster_home/postgres
DAGSTER_INSTANCE ?= local
ifeq ($(DAGSTER_INSTANCE),postgres)
INSTANCE_YAML := dagster-prod.yaml
export DAGSTER_HOME := $(CURDIR)/.dagster_home/postgres
else
INSTANCE_YAML := dagster.yaml
export DAGSTER_HOME := $(CURDIR)/.dagster_home
endif
# dg checks that the project's venv is the active one
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help install demo test test-fast dev lint typecheck check-defs bench bench-pipeline clean
.PHONY: prod-code-server prod-daemon prod-webserver workers

help:
	@echo "make demo   - install into .venv, seed the embedded demo data, run the pipeline end to end"
	@echo "              (a home with data is kept; make demo RESET=1 deletes it first, listing what)"
	@echo "make test   - the whole test suite (SQLite and PostgreSQL)"
	@echo "make dev    - the Dagster UI on http://127.0.0.1:3000 + documents/maps on http://127.0.0.1:$(SERVE_PORT)"
	@echo "make bench  - crossing-engine benchmark (not part of make test)"
	@echo "make bench-pipeline [ARGS=\"--flights N --json FILE\"] - read / library / in-process / daemon paths side by side (not part of make test)"
	@echo "make lint   - ruff"
	@echo "make typecheck - mypy on the files of [tool.mypy] in pyproject.toml (part of make test)"
	@echo "make prod-code-server | prod-daemon | prod-webserver - the production services, one each (README \"Production\")"
	@echo "make workers - a Celery worker for process_flights_celery (FLIGHT_FEES_EXECUTOR=celery; docs/DEPLOYMENT.md)"
	@echo "DAGSTER_INSTANCE=postgres make dev|demo|test - Dagster instance on PostgreSQL (DAGSTER_POSTGRES_URL)"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# WeasyPrint (invoice PDFs) loads pango at run time: install it when missing (Debian)
	@$(BIN)/python -c "import weasyprint" 2>/dev/null || { apt-get update -q && apt-get install -y -q libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core; } || echo "WeasyPrint needs pango: install libpango-1.0-0 libpangoft2-1.0-0"
	$(BIN)/python -c "import weasyprint"
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: $(INSTANCE_YAML)
	@$(if $(filter postgres,$(DAGSTER_INSTANCE)),test -n "$$DAGSTER_POSTGRES_URL" || { echo "DAGSTER_INSTANCE=postgres needs DAGSTER_POSTGRES_URL (postgresql://user@host/db)"; exit 2; })
	mkdir -p $(DAGSTER_HOME)
	cp $(INSTANCE_YAML) $(DAGSTER_HOME)/dagster.yaml

# RESET=1: delete the embedded database, track store and outputs first (listed); without it a
# home that holds data is kept and summarised
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/flight-fees demo $(if $(filter 1 yes true,$(RESET)),--reset)

test: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ruff check flight_fees flight_fees_tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/dg check defs
	$(BIN)/pytest -n 2 --dist loadgroup -q

test-fast: install
	$(BIN)/pytest -q -x -m "not slow"

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/flight-fees db upgrade
	@# the document server (maps, invoices, logs: the UI's links open there) beside Dagster;
	@# Ctrl-C (or Dagster exiting) stops both
	@$(BIN)/flight-fees serve --port $(SERVE_PORT) & serve=$$!; \
	trap 'kill $$serve 2>/dev/null; wait $$serve 2>/dev/null' EXIT INT TERM; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: install
	$(BIN)/ruff check flight_fees flight_fees_tests benchmarks scripts
	$(BIN)/ruff format --check flight_fees flight_fees_tests benchmarks scripts

typecheck: install
	$(BIN)/mypy

check-defs: install
	$(BIN)/dg check defs

bench: install
	$(BIN)/python benchmarks/bench_crossings.py

bench-pipeline: install
	$(BIN)/python benchmarks/bench_pipeline.py $(ARGS)

# production topology (README "Production"): three services, each in the foreground, to run
# under a supervisor (systemd unit, container); all three need DAGSTER_POSTGRES_URL and the
# FLIGHT_FEES_* settings (FLIGHT_FEES_DATABASE_URL ...); the instance is PROD_DAGSTER_HOME
PROD_DAGSTER_HOME ?= $(CURDIR)/.dagster_home/prod

$(PROD_DAGSTER_HOME)/dagster.yaml: dagster-prod.yaml
	mkdir -p $(PROD_DAGSTER_HOME)
	cp dagster-prod.yaml $@

prod-code-server: install $(PROD_DAGSTER_HOME)/dagster.yaml
	$(BIN)/flight-fees db upgrade
	DAGSTER_HOME=$(PROD_DAGSTER_HOME) scripts/prod_service.sh code-server

prod-daemon: install $(PROD_DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(PROD_DAGSTER_HOME) scripts/prod_service.sh daemon

prod-webserver: install $(PROD_DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(PROD_DAGSTER_HOME) scripts/prod_service.sh webserver

# scale-out (docs/DEPLOYMENT.md): a Celery worker running the steps of process_flights_celery,
# in the foreground; as many as wanted, on any machine with this environment (the production
# instance, FLIGHT_FEES_CELERY_BROKER / _BACKEND, default RabbitMQ and Redis on 127.0.0.1);
# FLIGHT_FEES_WORKER_CONCURRENCY processes each (default: the cores)
workers: install $(PROD_DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(PROD_DAGSTER_HOME) scripts/prod_service.sh worker

clean:
	rm -rf .flight_fees .dagster_home .pytest_cache
