"""The diagnosis agent, through the API and the in-process bus: a simulated outer-race snapshot is diagnosed,
raises one alert with the diagnosis as its evidence, and the scheduling agent opens one work order; a repeated
faulty snapshot counts on the same alert (no second alert or work order); healthy snapshots raise nothing and
resolve the alert after a repair; a redelivered event changes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.events.types import WaveformIngested, event_from_row
from core.waveforms.agent import DiagnoseSnapshot
from core.waveforms.diagnosis import RESOLVE_AFTER, RULE_NAME
from tests.api.auth_support import bootstrap_headers, serve_app
from tests.support.db import session_factory_for
from tests.support.maintenance import connect
from tests.waveforms.support import make_waveform_sensor, snapshot

T = TypeVar("T")
PATH = "/api/v1/data/waveforms"


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings) as (_, http):
        http.headers.update(bootstrap_headers(settings))
        yield http


@pytest.fixture
async def factory(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with session_factory_for(settings, pool_size=2) as factory:
        yield factory


async def until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20.0) -> T:
    """Poll ``probe`` until it returns something truthy (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def diagnoses(client: httpx.AsyncClient, sensor_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/sensors/{sensor_id}/diagnoses")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def diagnosed(client: httpx.AsyncClient, sensor_id: str, count: int) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    async def probe() -> list[dict[str, Any]]:
        items = await diagnoses(client, sensor_id)
        return items if len(items) >= count else []

    return probe


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(PATH, json=body)
    assert response.status_code == 202, response.text
    reply: dict[str, Any] = response.json()
    return reply


async def test_outer_race_fault_opens_one_alert_and_one_work_order(
    client: httpx.AsyncClient, settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    asset_id, sensor_id = await make_waveform_sensor(client)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    first = await post(client, snapshot(sensor_id, t0, "outer", seed=11))

    [d] = await until(diagnosed(client, sensor_id, 1), "the first diagnosis")
    assert (d["fault"], d["snapshot_id"], d["bearing"], d["rpm"]) == (
        "outer race",
        first["snapshot_id"],
        "6205",
        1797.0,
    )
    assert d["score_db"] > d["threshold_db"] and d["scores_db"]["outer race"] == d["score_db"]
    assert d["defect_frequencies"]["bpfo"] == pytest.approx(107.4, abs=0.1)
    low, high = d["band_hz"]
    assert 0 <= low < high <= 6000.0  # the envelope band the diagnosis used (below Nyquist)
    alert_id = d["alert_id"]
    assert alert_id is not None

    alert = (await client.get(f"/api/v1/alerts/{alert_id}")).json()
    assert (alert["rule"], alert["severity"], alert["status"], alert["sensor_id"]) == (
        RULE_NAME,
        "high",
        "open",
        sensor_id,
    )
    assert "outer race fault diagnosed in snapshot" in alert["events"][0]["comment"]
    evidence = (await client.get(f"/api/v1/alerts/{alert_id}/diagnosis")).json()
    assert (evidence["id"], evidence["fault"]) == (d["id"], "outer race")

    async def tasks() -> list[Any]:
        async with connect(settings) as conn:
            return list(
                await conn.fetch("SELECT id, alert_id, asset_id FROM maintenance_tasks WHERE asset_id = $1", asset_id)
            )

    [task] = await until(tasks, "the work order")
    assert task["alert_id"] == alert_id

    # the same fault seen again: counted on the open alert, no second alert, no second work order
    await post(client, snapshot(sensor_id, t0 + timedelta(seconds=30), "outer", seed=12))
    items = await until(diagnosed(client, sensor_id, 2), "the second diagnosis")
    assert [i["alert_id"] for i in items] == [alert_id, alert_id]
    async with connect(settings) as conn:
        alerts = await conn.fetch("SELECT id, anomaly_count FROM alerts WHERE sensor_id = $1", sensor_id)
        assert [(a["id"], a["anomaly_count"]) for a in alerts] == [(alert_id, 2)]
    await asyncio.sleep(0.3)  # give a (wrong) second work order the chance to appear before counting
    assert len(await tasks()) == 1

    # redelivery of the first snapshot's event: nothing new
    async with connect(settings) as conn:
        row = await conn.fetchrow(
            "SELECT event_type, payload FROM outbox WHERE event_type = 'WaveformIngested' "
            "AND (payload->>'snapshot_id')::bigint = $1",
            first["snapshot_id"],
        )
    payload = row["payload"]
    event = event_from_row(row["event_type"], json.loads(payload) if isinstance(payload, str) else dict(payload))
    assert isinstance(event, WaveformIngested)
    assert await DiagnoseSnapshot(factory).handle(event) is None
    assert len(await diagnoses(client, sensor_id)) == 2

    # after a repair: RESOLVE_AFTER healthy snapshots resolve the alert, and raise nothing themselves
    for k in range(RESOLVE_AFTER):
        await post(client, snapshot(sensor_id, t0 + timedelta(seconds=60 + 10 * k), "none", seed=20 + k))
    items = await until(diagnosed(client, sensor_id, 2 + RESOLVE_AFTER), "the healthy diagnoses")
    assert [i["fault"] for i in items[:RESOLVE_AFTER]] == ["none"] * RESOLVE_AFTER
    assert all(i["alert_id"] is None for i in items[:RESOLVE_AFTER])

    async def resolved() -> bool:
        return bool((await client.get(f"/api/v1/alerts/{alert_id}")).json()["status"] == "resolved")

    await until(resolved, "the alert to resolve")


async def test_healthy_snapshot_raises_no_alert(client: httpx.AsyncClient, settings: Settings) -> None:
    _, sensor_id = await make_waveform_sensor(client)
    await post(client, snapshot(sensor_id, datetime.now(UTC) - timedelta(seconds=3), "none", seed=5))
    [d] = await until(diagnosed(client, sensor_id, 1), "the diagnosis")
    assert (d["fault"], d["alert_id"], d["error"]) == ("none", None, None)
    async with connect(settings) as conn:
        assert await conn.fetchval("SELECT count(*) FROM alerts WHERE sensor_id = $1", sensor_id) == 0
    assert (await client.get(f"/api/v1/sensors/{sensor_id}/diagnoses", params={"fault": "outer race"})).json()[
        "total"
    ] == 0


async def test_concurrent_deliveries_diagnose_once(
    client: httpx.AsyncClient, settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    """Two deliveries of one event at once (a redelivery racing the first): one diagnosis, one observation."""
    _, sensor_id = await make_waveform_sensor(client)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    reply = await post(client, snapshot(sensor_id, at, "inner", seed=7))
    event = WaveformIngested(snapshot_id=reply["snapshot_id"], sensor_id=sensor_id, timestamp=at, sample_count=24_000)
    handler = DiagnoseSnapshot(factory)
    await asyncio.gather(handler.handle(event), handler.handle(event))
    [d] = await until(diagnosed(client, sensor_id, 1), "the diagnosis")
    assert d["fault"] == "inner race"
    async with connect(settings) as conn:
        rows = await conn.fetch("SELECT anomaly_count FROM alerts WHERE sensor_id = $1", sensor_id)
    assert [r["anomaly_count"] for r in rows] == [1]
    assert len(await diagnoses(client, sensor_id)) == 1


async def test_no_alert_in_a_maintenance_window(client: httpx.AsyncClient, settings: Settings) -> None:
    """Planned downtime of the asset (a bearing being replaced): the fault is diagnosed and stored, no alert opens."""
    asset_id, sensor_id = await make_waveform_sensor(client)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    async with connect(settings) as conn:
        await conn.execute(
            "INSERT INTO maintenance_windows (asset_id, starts_at, ends_at, reason) "
            "VALUES ($1, $2, $3, 'bearing swap')",
            asset_id,
            at - timedelta(minutes=5),
            at + timedelta(minutes=5),
        )
    await post(client, snapshot(sensor_id, at, "outer", seed=13))
    [d] = await until(diagnosed(client, sensor_id, 1), "the diagnosis")
    assert (d["fault"], d["alert_id"]) == ("outer race", None)
    async with connect(settings) as conn:
        assert await conn.fetchval("SELECT count(*) FROM alerts WHERE sensor_id = $1", sensor_id) == 0
