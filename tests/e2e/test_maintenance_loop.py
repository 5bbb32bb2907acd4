"""End to end, through HTTP only: the real API served by uvicorn on 127.0.0.1 with its own database.

Normal readings → a fault → anomalies and alerts (threshold and anomaly-score rules) → one incident → one work
order → signed webhooks received by a local HTTP server → the task completed → the incident's alerts resolved and
a label exists; a fault returning while the work order is open attaches to it (no second task); and the agents
are idempotent when the same events are delivered twice.

Polled with a deadline (DESIGN §5.10), no sleeps. The sensors have no asset (auto-registered by ingest): their
incidents are the sensor's own.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from apps.api.deps import app_runtime
from apps.api.main import create_app
from core.config import Settings, load_settings, to_libpq_url
from core.events.types import event_from_row
from core.notifications import signing
from core.runtime.bootstrap import bootstrap_worker
from tests.support.db import private_database
from tests.support.events import wait_until
from tests.support.nats import NatsServer, nats_server
from tests.support.notifications import Receiver, webhook_receiver

INGEST = "/api/v1/data/ingest"
RULE = "temperature-high"  # shipped (0003/0005): > 85 °C, 3 of the last 20 readings, severity high, held 30 min
DEADLINE_S = 30.0
#: Fixed reference time: readings are placed in minutes before it.
BASE = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def e2e_database_url(admin_database_url: str) -> Iterator[str]:
    """A database of this module's own: no other test's data, rules or relays interfere."""
    with private_database(admin_database_url, "sm_e2e") as url:
        yield url


@pytest.fixture(scope="module")
def e2e_settings(e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        env="test",
        database_url=e2e_database_url,
        mlflow_tracking_uri="http://127.0.0.1:9",  # closed: the anomaly agent uses its robust_z baseline
        ready_check_mlflow=False,
        data_dir=tmp_path_factory.mktemp("e2e-data"),
        log_dir=tmp_path_factory.mktemp("e2e-logs"),
        db_pool_size=5,
        notification_poll_interval_s=0.1,
        notification_retry_base_s=0.1,
        notification_retry_max_s=1.0,
        alert_no_data_check_interval_s=0,
        webhook_allowed_hosts=["127.0.0.1"],  # the signed receiver is on loopback (refused by default)
    )


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    database_url: str

    @property
    def admin(self) -> dict[str, str]:
        return {"X-API-Key": self.settings.api_key.get_secret_value()}


@pytest.fixture(scope="module")
def e2e_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A private JetStream server for the NATS runs of this module."""
    with nats_server(tmp_path_factory.mktemp("e2e-nats")) as server:
        yield server


@pytest.fixture(params=["in-process", "nats"])
async def running(
    request: pytest.FixtureRequest, e2e_settings: Settings, e2e_database_url: str
) -> AsyncIterator[Running]:
    """``create_app(settings)`` served by uvicorn on a free 127.0.0.1 port (same event loop as the test).

    ``in-process``: the agents run in the API process. ``nats``: the API publishes to a private NATS JetStream
    server and a worker runtime (what ``apps.cli worker`` runs) consumes it; the tests are the same."""
    worker = None
    if request.param == "nats":
        server: NatsServer = request.getfixturevalue("e2e_nats")
        run = uuid.uuid4().hex[:8]  # a stream of this test's own on the module's server
        e2e_settings = e2e_settings.model_copy(
            update={
                "bus_url": server.url,
                "bus_stream": f"E2E_{run}",
                "bus_subject_prefix": f"e2e{run}",
                "bus_partitions": 4,
            }
        )
    app = create_app(e2e_settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started or task.done(), timeout=20, what="uvicorn to start")
        assert server.started, "uvicorn did not start"
        if request.param == "nats":
            worker = bootstrap_worker(e2e_settings)
            await worker.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE_S) as client:
            yield Running(app, client, e2e_settings, e2e_database_url)
    finally:
        if worker is not None:
            await worker.stop()
        server.should_exit = True
        await asyncio.wait_for(task, timeout=20)
        sock.close()


