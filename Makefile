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
# The tests that talk to the database's schema and SQL: migrations and the schema dump, ingest, queries, the
# repositories behind the agents and the alerting/maintenance/key APIs, the outbox. `make test-pg18` runs them on
# PostgreSQL 18 (`make test` runs the whole suite on SM_TEST_ADMIN_DATABASE_URL, the system PostgreSQL 15).
PG18_TESTS ?= tests/integration/test_migrations.py tests/integration/test_migration_0003.py \
	tests/integration/test_schema_dump.py tests/unit/test_timescale_sql.py \
	tests/api/test_ingest*.py tests/integration/test_ingest_csv.py \
	tests/api/test_queries.py tests/integration/test_query_capabilities.py tests/api/test_fleet.py \
	tests/integration/test_alert_upsert.py tests/integration/test_alert_window_query.py \
	tests/integration/test_reference_supersede.py tests/agents tests/api/test_alerting_api.py tests/api/maintenance \
	tests/api/test_admin_keys.py tests/api/test_dead_letters.py \
	tests/integration/test_outbox_relay.py tests/integration/test_seed.py \
	tests/api/test_input_bounds.py tests/api/test_fuzz.py tests/api/test_webhook_ssrf.py tests/api/test_scopes_operate.py
NOTEBOOK_FILE ?= 01_data_exploration.ipynb
# RUNNER=local (default): papermill here, against the local MLflow (started for the run when it is not up).
# RUNNER=compose: the same notebook in the compose notebook_runner service.
RUNNER ?= local
# Extra papermill parameters for the training targets, e.g. NB_PARAMS="-p max_sensors=3".
NB_PARAMS ?=
LOAD_USERS ?= 20
LOAD_SPAWN_RATE ?= 5
LOAD_DURATION ?= 60s

# $(call run_notebook,<file>): one papermill run of notebooks/<file>, locally or in compose.
define run_notebook
	@if [ "$(RUNNER)" = "compose" ]; then \
		echo "docker compose run --rm -e NOTEBOOK_FILE=$(1) notebook_runner"; \
		docker compose --profile ml run --rm -e NOTEBOOK_FILE=$(1) notebook_runner; \
	else \
		$(PY) -m apps.cli notebook $(1) $(NB_PARAMS); \
	fi
endef

.PHONY: help install browser up up-detached down test test-fast test-timescale test-pg18 seed migrate notebook eda export-csv schema bench-ingest bench-loop bench-mqtt bench-alerts bench-ui ui-screenshots lint clean \
	train-anomaly train-forecast tune-forecast train-rul classification-gauntlet vibration-gauntlet audio-gauntlet load-test datasets

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# --compile-bytecode: the .pyc files are written once here (PYTHONDONTWRITEBYTECODE may be set on CI machines, and
# every test subprocess and notebook kernel would otherwise compile mlflow, pandas and scikit-learn from source).
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --python $(PY) --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(PY) --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned lock (requirements.lock) and the project

up: install ## run the whole stack in the foreground (embedded PostgreSQL when DATABASE_URL is unset); Ctrl-C stops it
	$(PY) -m apps.cli up

up-detached: install ## the same in the background; `make down` stops it
	$(PY) -m apps.cli up --detach

down: install ## stop a stack started with `make up-detached` (or in another shell)
	$(PY) -m apps.cli down

browser: ## Debian's headless Chromium and ChromeDriver for the console's browser tests (installed when missing)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "installing Debian chromium + chromium-driver for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }; }

test: install browser ## run the whole test suite against a real PostgreSQL (SM_TEST_ADMIN_DATABASE_URL)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install browser ## the suite without the tests marked slow
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-pg18: install ## the database-facing tests (PG18_TESTS) on a private embedded PostgreSQL 18 started for the run
	$(PY) scripts/pg18_server.py -- $(PY) -m pytest $(PG18_TESTS) $(PYTEST_ARGS)

test-timescale: install ## tests/timescale and the database-facing tests (PG18_TESTS) on the TimescaleDB server of SM_TEST_TIMESCALE_URL (DEVELOPERS.md)
	@test -n "$$SM_TEST_TIMESCALE_URL" || { echo "set SM_TEST_TIMESCALE_URL to a PostgreSQL server with TimescaleDB preloaded (DEVELOPERS.md)" >&2; exit 2; }
	SM_TEST_ADMIN_DATABASE_URL="$$SM_TEST_TIMESCALE_URL" $(PY) -m pytest tests/timescale $(PG18_TESTS) $(PYTEST_ARGS)

migrate: install ## apply the migrations to DATABASE_URL (alembic upgrade head)
	$(PY) -m apps.cli migrate

seed: install ## seed the demo fleet into DATABASE_URL (15 sensors x 600 readings, injected faults)
	$(PY) -m apps.cli seed

notebook: install ## run notebooks/$(NOTEBOOK_FILE) with papermill (RUNNER=compose: in the notebook_runner service)
	$(call run_notebook,$(NOTEBOOK_FILE))

