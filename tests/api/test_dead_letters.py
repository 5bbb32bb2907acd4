"""Dead letters through HTTP: a failing handler lands in dead letters, the admin lists and replays it (once)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from apps.api.deps import app_runtime
from apps.api.main import create_app
from core.config import Settings
from core.db.session import unit_of_work
from core.events.bus import EventBus, Handler
from core.events.outbox import add_to_outbox
from core.events.relay import after_commit
from core.events.types import Event, ReadingsIngested
from tests.api.auth_support import bootstrap_headers, create_key
from tests.api.conftest import serve
from tests.support.events import Recorder, wait_until

BASE = "/api/v1/admin/dead-letters"


@pytest.fixture
def bus_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"bus_handler_attempts": 3, "bus_retry_base_s": 0.001, "bus_retry_max_s": 0.005}
    )


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    headers: dict[str, str]

    @property
    def bus(self) -> EventBus:
        return app_runtime(self.app).bus


@pytest.fixture
async def running(bus_settings: Settings) -> AsyncIterator[Running]:
    app = create_app(bus_settings)
    async with serve(app) as client:
        yield Running(app=app, client=client, headers=bootstrap_headers(bus_settings))


def readings_event() -> ReadingsIngested:
    now = datetime.now(UTC)
    return ReadingsIngested(
        sensor_ids=["pump-7-vib"],
        count=3,
        first_timestamp=now,
        last_timestamp=now,
        ingest_event_id=uuid.uuid4(),
    )


async def ingest_through_outbox(app: FastAPI, event: Event) -> None:
    """What the ingest endpoint does: the event in the transaction, the relay woken after the commit."""
    async with unit_of_work(app_runtime(app).session_factory) as session:
        await add_to_outbox(session, event)
    await after_commit(app_runtime(app))


def mine(events: list[Event], handler: Recorder) -> Handler:
    """Only ``events`` reach ``handler``: the shared test database may hold other tests' unpublished rows."""
    ids = {e.event_id for e in events}

    async def filtered(event: Event) -> None:
        if event.event_id in ids:
            await handler(event)

    return filtered