# --- helpers -------------------------------------------------------------------------------------------------
def ts(minutes_ago: float) -> str:
    return (BASE - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def normal_readings(sensor: str, start_minutes_ago: int, count: int) -> list[dict[str, Any]]:
    """One reading a minute around 20 °C with a little noise; the first registers the sensor's type."""
    return [
        {
            "sensor_id": sensor,
            "timestamp": ts(start_minutes_ago - i),
            "value": 20.0 + 0.1 * ((i * 7) % 5 - 2),
            "unit": "°C",
            "metadata": {"sensor_type": "temperature"},
        }
        for i in range(count)
    ]


def fault_readings(sensor: str, start_minutes_ago: int, count: int = 4) -> list[dict[str, Any]]:
    """Overheating: one reading a minute far above the baseline and the 85 °C rule."""
    return [
        {"sensor_id": sensor, "timestamp": ts(start_minutes_ago - i), "value": 95.0 + i, "unit": "°C"}
        for i in range(count)
    ]


async def ingest(running: Running, readings: list[dict[str, Any]]) -> str:
    response = await running.client.post(
        INGEST,
        content=orjson.dumps(readings),
        headers={**running.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["event_id"])


async def get_json(running: Running, path: str, **params: Any) -> Any:
    response = await running.client.get(path, params=params, headers=running.admin)
    assert response.status_code == 200, response.text
    return response.json()


async def items(running: Running, path: str, **params: Any) -> list[dict[str, Any]]:
    body = await get_json(running, path, limit=1000, **params)
    return list(body["items"])


async def eventually(running: Running, path: str, what: str, predicate: Any, **params: Any) -> list[Any]:
    """Poll ``GET path?params`` until ``predicate(items)`` holds; return the items."""
    seen: list[Any] = []

    async def check() -> bool:
        seen[:] = await items(running, path, **params)
        return bool(predicate(seen))

    await wait_until(check, timeout=DEADLINE_S, what=what)
    return seen


async def wait_published(running: Running, ingest_event_id: str) -> None:
    """The ReadingsIngested of an ingest request went through every handler (the relay marks it published)."""

    async def published() -> bool:
        conn = await asyncpg.connect(to_libpq_url(running.database_url))
        try:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE event_type = 'ReadingsIngested' "
                    "AND payload->>'ingest_event_id' = $1 AND published_at IS NOT NULL",
                    ingest_event_id,
                )
            )
        finally:
            await conn.close()

    await wait_until(published, timeout=DEADLINE_S, what=f"ReadingsIngested of {ingest_event_id} handled")
    await wait_idle(running)


async def wait_idle(running: Running) -> None:
    """Nothing left to do for the agents (``GET /api/v1/admin/events``), three answers in a row: on the in-process
    bus a published outbox row was handled already; on NATS the stream's consumers must have acknowledged it."""
    idle_answers = 0

    async def idle() -> bool:
        nonlocal idle_answers
        idle_answers = idle_answers + 1 if (await get_json(running, "/api/v1/admin/events"))["idle"] else 0
        return idle_answers >= 3

    await wait_until(idle, timeout=DEADLINE_S, what="the agents to settle")


def signed_webhooks(receiver: Receiver, event: str, **data: Any) -> list[dict[str, Any]]:
    """Accepted webhooks of ``event`` whose ``data`` has these values; each signature is verified again here."""
    found = []
    for request in receiver.accepted:
        if request.headers.get("X-SM-Event") != event:
            continue
        body = request.json
        if any(body.get("data", {}).get(k) != v for k, v in data.items()):
            continue
        signing.verify(receiver.secret, request.body, request.headers[signing.SIGNATURE_HEADER])
        found.append(body)
    return found


async def wait_webhook(receiver: Receiver, event: str, **data: Any) -> dict[str, Any]:
    await wait_until(
        lambda: bool(signed_webhooks(receiver, event, **data)), timeout=DEADLINE_S, what=f"a signed {event}"
    )
    return signed_webhooks(receiver, event, **data)[0]


