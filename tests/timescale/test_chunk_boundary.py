"""Ingest never deadlocks with chunk creation (issue 12): on TimescaleDB, creating a chunk copies the foreign
key ``sensor_readings → sensors`` and needs a SHARE ROW EXCLUSIVE lock on ``sensors``; a readings transaction
that also registered sensors (ROW EXCLUSIVE) deadlocked with another one creating a chunk. Sensors are now
registered in their own short transaction first.

Two tests, on the suite's plain PostgreSQL and, with ``SM_TEST_TIMESCALE_URL``, on TimescaleDB:

* several clients ingest at once across a day boundary where no chunk exists yet, with new sensors appearing
  in every batch: every request is accepted and every reading is stored exactly once (50 runs on TimescaleDB,
  each on a new boundary; 5 on plain PostgreSQL, where no chunk is created but the registration path races);
* a statement trigger records the locks the readings' transaction holds on ``sensors`` when it writes
  readings: only ACCESS SHARE (it reads ``sensors``) — no ROW EXCLUSIVE, so nothing that conflicts with
  chunk creation.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from core.config import Settings, to_libpq_url
from tests.api.auth_support import bootstrap_headers
from tests.support.timescale import fetch, installed

CLIENTS = 6
BATCHES_PER_CLIENT = 3








async def _chunks_covering(settings: Settings, moment: datetime) -> int:
    rows = await fetch(
        settings.database_url,
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'sensor_readings' "
        "AND range_start <= $1 AND range_end > $1",
        moment,
    )
    return int(rows[0][0])


def _post(client: httpx.AsyncClient, settings: Settings, body: list[dict[str, Any]]) -> Any:
    return client.post(
        "/api/v1/data/ingest",
        content=orjson.dumps(body),
        headers={**bootstrap_headers(settings), "Content-Type": "application/json"},
    )


async def _one_run(client: httpx.AsyncClient, settings: Settings, boundary: datetime, tag: str) -> None:
    """``CLIENTS`` clients × ``BATCHES_PER_CLIENT`` batches, each with readings on both sides of ``boundary``
    for two sensors of its own, one sensor shared by every client of the run (registered by whoever wins) and
    one sensor that exists already."""
    known = f"{tag}-known"
    recent = datetime.now(UTC) - timedelta(hours=2)  # a chunk of its own, away from the boundaries of the runs
    response = await _post(client, settings, [{"sensor_id": known, "value": 0.0, "timestamp": recent.isoformat()}])
    assert response.status_code == 202, response.text

    def batch(c: int, b: int) -> list[dict[str, Any]]:
        sensors = [f"{tag}-c{c}-b{b}-a", f"{tag}-c{c}-b{b}-b", f"{tag}-shared-b{b}", known]
        items = []
        for minute in range(-10, 10):
            at = boundary + timedelta(minutes=minute, seconds=c * 7 + b)
            for sid in sensors:
                unit = "mm/s" if sid != known else None
                items.append({"sensor_id": sid, "value": float(minute), "timestamp": at.isoformat(),
                              "unit": unit, "metadata": {"sensor_type": "vibration"}})  # fmt: skip
        return items

    async def one_client(c: int) -> list[httpx.Response]:
        return [await _post(client, settings, batch(c, b)) for b in range(BATCHES_PER_CLIENT)]

    results = await asyncio.gather(*(one_client(c) for c in range(CLIENTS)))
    sent = 0
    for c, responses in enumerate(results):
        for b, response in enumerate(responses):
            assert response.status_code == 202, f"client {c} batch {b}: {response.status_code} {response.text}"
            body = response.json()
            assert body["rejected"] == [] and body["duplicates"] == 0, body
            sent += body["accepted"]
    assert sent == CLIENTS * BATCHES_PER_CLIENT * 20 * 4
    rows = await fetch(
        settings.database_url,
        "SELECT count(*), count(DISTINCT (sensor_id, timestamp)) FROM sensor_readings "
        "WHERE sensor_id LIKE $1 AND timestamp >= $2 AND timestamp < $3",
        f"{tag}-%",
        boundary - timedelta(minutes=10),
        boundary + timedelta(minutes=10),
    )
    assert tuple(rows[0]) == (sent, sent)
    sensors = await fetch(settings.database_url, "SELECT count(*) FROM sensors WHERE sensor_id LIKE $1", f"{tag}-%")
    assert sensors[0][0] == CLIENTS * BATCHES_PER_CLIENT * 2 + BATCHES_PER_CLIENT + 1


async def test_concurrent_ingest_across_a_new_chunk_boundary_with_new_sensors(
    client: httpx.AsyncClient, backend: Settings
) -> None:
    timescale = await installed(backend.database_url)
    runs = 50 if timescale else 5
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    offset = uuid.uuid4().int % 3  # a later session on the same server starts on other days
    for run in range(runs):
        boundary = today - timedelta(days=20 + 3 * run + offset)  # a UTC midnight: a 1-day chunk boundary
        if timescale:
            assert await _chunks_covering(backend, boundary) == 0, f"run {run}: a chunk exists already"
        await _one_run(client, backend, boundary, f"cb-{uuid.uuid4().hex[:8]}")
        if timescale:
            assert await _chunks_covering(backend, boundary) == 1


async def test_the_readings_transaction_takes_no_write_lock_on_sensors(
    client: httpx.AsyncClient, backend: Settings
) -> None:
    name = f"lock_probe_{uuid.uuid4().hex[:8]}"
    setup = [
        f"CREATE TABLE {name} (mode text NOT NULL)",
        f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {name} VALUES ('fired');
            INSERT INTO {name} SELECT mode FROM pg_locks
            WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation = 'sensors'::regclass;
            RETURN NULL;
        END $$""",
        f"CREATE TRIGGER {name} BEFORE INSERT ON sensor_readings FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]
    conn = await asyncpg.connect(to_libpq_url(backend.database_url))
    try:
        for statement in setup:
            await conn.execute(statement)
        tag = f"lk-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        # new sensors (registration), a unit to adopt on a unit-less sensor, a large batch (COPY) and a small one
        await conn.execute("INSERT INTO sensors (sensor_id, type) VALUES ($1, 'vibration')", f"{tag}-bare")
        bodies = [
            [{"sensor_id": f"{tag}-new", "value": 1.0, "timestamp": (now - timedelta(minutes=m)).isoformat()}
             for m in range(1, 4)]
            + [{"sensor_id": f"{tag}-bare", "value": 1.0, "unit": "mm/s", "timestamp": now.isoformat()}],
            [{"sensor_id": f"{tag}-big-{i % 7}", "value": float(i),
              "timestamp": (now - timedelta(seconds=i)).isoformat()} for i in range(1, 1_200)],
        ]  # fmt: skip
        for body in bodies:
            response = await _post(client, backend, body)
            assert response.status_code == 202, response.text
            assert response.json()["accepted"] == len(body)
        modes = [r["mode"] for r in await conn.fetch(f"SELECT mode FROM {name}")]
    finally:
        await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON sensor_readings")
        await conn.execute(f"DROP FUNCTION IF EXISTS {name}()")
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.close()
    assert modes.count("fired") >= 2, modes
    assert set(modes) - {"fired"} <= {"AccessShareLock", "RowShareLock"}, modes
