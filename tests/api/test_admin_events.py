"""``GET /api/v1/admin/events``: admin only; busy while a delivery runs, idle once the agents settled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from apps.api.deps import app_runtime
from apps.api.main import create_app
from core.config import Settings
from core.events.types import Event, ReadingsIngested
from tests.api.auth_support import bootstrap_headers, create_key
from tests.api.conftest import serve
from tests.support.db import private_database
from tests.support.events import wait_until

URL = "/api/v1/admin/events"


@pytest.fixture(scope="module")
def own_database_url(admin_database_url: str) -> Iterator[str]:
    """A database of this module's own: no other test's unpublished outbox rows make it busy."""
    with private_database(admin_database_url, "sm_evstatus") as url:
        yield url


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    headers: dict[str, str]


@pytest.fixture
async def running(settings: Settings, own_database_url: str) -> AsyncIterator[Running]:
    app = create_app(settings.model_copy(update={"database_url": own_database_url}))
    async with serve(app) as client:
        yield Running(app=app, client=client, headers=bootstrap_headers(settings))


async def _status(r: Running) -> dict[str, object]:
    response = await r.client.get(URL, headers=r.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _idle(r: Running) -> bool:
    return bool((await _status(r))["idle"])


async def test_admin_scope_only(running: Running, settings: Settings) -> None:
    assert (await running.client.get(URL)).status_code == 401
    for scopes in (("read",), ("ingest",), ("ingest", "read")):
        key = await create_key(running.client, settings, *scopes)
        assert (await running.client.get(URL, headers=key.headers)).status_code == 403, scopes
    admin = await create_key(running.client, settings, "admin")
    response = await running.client.get(URL, headers=admin.headers)
    assert response.status_code == 200
    assert set(response.json()) == {"outbox_pending", "bus", "idle"}
    assert set(response.json()["bus"]) == {"queued", "running"}


async def test_busy_while_a_handler_runs_idle_once_the_agents_settled(running: Running) -> None:
    await wait_until(lambda: _idle(running), timeout=20, what="the fresh API to be idle")
    assert await _status(running) == {"outbox_pending": 0, "bus": {"queued": 0, "running": 0}, "idle": True}

    entered, release = asyncio.Event(), asyncio.Event()

    async def blocking(event: Event) -> None:
        entered.set()
        await release.wait()

    app_runtime(running.app).bus.subscribe(ReadingsIngested, blocking, name="test.blocking")
    try:
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        readings = [
            {
                "sensor_id": "evstatus-1",
                "value": 20.0 + i,
                "timestamp": (t0 + timedelta(seconds=i)).isoformat(),
            }
            for i in range(50)
        ]
        response = await running.client.post("/api/v1/data/ingest", json=readings, headers=running.headers)
        assert response.status_code == 202 and response.json()["accepted"] == 50, response.text
        await asyncio.wait_for(entered.wait(), timeout=20)

        # The delivery cannot finish: its outbox row stays unpublished and the delivery keeps running.
        for _ in range(3):
            status = await _status(running)
            assert status["idle"] is False
            assert status["outbox_pending"] >= 1
            assert status["bus"]["running"] >= 1  # type: ignore[index]
    finally:
        release.set()
    await wait_until(lambda: _idle(running), timeout=30, what="the agents to settle")
    assert await _status(running) == {"outbox_pending": 0, "bus": {"queued": 0, "running": 0}, "idle": True}
    app_runtime(running.app).bus.unsubscribe("test.blocking")