async def register_sensor(running: Running, sensor: str) -> None:
    """Warm-up: enough normal readings for the baseline (``anomaly_baseline_warmup``), in one request."""
    count = running.settings.anomaly_baseline_warmup + 10
    event_id = await ingest(running, normal_readings(sensor, start_minutes_ago=200, count=count))
    await wait_published(running, event_id)
    assert await items(running, "/api/v1/anomalies", sensor_id=sensor) == []
    assert await items(running, "/api/v1/alerts", sensor_id=sensor) == []


async def assert_no_dead_letters(running: Running) -> None:
    page = await get_json(running, "/api/v1/admin/dead-letters")
    assert page["total"] == 0, page


# --- the loop ------------------------------------------------------------------------------------------------
async def test_fault_to_work_order_to_label_through_http(running: Running) -> None:
    secret = running.settings.webhook_signing_secret.get_secret_value()
    sensor = f"e2e-temp-{uuid.uuid4().hex[:8]}"
    with webhook_receiver(secret) as receiver:
        # 1. a webhook subscription pointing at the local signed receiver
        hook = await running.client.post(
            "/api/v1/webhooks",
            json={
                "name": f"e2e-{sensor}",
                "target": receiver.url,
                "event_types": ["AlertRaised", "MaintenanceTaskCreated", "MaintenanceTaskCompleted"],
            },
            headers=running.admin,
        )
        assert hook.status_code == 201, hook.text

        # 2. normal data past the baseline's warm-up, then a fault
        await register_sensor(running, sensor)
        sensor_read = await get_json(running, f"/api/v1/sensors/{sensor}")
        assert sensor_read["type"] == "temperature"
        await ingest(running, fault_readings(sensor, start_minutes_ago=150))

        # 3. anomaly → alert → work order → signed webhooks
        anomalies = await eventually(
            running, "/api/v1/anomalies", "anomalies", lambda xs: len(xs) >= 3, sensor_id=sensor
        )
        assert {a["method"] for a in anomalies} == {"robust_z"}
        assert all(a["value"] >= 95.0 for a in anomalies)
        [alert] = await eventually(
            running, "/api/v1/alerts", "an open alert", lambda xs: len(xs) == 1, sensor_id=sensor, rule=RULE
        )
        assert alert["status"] == "open" and alert["severity"] == "high"
        [task] = await eventually(
            running, "/api/v1/maintenance/tasks", "a work order", lambda xs: len(xs) == 1, sensor_id=sensor
        )
        assert task["status"] == "open" and task["priority"] == "high"
        assert task["sensor_id"] == sensor and task["incident_id"] == alert["incident_id"]
        assert task["alert_id"] in {a["id"] for a in await items(running, "/api/v1/alerts", sensor_id=sensor)}
        # due 24 h (high) after the event time of the alert that opened it
        assert parse_ts(task["due_at"]) - parse_ts(task["event_opened_at"]) == timedelta(hours=24)
        raised = await wait_webhook(receiver, "AlertRaised", alert_id=alert["id"])
        assert raised["data"]["sensor_id"] == sensor and raised["data"]["rule"] == RULE
        assert raised["data"]["incident_id"] == alert["incident_id"]
        created = await wait_webhook(receiver, "MaintenanceTaskCreated", task_id=task["id"])
        assert created["data"]["alert_id"] == task["alert_id"]

        # 4. the same fault again while the task is open: no second alert or task
        tasks_before = await items(running, "/api/v1/maintenance/tasks", sensor_id=sensor)
        again = await ingest(running, fault_readings(sensor, start_minutes_ago=140))
        await wait_published(running, again)
        await eventually(
            running,
            "/api/v1/anomalies",
            "the new anomalies",
            lambda xs: len(xs) >= len(anomalies) + 3,
            sensor_id=sensor,
        )
        # the anomaly-score alert of this sensor is evaluated on ReadingsScored: wait until that is published
        await wait_all_published(running, sensor)
        unresolved = [
            a for a in await items(running, "/api/v1/alerts", sensor_id=sensor, rule=RULE) if a["status"] != "resolved"
        ]
        assert [a["id"] for a in unresolved] == [alert["id"]]
        detail = await get_json(running, f"/api/v1/alerts/{alert['id']}")
        # the repeated fault counted in the same alert
        assert detail["anomaly_count"] > alert["anomaly_count"]
        tasks_after = await items(running, "/api/v1/maintenance/tasks", sensor_id=sensor)
        assert [t["id"] for t in tasks_after] == [t["id"] for t in tasks_before] == [task["id"]]
        # every alert of the fault (threshold and anomaly score) is evidence of the one work order
        alerts_now = await items(running, "/api/v1/alerts", sensor_id=sensor)
        assert {a["incident_id"] for a in alerts_now} == {task["incident_id"]}
        evidence = (await get_json(running, f"/api/v1/maintenance/tasks/{task['id']}"))["evidence"]
        assert sorted(evidence["alert_ids"]) == sorted(a["id"] for a in alerts_now)
        assert evidence["sensors"] == [sensor] and RULE in evidence["rules"]

        # 5. complete the task: the alert resolves, a label exists, a signed MaintenanceTaskCompleted arrives
        completed = await running.client.post(
            f"/api/v1/maintenance/tasks/{task['id']}/complete",
            json={"outcome": "fault_confirmed", "technician": "e2e-tech", "notes": "fan replaced"},
            headers=running.admin,
        )
        assert completed.status_code == 200, completed.text
        for a in alerts_now:  # the incident's alerts resolve with its work order
            resolved = await get_json(running, f"/api/v1/alerts/{a['id']}")
            assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
        [label] = await items(running, "/api/v1/labels", sensor_id=sensor)
        assert (label["task_id"], label["alert_id"], label["outcome"]) == (
            task["id"],
            task["alert_id"],
            "fault_confirmed",
        )
        done = await wait_webhook(receiver, "MaintenanceTaskCompleted", task_id=task["id"])
        assert done["data"]["outcome"] == "fault_confirmed"
        assert all(r.status == 200 for r in receiver.requests)  # every request carried a valid signature
    await assert_no_dead_letters(running)


# --- duplicate delivery --------------------------------------------------------------------------------------
async def outbox_events(running: Running, sensor: str) -> list[tuple[str, dict[str, Any]]]:
    conn = await asyncpg.connect(to_libpq_url(running.database_url))
    try:
        rows = await conn.fetch(
            "SELECT event_type, payload FROM outbox WHERE payload->>'sensor_id' = $1 "
            "OR payload->'sensor_ids' ? $1 ORDER BY id",
            sensor,
        )
    finally:
        await conn.close()
    return [(r["event_type"], orjson.loads(r["payload"])) for r in rows]


async def wait_all_published(running: Running, sensor: str) -> None:
    async def none_left() -> bool:
        conn = await asyncpg.connect(to_libpq_url(running.database_url))
        try:
            left = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE (payload->>'sensor_id' = $1 OR payload->'sensor_ids' ? $1) "
                "AND published_at IS NULL",
                sensor,
            )
        finally:
            await conn.close()
        return left == 0

    await wait_until(none_left, timeout=DEADLINE_S, what=f"every event of {sensor} handled")
    await wait_idle(running)


async def test_agents_are_idempotent_under_duplicate_delivery(running: Running) -> None:
    sensor = f"e2e-temp-{uuid.uuid4().hex[:8]}"
    await register_sensor(running, sensor)
    fault = await ingest(running, fault_readings(sensor, start_minutes_ago=150))
    await eventually(running, "/api/v1/maintenance/tasks", "a work order", lambda xs: len(xs) >= 1, sensor_id=sensor)
    await wait_all_published(running, sensor)

    async def snapshot() -> tuple[list[int], list[tuple[int, str, int]], list[tuple[int, int | None]]]:
        anomalies = sorted(a["id"] for a in await items(running, "/api/v1/anomalies", sensor_id=sensor))
        alerts = sorted(
            (a["id"], a["status"], a["anomaly_count"]) for a in await items(running, "/api/v1/alerts", sensor_id=sensor)
        )
        tasks = sorted(
            (t["id"], t["alert_id"]) for t in await items(running, "/api/v1/maintenance/tasks", sensor_id=sensor)
        )
        return anomalies, alerts, tasks

    before = await snapshot()
    anomalies, alerts, tasks = before
    assert len(anomalies) >= 3 and RULE in {a["rule"] for a in await items(running, "/api/v1/alerts", sensor_id=sensor)}
    assert len(tasks) == 1 and len(alerts) >= 1  # one fault, one incident, one work order

    # the fault batch's ReadingsIngested, and every event that followed it, delivered twice more
    events = await outbox_events(running, sensor)
    readings_events = [p for t, p in events if t == "ReadingsIngested" and p["ingest_event_id"] == fault]
    assert len(readings_events) == 1
    replayed = [event_from_row(t, p) for t, p in events if t != "ReadingsIngested"]
    replayed.insert(0, event_from_row("ReadingsIngested", readings_events[0]))
    bus = app_runtime(running.app).bus
    for _ in range(2):
        for event in replayed:
            outcome = await asyncio.wait_for(await bus.publish(event), timeout=DEADLINE_S)
            assert outcome and all(result == "ok" for result in outcome.values()), outcome
    await wait_all_published(running, sensor)

    assert await snapshot() == before
    events_after = await outbox_events(running, sensor)

    # nothing new was emitted but the "this batch is scored" notice, whose handler is idempotent
    def effects(evs):
        return [t for t, _ in evs if t != "ReadingsScored"]

    assert effects(events_after) == effects(events)
    await assert_no_dead_letters(running)


