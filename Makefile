# Smart Maintenance — every target runs from a fresh checkout: it installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
UV_VERSION := 0.13.8
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
NOTEBOOK_FILE ?= 01_data_exploration.ipynb

.PHONY: help install up up-detached down test test-fast seed migrate notebook eda export-csv schema bench-ingest bench-loop lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --python $(PY) -r requirements.lock
	$(UV) pip install --python $(PY) --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned lock (requirements.lock) and the project

up: install ## run the whole stack in the foreground (embedded PostgreSQL when DATABASE_URL is unset); Ctrl-C stops it
	$(PY) -m apps.cli up

up-detached: install ## the same in the background; `make down` stops it
	$(PY) -m apps.cli up --detach

down: install ## stop a stack started with `make up-detached` (or in another shell)
	$(PY) -m apps.cli down

test: install ## run the whole test suite against a real PostgreSQL (SM_TEST_ADMIN_DATABASE_URL)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## the suite without the tests marked slow
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

migrate: install ## apply the migrations to DATABASE_URL (alembic upgrade head)
	$(PY) -m apps.cli migrate

seed: install ## seed the demo fleet into DATABASE_URL (15 sensors x 600 readings, injected faults)
	$(PY) -m apps.cli seed

notebook: install ## run notebooks/$(NOTEBOOK_FILE) with papermill (what the compose notebook_runner runs)
	$(PY) -m apps.cli notebook $(NOTEBOOK_FILE)

eda: install ## notebook 01: data exploration of data/sensor_data.csv, plots to docs/ml/eda/, one MLflow run
	$(PY) -m apps.cli notebook 01_data_exploration.ipynb

export-csv: install ## write data/sensor_data.csv from DATABASE_URL
	$(PY) scripts/export_sensor_data_csv.py

schema: install ## regenerate docs/db/schema.sql from a fresh migration (pg_dump)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/export_schema.sh

bench-ingest: install ## ingest benchmark: API on loopback + fresh database; writes docs/benchmarks/ingest.md
	@command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null 2>&1; } || echo "wrk unavailable: the single-reading phase uses the aiohttp client"
	$(PY) scripts/bench_ingest.py --output docs/benchmarks/ingest.md

bench-loop: install ## maintenance-loop benchmark: ingest 202 -> alert visible (p50/p95) under 5,000 readings/s; writes docs/benchmarks/loop.md
	$(PY) scripts/bench_loop.py --output docs/benchmarks/loop.md

lint: install ## ruff
	$(VENV)/bin/ruff check apps core scripts tests ui

clean: ## remove the virtualenv and caches (keeps .data/ and logs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache
