"""Liveness and readiness against a real, migrated PostgreSQL and a loopback stand-in for MLflow."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from apps.api.errors import PROBLEM_MEDIA_TYPE
from core.config import Settings
from core.observability.health_repository import migration_heads
from core.observability.metrics import REGISTRY
from tests.api.conftest import CLOSED_DB_URL, ClientFactory
from tests.support.db import private_database


def _counter(component: str, result: str) -> float:
    value = REGISTRY.get_sample_value("sm_api_ready_checks_total", {"component": component, "result": result})
    return value or 0.0


@pytest.fixture
def db_only(settings: Settings) -> Settings:
    return settings.model_copy(update={"ready_check_mlflow": False})


@pytest.fixture
def empty_database_url(admin_database_url: str) -> Iterator[str]:
    with private_database(admin_database_url, "sm_test_empty", migrate=False) as url:
        yield url


async def test_liveness_needs_no_database(api: ClientFactory, offline_settings: Settings) -> None:
    async with api(offline_settings) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"]


async def test_ready_with_migrated_database_and_mlflow_disabled(
    api: ClientFactory, db_only: Settings
) -> None:
    before = _counter("database", "ok")
    async with api(db_only) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"]["database"]["status"] == "ok"
    assert body["components"]["database"]["latency_ms"] >= 0
    assert body["components"]["mlflow"]["status"] == "skipped"
    assert body["info"]["timescaledb"]["installed"] in (True, False)
    assert _counter("database", "ok") == before + 1
    assert (REGISTRY.get_sample_value("sm_db_check_latency_seconds_count") or 0) >= 1


async def test_ready_with_mlflow_answering(
    api: ClientFactory, settings: Settings, mlflow_stand_in: Callable[[int], str]
) -> None:
    live = settings.model_copy(update={"mlflow_tracking_uri": mlflow_stand_in(200)})
    async with api(live) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    mlflow = response.json()["components"]["mlflow"]
    assert mlflow["status"] == "ok"
    assert mlflow["latency_ms"] >= 0


async def test_not_ready_when_mlflow_unreachable(api: ClientFactory, settings: Settings) -> None:
    before = _counter("mlflow", "failing")
    async with api(settings) as client:  # the suite's settings point MLflow at a closed port
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["failing"] == ["mlflow"]
    assert body["components"]["database"]["status"] == "ok"
    assert body["components"]["mlflow"]["status"] == "failing"
    assert body["components"]["mlflow"]["detail"]
    assert body["status"] == 503 and body["instance"] == "/health/ready"
    assert body["correlation_id"] == response.headers["x-request-id"]
    assert _counter("mlflow", "failing") == before + 1


async def test_not_ready_when_mlflow_answers_an_error(
    api: ClientFactory, settings: Settings, mlflow_stand_in: Callable[[int], str]
) -> None:
    broken = settings.model_copy(update={"mlflow_tracking_uri": mlflow_stand_in(500)})
    async with api(broken) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["mlflow"]
    assert "HTTP 500" in response.json()["components"]["mlflow"]["detail"]


async def test_mlflow_check_skipped_for_non_http_tracking_uri(api: ClientFactory, settings: Settings) -> None:
    local = settings.model_copy(update={"mlflow_tracking_uri": "file:///tmp/mlruns"})
    async with api(local) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["components"]["mlflow"]["status"] == "skipped"


async def test_not_ready_when_database_port_closed(api: ClientFactory, offline_settings: Settings) -> None:
    settings = offline_settings.model_copy(update={"ready_check_mlflow": False})
    async with api(settings) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["failing"] == ["database"]
    database = body["components"]["database"]
    assert database["status"] == "failing"
    assert database["detail"]
    assert "Traceback" not in response.text
    assert body["info"]["timescaledb"]["installed"] is None


async def test_not_ready_names_every_failing_component(
    api: ClientFactory, offline_settings: Settings
) -> None:
    async with api(offline_settings) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database", "mlflow"]


async def test_not_ready_when_database_not_migrated(
    api: ClientFactory, db_only: Settings, empty_database_url: str
) -> None:
    unmigrated = db_only.model_copy(update={"database_url": empty_database_url})
    async with api(unmigrated) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    detail = body["components"]["database"]["detail"]
    assert "not migrated" in detail
    assert min(migration_heads()) in detail


async def test_readiness_does_not_hang_on_a_silent_database(
    api: ClientFactory, offline_settings: Settings, silent_tcp_server: str
) -> None:
    """A server that accepts TCP but never answers must fail the check within the timeout."""
    hung = offline_settings.model_copy(
        update={
            "database_url": f"postgresql://postgres@{silent_tcp_server}/hung",
            "ready_timeout_s": 0.5,
            "db_connect_timeout_s": 30.0,
            "ready_check_mlflow": False,
        }
    )
    async with api(hung) as client:
        started = time.monotonic()
        response = await client.get("/health/ready")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
    assert "0.5 s" in response.json()["components"]["database"]["detail"]
    assert elapsed < 5


async def test_readiness_detail_has_no_secrets(api: ClientFactory, offline_settings: Settings) -> None:
    secret = "s3cr3t-passw0rd-value"
    settings = offline_settings.model_copy(
        update={
            "database_url": CLOSED_DB_URL.replace("postgres@", f"postgres:{secret}@"),
            "ready_check_mlflow": False,
        }
    )
    async with api(settings) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert secret not in response.text