async def test_a_fault_returning_while_the_work_order_is_open_attaches_to_it(running: Running) -> None:
    """The sensor recovers long enough for its alerts to resolve (10 normal readings and the 30-minute hold) while
    the work order is still open, then the fault comes back: a new alert opens — it is not hidden — and it
    attaches to the same incident and work order instead of opening a second one."""
    sensor = f"e2e-temp-{uuid.uuid4().hex[:8]}"
    await register_sensor(running, sensor)
    await ingest(running, fault_readings(sensor, start_minutes_ago=150))
    [task] = await eventually(
        running, "/api/v1/maintenance/tasks", "a work order", lambda xs: len(xs) >= 1, sensor_id=sensor
    )
    await wait_all_published(running, sensor)

    await ingest(running, normal_readings(sensor, start_minutes_ago=145, count=40))  # 40 minutes of normal
    await wait_all_published(running, sensor)
    recovered = await items(running, "/api/v1/alerts", sensor_id=sensor)
    assert {a["status"] for a in recovered} == {"resolved"}
    assert (await get_json(running, f"/api/v1/maintenance/tasks/{task['id']}"))["status"] == "open"

    await ingest(running, fault_readings(sensor, start_minutes_ago=100))
    returned = await eventually(
        running,
        "/api/v1/alerts",
        "the returning fault's alert",
        lambda xs: any(a["status"] == "open" for a in xs),
        sensor_id=sensor,
        rule=RULE,
    )
    await wait_all_published(running, sensor)
    [new] = [a for a in returned if a["status"] == "open"]
    assert new["incident_id"] == task["incident_id"]
    tasks_after = await items(running, "/api/v1/maintenance/tasks", sensor_id=sensor)
    assert [(t["id"], t["status"]) for t in tasks_after] == [(task["id"], "open")]
    evidence = (await get_json(running, f"/api/v1/maintenance/tasks/{task['id']}"))["evidence"]
    assert new["id"] in evidence["alert_ids"]
    await assert_no_dead_letters(running)