async def dead_letters(r: Running, **params: object) -> dict:  # type: ignore[type-arg]
    response = await r.client.get(BASE, params=params, headers=r.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_failing_handler_is_dead_lettered_listed_and_replayed_once(running: Running) -> None:
    name = f"test.http.{uuid.uuid4().hex[:8]}"
    handler = Recorder(fail_times=3)  # fails all 3 attempts of the first delivery, then is "fixed"
    event = readings_event()
    running.bus.subscribe(ReadingsIngested, mine([event], handler), name=name)
    await ingest_through_outbox(running.app, event)

    async def listed() -> bool:
        return (await dead_letters(running, handler=name))["total"] == 1

    await wait_until(listed, what="the dead letter")
    page = await dead_letters(running, handler=name)
    item = page["items"][0]
    assert item["handler"] == name
    assert item["event_type"] == "ReadingsIngested"
    assert item["attempts"] == 3
    assert item["error"] == "RuntimeError: planned failure 3"
    assert item["payload"]["event_id"] == str(event.event_id)
    assert item["replayed_at"] is None
    assert handler.events == []

    response = await running.client.post(f"{BASE}/{item['id']}/replay", headers=running.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["handlers"] == [name]
    assert body["dead_letter"]["id"] == item["id"]
    assert body["dead_letter"]["replayed_at"] is not None
    await running.bus.join()
    assert handler.events == [event], "the fixed handler received the stored event"
    assert (await dead_letters(running, handler=name))["total"] == 1, "no new dead letter"
    assert (await dead_letters(running, handler=name, replayed=False))["total"] == 0

    again = await running.client.post(f"{BASE}/{item['id']}/replay", headers=running.headers)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "already replayed" in again.json()["detail"]
    await running.bus.join()
    assert len(handler.events) == 1


async def test_replay_that_fails_again_writes_a_new_dead_letter(running: Running) -> None:
    name = f"test.http.{uuid.uuid4().hex[:8]}"
    event = readings_event()
    running.bus.subscribe(ReadingsIngested, mine([event], Recorder(fail_times=100)), name=name)
    await ingest_through_outbox(running.app, event)

    async def count() -> int:
        return int((await dead_letters(running, handler=name))["total"])

    await wait_until(lambda: _eq(count(), 1), what="the first dead letter")
    first = (await dead_letters(running, handler=name))["items"][0]
    response = await running.client.post(f"{BASE}/{first['id']}/replay", headers=running.headers)
    assert response.status_code == 202
    await running.bus.join()
    page = await dead_letters(running, handler=name, replayed=False)
    assert page["total"] == 1 and page["items"][0]["id"] > first["id"]
    assert page["items"][0]["payload"] == first["payload"]


async def _eq(value, expected) -> bool:  # type: ignore[no-untyped-def]
    return await value == expected


async def test_list_filters_and_paginates(running: Running) -> None:
    name = f"test.http.{uuid.uuid4().hex[:8]}"
    events = [readings_event() for _ in range(3)]
    running.bus.subscribe(ReadingsIngested, mine(events, Recorder(fail_times=100)), name=name)
    for event in events:
        await ingest_through_outbox(running.app, event)

    async def three() -> bool:
        return (await dead_letters(running, handler=name))["total"] == 3

    await wait_until(three, what="three dead letters")
    first = await dead_letters(running, handler=name, limit=2, offset=0)
    second = await dead_letters(running, handler=name, limit=2, offset=2)
    assert (len(first["items"]), len(second["items"]), first["total"]) == (2, 1, 3)
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True), "newest first"
    assert (await dead_letters(running, handler=name, event_type="AlertRaised"))["total"] == 0
    bad = await running.client.get(BASE, params={"limit": 0}, headers=running.headers)
    assert bad.status_code == 422


async def test_replay_of_unknown_dead_letter_is_404(running: Running) -> None:
    response = await running.client.post(f"{BASE}/999999999/replay", headers=running.headers)
    assert response.status_code == 404


async def test_replay_to_a_handler_not_subscribed_is_409(running: Running) -> None:
    from core.events.dead_letter_repository import DeadLetterRepository

    async with unit_of_work(app_runtime(running.app).session_factory) as session:
        dl_id = await DeadLetterRepository(session).add(
            event_type="ReadingsIngested",
            payload=readings_event().to_payload(),
            handler="retired.handler",
            error="RuntimeError: x",
            attempts=5,
        )
    response = await running.client.post(f"{BASE}/{dl_id}/replay", headers=running.headers)
    assert response.status_code == 409
    assert "not subscribed" in response.json()["detail"]
    page = await dead_letters(running, handler="retired.handler", replayed=False)
    assert dl_id in [i["id"] for i in page["items"]], "a refused replay leaves the dead letter pending"


async def test_dead_letter_routes_need_the_admin_scope(running: Running, bus_settings: Settings) -> None:
    reader = await create_key(running.client, bus_settings, "read", "ingest")
    for method, path in (("GET", BASE), ("POST", f"{BASE}/1/replay")):
        assert (await running.client.request(method, path)).status_code == 401
        forbidden = await running.client.request(method, path, headers=reader.headers)
        assert forbidden.status_code == 403, (method, path)


async def test_readings_ingested_reach_the_telemetry_handler(running: Running) -> None:
    """The handlers of core.runtime.handlers are wired into the API's bus (metrics counted from events)."""
    from core.observability.metrics import REGISTRY

    before = REGISTRY.get_sample_value("sm_bus_readings_ingested_total") or 0.0
    await ingest_through_outbox(running.app, readings_event())
    await wait_until(
        lambda: (REGISTRY.get_sample_value("sm_bus_readings_ingested_total") or 0.0) >= before + 3,
        what="the telemetry handler",
    )