eda: install ## notebook 01: data exploration of data/sensor_data.csv, plots to docs/ml/eda/, one MLflow run
	$(call run_notebook,01_data_exploration.ipynb)

train-anomaly: install ## notebook 02: IsolationForest per sensor type vs the robust baseline, registered as anomaly_<type>
	$(call run_notebook,02_anomaly_isolation_forest.ipynb)

train-forecast: install ## notebook 03: Prophet vs LightGBM vs seasonal naive, rolling-origin backtest, forecast_<type>
	$(call run_notebook,03_forecast_prophet.ipynb)

tune-forecast: install ## notebook 04: forecast hyperparameters chosen on validation folds, reported on later folds
	$(call run_notebook,04_forecast_tuning.ipynb)

datasets: install ## download the gauntlets' datasets into SM_DATASETS_DIR, checksums verified (DATASETS=ai4i2020,ims,cwru,cmapss,mimii to choose)
	$(PY) -m apps.cli datasets $(if $(DATASETS),--only $(DATASETS))

classification-gauntlet: install ## notebook 05: AI4I 2020 failure classification (real file + generator)
	$(call run_notebook,05_classification_gauntlet_ai4i.ipynb)

vibration-gauntlet: install ## notebook 06: NASA IMS / CWRU bearings, health indicators and alarms
	$(call run_notebook,06_vibration_gauntlet.ipynb)

audio-gauntlet: install ## notebook 07: MIMII / DCASE machine-sound anomaly detection
	$(call run_notebook,07_audio_gauntlet.ipynb)

train-rul: install ## notebook 08: remaining useful life on NASA C-MAPSS FD001 (engine-grouped CV, 90 % conformal interval), rul_turbofan
	$(call run_notebook,08_rul.ipynb)

load-test: install ## locust headless against the local stack (API_BASE_URL) for LOAD_DURATION, prints the stats table
	$(PY) -m locust -f locustfile.py --headless -u $(LOAD_USERS) -r $(LOAD_SPAWN_RATE) --run-time $(LOAD_DURATION) \
		--host "$$($(PY) -c 'from apps.cli.common import cli_settings; print(cli_settings().api_base_url)')" --only-summary

export-csv: install ## write data/sensor_data.csv from DATABASE_URL
	$(PY) scripts/export_sensor_data_csv.py

schema: install ## regenerate docs/db/schema.sql from a fresh migration (pg_dump)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/export_schema.sh

bench-ingest: install ## ingest benchmark: API on loopback + fresh database (on BENCH_DATABASE_URL when set, e.g. a TimescaleDB server); BUS=nats WORKERS=2 runs the agents in worker processes on NATS JetStream; writes its section of docs/benchmarks/ingest.md
	@command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null 2>&1; } || echo "wrk unavailable: the single-reading phase uses the aiohttp client"
	$(PY) scripts/bench_ingest.py --bus $(BUS) --bus-workers $(WORKERS) --output docs/benchmarks/ingest.md

BUS ?= inprocess
WORKERS ?= 2
RATES ?= $(if $(filter nats,$(BUS)),5000$(comma)20000,5000)
comma := ,
bench-loop: install ## maintenance-loop benchmark: ingest 202 -> alert visible (p50/p95), readings fully processed/s; BUS=nats WORKERS=2 adds NATS JetStream + worker processes beside the in-process bus, at RATES (5,000 and 20,000/s); writes docs/benchmarks/loop.md
	$(PY) scripts/bench_loop.py --bus $(BUS) --workers $(WORKERS) --rates $(RATES) --output docs/benchmarks/loop.md

bench-mqtt: install ## MQTT ingest benchmark: readings/s from QoS 1 publish to stored row (messages of 100 readings, single readings) through a private mosquitto and the bridge, beside HTTP batch ingest in the same run; writes docs/benchmarks/mqtt.md
	$(PY) scripts/bench_mqtt.py --output docs/benchmarks/mqtt.md

bench-alerts: install ## alert quality: the simulator's faults over 24 simulated hours on a fresh stack, baseline then after train-anomaly (detected, work orders per fault, false work orders per sensor-day); writes docs/benchmarks/alert_quality.md
	$(PY) scripts/bench_alerts.py --output docs/benchmarks/alert_quality.md

bench-ui: install ## console timings: 15 sensors x 30 days of 1-minute data, every page after the first load; prints the table (a committed run: docs/benchmarks/ui.md)
	$(PY) scripts/bench_ui.py

ui-screenshots: install browser ## screenshots of the fleet page and the sensor explorer of a running `make up` stack -> docs/ui/
	$(PY) scripts/ui_screenshots.py

lint: install ## ruff (rules in pyproject.toml) on the whole tree, notebooks included; mypy on core (strict) and apps; the import contracts (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean: ## remove the virtualenv and caches (keeps .data/ and logs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache
