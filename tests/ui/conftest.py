"""A real API for the console's AppTest tests: its own database (migrated, demo fleet seeded plus alerts,
anomalies, work orders and a dead letter), served by uvicorn on a free loopback port for the whole session."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import DEV_CONSOLE_API_KEY, PROJECT_ROOT, Settings, load_settings, to_libpq_url
from core.db.session import create_engine, create_session_factory, unit_of_work
from core.events.types import ReadingsIngested
from core.simulation.seed import seed_demo_fleet
from tests.support.db import create_database, drop_database, upgrade
from tests.support.mlflow_server import NaiveForecastModel, register_contract_model
from tests.support.servers import serve_app_in_thread
from tests.ui.scenario import Scenario, build
from ui.settings import DEV_CONSOLE_API_KEY as UI_DEV_CONSOLE_API_KEY
from ui.settings import get_console_settings

APP = str(PROJECT_ROOT / "ui" / "streamlit_app.py")
TIMEOUT_S = 30


@dataclass(frozen=True)
class Seeded:
    """Ids of what the fixture stored beyond the demo fleet."""

    open_alert: int
    acknowledged_alert: int
    anomaly_ids: list[int]
    open_task: int
    progress_task: int
    dead_letter: int
    forecast_model: str = "forecast_voltage"


CONSOLE_SCOPES = ["read", "operate", "admin"]
"""The scopes the API gives the console's own key (SM_CONSOLE_API_KEY, registered at start-up as ``console``)."""
NOT_THE_CONSOLE_KEY = "sm_this-is-the-bootstrap-slot-not-the-console-key"
"""SM_API_KEY while the console runs in a test: a console that sent it would get 401s."""

assert UI_DEV_CONSOLE_API_KEY == DEV_CONSOLE_API_KEY, "ui/settings.py and core/config.py disagree on the dev key"


def create_console_key(base_url: str, settings: Settings) -> str:
    """A key with the console's scopes, created through the admin API with the bootstrap key."""
    response = httpx.post(
        base_url + "/api/v1/admin/api-keys",
        json={"name": f"console-test-{uuid.uuid4().hex[:8]}", "scopes": CONSOLE_SCOPES},
        headers={"X-API-Key": settings.api_key.get_secret_value()}, timeout=10, trust_env=False,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


@dataclass(frozen=True)
class ConsoleApi:
    base_url: str
    settings: Settings
    seeded: Seeded
    console_key: str = ""

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.settings.api_key.get_secret_value()} | kwargs.pop("headers", {})
        return httpx.request(
            method, self.base_url + path, headers=headers, timeout=10, trust_env=False, **kwargs
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.call("GET", path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_api(settings: Settings) -> Iterator[str]:
    """``create_app(settings)`` under uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    from apps.api.main import create_app

    with serve_app_in_thread(create_app(settings), name="console-api") as base_url:
        yield base_url


async def seed(settings: Settings) -> Seeded:
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            await seed_demo_fleet(session, seed=42)
    finally:
        await engine.dispose()
    now = datetime.now(UTC)
    conn = await asyncpg.connect(to_libpq_url(settings.database_url))
    try:
        async with conn.transaction():
            # three anomalies on real readings of sensor-006 (its timestamps and values, as the detector stores them)
            flagged = list(reversed(await conn.fetch(
                "SELECT timestamp, value FROM sensor_readings WHERE sensor_id = 'sensor-006' AND timestamp <= $1 "
                "ORDER BY timestamp DESC LIMIT 3", now - timedelta(minutes=30),
            )))  # fmt: skip
            assert len(flagged) == 3, "the demo fleet has no recent readings of sensor-006"
            anomaly_ids = [
                await conn.fetchval(
                    "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) "
                    "VALUES ('sensor-006', $1, $2, $3, 'robust_z') RETURNING id",
                    reading["timestamp"], reading["value"], 7.0 + i,
                )
                for i, reading in enumerate(flagged)
            ]  # fmt: skip
            open_alert = await conn.fetchval(
                "INSERT INTO alerts (sensor_id, rule, severity, status, opened_at, anomaly_count) "
                "VALUES ('sensor-006', 'vibration-anomaly', 'high', 'open', $1, 3) RETURNING id",
                now - timedelta(minutes=35),
            )
            for anomaly_id, i in zip(anomaly_ids, range(3), strict=True):
                await conn.execute(
                    "INSERT INTO alert_observations (alert_id, observed_at, value, anomaly_id) VALUES ($1, $2, $3, $4)",
                    open_alert, flagged[i]["timestamp"], flagged[i]["value"], anomaly_id,
                )  # fmt: skip
            acknowledged = await conn.fetchval(
                "INSERT INTO alerts (sensor_id, rule, severity, status, opened_at, acknowledged_at, anomaly_count) "
                "VALUES ('sensor-001', 'temperature-high', 'medium', 'acknowledged', $1, $2, 1) RETURNING id",
                now - timedelta(hours=3), now - timedelta(hours=2),
            )  # fmt: skip
            asset_id = await conn.fetchval("SELECT asset_id FROM sensors WHERE sensor_id = 'sensor-006'")
            open_task = await conn.fetchval(
                "INSERT INTO maintenance_tasks (asset_id, sensor_id, alert_id, title, priority, status, due_at) "
                "VALUES ($1, 'sensor-006', $2, 'Inspect pump bearing (UI test)', 'high', 'open', $3) RETURNING id",
                asset_id, open_alert, now + timedelta(hours=24),
            )  # fmt: skip
            progress_task = await conn.fetchval(
                "INSERT INTO maintenance_tasks (asset_id, sensor_id, title, priority, status, assignee) "
                "VALUES ($1, 'sensor-001', 'Recalibrate thermocouple (UI test)', 'medium', 'in_progress', 'ana') "
                "RETURNING id",
                asset_id,
            )
            event = ReadingsIngested(
                sensor_ids=["sensor-002"], count=1, first_timestamp=now, last_timestamp=now,
                ingest_event_id=uuid.uuid4(),
            )  # fmt: skip
            dead_letter = await conn.fetchval(
                "INSERT INTO dead_letters (event_type, payload, handler, error, attempts) "
                "VALUES ('ReadingsIngested', $1::jsonb, 'outbox.relay', 'RuntimeError: seeded for the UI test', 5) "
                "RETURNING id",
                json.dumps(event.model_dump(mode="json")),
            )
    finally:
        await conn.close()
    return Seeded(open_alert, acknowledged, anomaly_ids, open_task, progress_task, dead_letter)


@pytest.fixture(scope="session")
def console_api(admin_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleApi]:
    url = create_database(admin_database_url)
    # MLflow as a sqlite store used in-process (the API runs in this process): no server to wait for.
    mlflow_dir = tmp_path_factory.mktemp("ui-mlflow")
    mlflow_url = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
    try:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=mlflow_url).create_experiment(
            "serving-tests", artifact_location=(mlflow_dir / "artifacts").as_uri()
        )
        upgrade(url)
        settings = load_settings(
            env="test", database_url=url, mlflow_tracking_uri=mlflow_url,
            ready_check_mlflow=False, db_pool_size=3, data_dir=tmp_path_factory.mktemp("ui-data"),
            log_dir=tmp_path_factory.mktemp("ui-logs"),
            webhook_allowed_hosts=["127.0.0.1"],  # the Admin page's test webhook: loopback, nobody listens
        )  # fmt: skip
        # sensor-006 is a voltage sensor: a champion (v1) and a challenger (v2) forecast model for its type
        saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        try:
            for alias, mae in (("champion", 1.5), ("challenger", 1.2)):
                register_contract_model(mlflow_url, "forecast_voltage", NaiveForecastModel("5min"),
                                        params={"horizon": 24, "interval": 0.8}, metrics={"mae": mae},
                                        tags={"sm.family": "forecast", "sm.sensor_type": "voltage"},
                                        alias=alias)  # fmt: skip
        finally:  # mlflow.set_tracking_uri exports the URI to the environment, where Settings would read it
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        quiet = {"alert_no_data_check_interval_s": 0.0, "drift_check_interval_s": 0.0}
        settings = settings.model_copy(update={k: v for k, v in quiet.items() if k in Settings.model_fields})
        seeded = asyncio.run(seed(settings))
        with serve_api(settings) as base_url:
            key = create_console_key(base_url, settings)
            yield ConsoleApi(base_url=base_url, settings=settings, seeded=seeded, console_key=key)
    finally:
        drop_database(admin_database_url, url)


@pytest.fixture(scope="session")
def scenario(console_api: ConsoleApi) -> Scenario:
    """Incidents, work orders and references the API's own agents made from readings (tests/ui/scenario.py)."""
    return build(console_api)


def point_console_at(monkeypatch: pytest.MonkeyPatch, base_url: str, key: str = "sm_no-api-listens") -> None:
    """The console's environment: the API's URL and the console's own key (SM_API_KEY set to a key the API does
    not know, so a console that used the bootstrap slot would fail); empty caches."""
    monkeypatch.setenv("SM_ENV", "test")
    monkeypatch.setenv("API_BASE_URL", base_url)
    monkeypatch.setenv("SM_CONSOLE_API_KEY", key)
    monkeypatch.setenv("SM_API_KEY", NOT_THE_CONSOLE_KEY)
    get_console_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch, console_api: ConsoleApi) -> Iterator[ConsoleApi]:
    """The console (settings from the environment) pointed at the session's API, with empty caches."""
    point_console_at(monkeypatch, console_api.base_url, console_api.console_key)
    yield console_api
    get_console_settings.cache_clear()


@pytest.fixture
def api_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The console pointed at a port nobody listens on."""
    url = f"http://127.0.0.1:{free_port()}"
    point_console_at(monkeypatch, url)
    yield url
    get_console_settings.cache_clear()


def open_page(page: str | None = None, **query: str) -> AppTest:
    """Run the app, switch to ``page`` (``views/<name>.py``) and fail on any exception."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def texts(elements: Any) -> list[str]:
    return [str(element.value) for element in elements]
