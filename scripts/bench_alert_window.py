"""Alert rule-window benchmark (issue 12): the alerting agent's readings query in a back-fill, old query vs new.

On a throw-away database (created on the server of ``--database-url``, migrated with ``alembic upgrade head``,
dropped at the end unless ``--keep``): ``--sensors`` sensors with one reading every ``--interval-s`` seconds over
the last ``--days`` days (plus ``--sparse-sensors`` with one reading every ``--sparse-interval-min`` minutes),
loaded with asyncpg COPY. On a TimescaleDB server the migrations make ``sensor_readings`` a hypertable (1-day
chunks, compression segmented by sensor_id); the chunks older than 7 days are then compressed, as the compression
policy does in production, and the background jobs are paused so that they do not run during the timing. Then
VACUUM ANALYZE and one sequential read of the table (warm cache).

The rule-window read is then called as a back-fill calls it: one call per batch of ``--batch-minutes`` of
readings of every sensor, walking through the days in time order, ``--lookback`` readings before each batch;
each batch with the old query (one statement, no lower time bound on "the last n before first") and with the new
one (``AlertingRepository.readings_for``: the bounded statement, plus the further windows for the sensors short
of readings), each call a transaction of its own on a connection with ``statement_timeout`` =
``--statement-timeout-ms`` (a timeout counts as an error). One batch in flight (``--concurrency 1``): one walk,
the two queries in turns (old first on even batches, new first on odd ones), so that both see the same noise of a
shared machine. Several: one walk per query, old then new (in turns, the query with more round trips would wait
more often for the other calls' row processing on the client's one event loop). The answers of the two are
compared batch by batch.

With ``--maintenance-hold-s S`` (TimescaleDB), in every walk, once it is past the oldest compressed chunk and the
new query's first window after it (compression works behind a back-fill's front), a reader holds ACCESS SHARE on
that chunk for S seconds (a long report, an export, a continuous-aggregate refresh over history) while
``decompress_chunk`` on it waits for its ACCESS EXCLUSIVE lock, then the chunk is compressed again, S seconds
apart: the lock queue a compression or retention job meets in production. A statement that locks that chunk
queues behind the waiting ACCESS EXCLUSIVE request.

    .venv/bin/python scripts/bench_alert_window.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import platform
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import _bootstrap  # noqa: F401  (puts the project on sys.path when run by path)
import asyncpg
import typer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from core.alerts.repository import READINGS_LOOKBACK_WINDOWS, AlertingRepository, Point
from core.alerts.window_repository import UNBOUNDED_READINGS_SQL
from core.config import to_async_url, to_libpq_url
from core.db import timescale
from core.db.admin import create_database, drop_database, upgrade

#: The rule-window query before issue 12 (the reference: what the new code must answer), which the plain
#: PostgreSQL path still runs.
OLD_SQL = UNBOUNDED_READINGS_SQL.text

#: Relations of the hypertable (chunks, compressed chunks and their indexes) this backend holds a lock on.
CHUNK_LOCKS_SQL = """
    SELECT count(*) FROM pg_locks
    WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation::regclass::text LIKE '%\\_chunk%'
    """

app = typer.Typer(add_completion=False, help=__doc__)
Points = dict[str, list[Point]]


@dataclass(frozen=True)
class Batch:
    index: int
    first: datetime
    until: datetime


@dataclass
class Timings:
    name: str
    seconds: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    digests: dict[int, str] = field(default_factory=dict)
    rows: int = 0
    chunk_locks: int | None = None

    def row(self) -> str:
        ms = sorted(s * 1000 for s in self.seconds)
        if ms:
            p50 = statistics.median(ms)
            p95 = ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)]
            figures = f"{p50:,.1f} | {p95:,.1f} | {ms[-1]:,.1f} | {sum(ms) / 1000:,.1f}"
        else:
            figures = "– | – | – | –"
        errors = ", ".join(f"{n} {kind}" for kind, n in sorted(self.errors.items())) or "0"
        locks = "–" if self.chunk_locks is None else str(self.chunk_locks)
        slow = sum(1 for v in ms if v > 1000)
        return (
            f"| {self.name} | {len(self.seconds)} | {errors} | {slow} | {figures} | {self.rows:,} | {locks} |"
        )


def _digest(points: Points) -> tuple[str, int]:
    h = hashlib.sha256()
    rows = 0
    for sensor_id in sorted(points):
        for p in points[sensor_id]:
            h.update(f"{sensor_id}|{p.timestamp.isoformat()}|{p.value!r}\n".encode())
            rows += 1
    return h.hexdigest(), rows


def _series(
    sensor_id: str, i: int, start: datetime, stop: datetime, step: timedelta, rng: random.Random
) -> list:
    out = []
    at = start
    while at < stop:
        phase = 2 * math.pi * (at.timestamp() % 86_400) / 86_400
        out.append((at, sensor_id, 20.0 + i % 10 + 3 * math.sin(phase) + rng.gauss(0, 0.2), "C", 1.0))
        at += step
    return out


async def load(
    url: str,
    sensors: dict[str, timedelta],
    start: datetime,
    end: datetime,
) -> int:
    """Register the sensors and COPY their readings in ``[start, end)`` (one every ``sensors[id]``), a day at a
    time; answers the row count."""
    conn = await asyncpg.connect(to_libpq_url(url))
    rng = random.Random(12)
    total = 0
    try:
        await conn.executemany(
            "INSERT INTO sensors (sensor_id, type, unit, status) VALUES ($1, 'temperature', 'C', 'active')",
            [(s,) for s in sensors],
        )
        day = start
        while day < end:
            stop = min(day + timedelta(days=1), end)
            records: list[tuple[Any, ...]] = []
            for i, (sensor_id, step) in enumerate(sensors.items()):
                # a sparse sensor's readings stay on its own grid across days
                first = start + step * math.ceil((day - start) / step)
                records.extend(_series(sensor_id, i, first, stop, step, rng))
            await conn.copy_records_to_table(
                "sensor_readings",
                records=records,
                columns=["timestamp", "sensor_id", "value", "unit", "quality"],
            )
            total += len(records)
            typer.echo(f"  loaded {day:%Y-%m-%d %H:%M}: {len(records):,} rows", err=True)
            day = stop
    finally:
        await conn.close()
    return total


async def hypertable(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(timescale.INSTALLED_SQL)) and bool(
        await conn.fetchval(timescale.is_hypertable_sql())
    )


async def prepare(url: str) -> tuple[str, list[str]]:
    """TimescaleDB: compress the chunks older than 7 days and pause the background jobs. VACUUM ANALYZE, warm
    the cache. Answers a description of the table and the compressed chunks."""
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        description = "plain table"
        compressed: list[str] = []
        if await hypertable(conn):
            started = time.perf_counter()
            compressed = [
                str(r[0])
                for r in await conn.fetch(
                    "SELECT compress_chunk(c, if_not_compressed => true) FROM "
                    "show_chunks('sensor_readings', older_than => now() - interval '7 days') c"
                )
            ]
            typer.echo(
                f"  compressed {len(compressed)} chunks in {time.perf_counter() - started:.1f} s", err=True
            )
            await conn.execute(
                "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE job_id >= 1000"
            )
            chunks = await conn.fetchval("SELECT count(*) FROM show_chunks('sensor_readings')")
            description = (
                f"hypertable, {chunks} chunks of 1 day, {len(compressed)} compressed (older than 7 days), "
                "background jobs paused"
            )
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE sensor_readings")
        await conn.fetchval("SELECT count(*) + sum(value) FROM sensor_readings")
        typer.echo(f"  vacuumed, analysed and read in {time.perf_counter() - started:.1f} s", err=True)
        return description, compressed
    finally:
        await conn.close()


def batches(start: datetime, end: datetime, minutes: int, interval_s: int) -> list[Batch]:
    size = timedelta(minutes=minutes)
    out: list[Batch] = []
    first = start
    while first < end:
        # the batch's last reading: what ReadingsIngested.last_timestamp carries
        out.append(Batch(len(out), first, min(first + size, end) - timedelta(seconds=interval_s)))
        first += size
    return out


async def old_query(session: AsyncSession, sensors: Sequence[str], batch: Batch, lookback: int) -> Points:
    """What ``AlertingRepository.readings_for`` did before issue 12."""
    out: Points = {s: [] for s in sensors}
    rows = await session.execute(
        text(OLD_SQL),
        {"ids": list(sensors), "firsts": [batch.first] * len(sensors), "until": batch.until, "n": lookback},
    )
    for sensor_id, timestamp, value in rows:
        out[sensor_id].append(Point(timestamp, value))
    return out


async def new_query(session: AsyncSession, sensors: Sequence[str], batch: Batch, lookback: int) -> Points:
    return await AlertingRepository(session).readings_for(
        dict.fromkeys(sensors, batch.first), batch.until, lookback
    )


Query = Callable[[AsyncSession, Sequence[str], Batch, int], Awaitable[Points]]
QUERIES: dict[str, Query] = {"old": old_query, "new": new_query}


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def maintain(
    url: str, chunk: str, hold_s: float, gate: asyncio.Event, stop: asyncio.Event, cycles: list[float]
) -> None:
    """From ``gate`` until ``stop``, in cycles: a reader holds ACCESS SHARE on ``chunk`` for ``hold_s`` (a long
    report, an export, a continuous-aggregate refresh over history), ``decompress_chunk`` (ACCESS EXCLUSIVE)
    queues behind it, then ``compress_chunk``; then ``hold_s`` of quiet. Appends each cycle's time to ``cycles``."""
    reader = await asyncpg.connect(to_libpq_url(url))
    worker = await asyncpg.connect(to_libpq_url(url))
    try:
        await asyncio.wait(
            [asyncio.create_task(gate.wait()), asyncio.create_task(stop.wait())],
            return_when="FIRST_COMPLETED",
        )
        while not stop.is_set():
            transaction = reader.transaction()
            await transaction.start()
            await reader.execute(f"LOCK TABLE {chunk} IN ACCESS SHARE MODE")
            started = time.perf_counter()
            decompress = asyncio.create_task(worker.execute("SELECT decompress_chunk($1::regclass)", chunk))
            await _wait(stop, hold_s)
            await transaction.rollback()
            await decompress
            await worker.execute("SELECT compress_chunk($1::regclass)", chunk)
            cycles.append(time.perf_counter() - started)
            await _wait(stop, hold_s)
    finally:
        await reader.close()
        await worker.close()


async def run_calls(
    factory: async_sessionmaker[AsyncSession],
    results: dict[str, Timings],
    sensors: Sequence[str],
    todo: Sequence[Batch],
    lookback: int,
    concurrency: int,
    gate: asyncio.Event,
    gate_index: int,
) -> float:
    """Every batch with every query in ``results``, the queries in turns (old first on even batches, new first on
    odd ones), so that both see the same noise of a shared machine; sets ``gate`` when batch ``gate_index`` is
    taken. Answers the wall time."""
    queue: asyncio.Queue[Batch] = asyncio.Queue()
    for batch in todo:
        queue.put_nowait(batch)
    done = 0
    names = list(results)

    async def call(timings: Timings, batch: Batch) -> None:
        started = time.perf_counter()
        try:
            async with factory() as session, session.begin():
                points = await QUERIES[timings.name](session, sensors, batch, lookback)
        except DBAPIError as exc:
            kind = "timeout" if "statement timeout" in str(exc) else type(exc.orig).__name__
            timings.errors[kind] = timings.errors.get(kind, 0) + 1
        else:
            timings.seconds.append(time.perf_counter() - started)
            timings.digests[batch.index], rows = _digest(points)
            timings.rows += rows

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                batch = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if batch.index >= gate_index:
                gate.set()
            for name in names if batch.index % 2 == 0 else names[::-1]:
                await call(results[name], batch)
            done += 1
            if done % 24 == 0:
                typer.echo(f"  {done}/{len(todo)} batches", err=True)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def chunk_locks(
    factory: async_sessionmaker[AsyncSession],
    name: str,
    sensors: Sequence[str],
    batch: Batch,
    lookback: int,
) -> int:
    """Hypertable relations one call locks (on a connection that has run the statement many times already)."""
    async with factory() as session, session.begin():
        await QUERIES[name](session, sensors, batch, lookback)
        return int((await session.execute(text(CHUNK_LOCKS_SQL))).scalar_one())


async def explain(
    factory: async_sessionmaker[AsyncSession], sensors: Sequence[str], batch: Batch, lookback: int
) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the old statement for one batch (the new one's plans: ``auto_explain``)."""
    async with factory() as session, session.begin():
        rows = await session.execute(
            text("EXPLAIN (ANALYZE, BUFFERS) " + OLD_SQL),
            {
                "ids": list(sensors),
                "firsts": [batch.first] * len(sensors),
                "until": batch.until,
                "n": lookback,
            },
        )
        return "\n".join(r[0] for r in rows)


async def explain_new(
    factory: async_sessionmaker[AsyncSession],
    sensors: Sequence[str],
    batch: Batch,
    lookback: int,
) -> str:
    """The plans of the new call's statements as executed (auto_explain, session-level LOAD: superuser)."""
    async with factory() as session, session.begin():
        try:
            await session.execute(text("LOAD 'auto_explain'"))
        except DBAPIError as exc:
            return f"(auto_explain not available: {exc.orig})"
        for setting in (
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_analyze = on",
            "auto_explain.log_buffers = on",
            "auto_explain.log_level = notice",
        ):
            await session.execute(text(f"SET LOCAL {setting}"))
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        notices: list[str] = []

        def collect(_conn: Any, message: Any) -> None:
            notices.append(str(message.message))

        raw.add_log_listener(collect)
        try:
            await new_query(session, sensors, batch, lookback)
            await session.execute(text("SELECT 1"))  # the notices are delivered by the event loop
            await asyncio.sleep(0.1)
        finally:
            raw.remove_log_listener(collect)
        plans = [n for n in notices if "sensor_readings" in n]
        return "\n\n".join(plans)


async def chunk_end(url: str, chunk: str) -> datetime:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        return await conn.fetchval(
            "SELECT range_end FROM timescaledb_information.chunks "
            "WHERE format('%I.%I', chunk_schema, chunk_name)::regclass = $1::regclass",
            chunk,
        )
    finally:
        await conn.close()


async def server_version(url: str) -> str:
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        version = str(await conn.fetchval("SELECT version()")).split(" on ")[0]
        ts = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        return version + (f", TimescaleDB {ts}" if ts else "")
    finally:
        await conn.close()


async def bench(
    url: str,
    *,
    sensors: int,
    sparse_sensors: int,
    sparse_interval_min: int,
    days: int,
    interval_s: int,
    batch_minutes: int,
    lookback: int,
    timeout_ms: int,
    concurrency: int,
    maintenance_hold_s: float,
    limit: int | None,
    show_plans: bool,
) -> bool:
    fleet = {f"bench-aw-{i:03d}": timedelta(seconds=interval_s) for i in range(sensors)}
    fleet |= {
        f"bench-aw-sparse-{i:03d}": timedelta(minutes=sparse_interval_min) for i in range(sparse_sensors)
    }
    ids = list(fleet)
    end = datetime.fromtimestamp(time.time() // 3600 * 3600, UTC)
    start = end - timedelta(days=days)
    started = time.perf_counter()
    total = await load(url, fleet, start, end)
    load_s = time.perf_counter() - started
    typer.echo(f"loaded {total:,} rows in {load_s:.1f} s", err=True)
    description, compressed = await prepare(url)
    if maintenance_hold_s and not compressed:
        typer.echo("--maintenance-hold-s: no compressed chunk (not TimescaleDB): no maintenance", err=True)
    server = await server_version(url)
    todo = batches(start, end, batch_minutes, interval_s)
    if limit is not None:
        todo = todo[:limit]
    # the maintenance works on the oldest compressed chunk once the walk is past it and past the new query's first
    # window after it (compression works behind the back-fill's front)
    target = compressed[0] if maintenance_hold_s and compressed else None
    gate_index = len(todo)
    if target is not None:
        past = await chunk_end(url, target) + READINGS_LOOKBACK_WINDOWS[0]
        gate_index = next((b.index for b in todo if b.first >= past), len(todo))
    engine = create_async_engine(
        to_async_url(url),
        pool_size=concurrency,
        max_overflow=0,
        connect_args={"server_settings": {"statement_timeout": str(timeout_ms), "timezone": "UTC"}},
    )
    factory = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    results = {name: Timings(name) for name in ("old", "new")}
    # one pass with both in turns; with several calls in flight one pass each (in turns, the query with more round
    # trips would wait more often for the other calls' row processing on the client's one event loop)
    passes = [["old", "new"]] if concurrency == 1 else [["old"], ["new"]]
    maintenance_s: list[float] = []
    wall = 0.0
    old_plan = new_plan = None
    try:
        for names in passes:
            stop, gate = asyncio.Event(), asyncio.Event()
            task = (
                asyncio.create_task(maintain(url, target, maintenance_hold_s, gate, stop, maintenance_s))
                if maintenance_hold_s and target
                else None
            )
            try:
                wall += await run_calls(
                    factory,
                    {n: results[n] for n in names},
                    ids,
                    todo,
                    lookback,
                    concurrency,
                    gate,
                    gate_index,
                )
            finally:
                stop.set()
                if task is not None:
                    await task
        if compressed:
            for name, timings in results.items():
                timings.chunk_locks = await chunk_locks(factory, name, ids, todo[-1], lookback)
        if show_plans:
            sample = todo[min(len(todo) - 1, 24)]
            old_plan = await explain(factory, ids, sample, lookback)
            new_plan = await explain_new(factory, ids, sample, lookback)
    finally:
        await engine.dispose()

    old, new = results["old"], results["new"]
    compared = sorted(set(old.digests) & set(new.digests))
    mismatched = [i for i in compared if old.digests[i] != new.digests[i]]
    print(f"\nServer: {server}; {description}.")
    print(
        f"Machine: {platform.platform()}, Python {platform.python_version()}; client and server on one machine."
    )
    sparse = (
        f" and {sparse_sensors} sparse sensors (one reading every {sparse_interval_min} min)"
        if sparse_sensors
        else ""
    )
    print(
        f"Data: {sensors} sensors (one reading every {interval_s} s){sparse} over {days} days: {total:,} rows "
        f"({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC), COPY in {load_s:.0f} s."
    )
    windows = ", ".join(f"{w.total_seconds() / 3600:g} h" for w in READINGS_LOOKBACK_WINDOWS)
    print(
        f"Calls: {len(todo)} batches of {batch_minutes} min x {len(ids)} sensors in time order, each batch with "
        f"both queries ({'in turns' if len(passes) == 1 else 'one walk per query'}); lookback {lookback} "
        f"readings, new query's windows {windows}, then the rest; {concurrency} batch(es) in flight; "
        f"statement_timeout {timeout_ms} ms; wall time {wall:.1f} s."
    )
    if target is not None:
        print(
            f"Concurrent chunk maintenance on {target} (the oldest compressed chunk) from batch {gate_index + 1} "
            f"on (the walk past it and past the first window after it), in every walk: {len(maintenance_s)} "
            f"cycles in all of a reader holding ACCESS SHARE for {maintenance_hold_s:g} s (less in a walk's last "
            f"cycle) with decompress_chunk queued behind it, then compress_chunk, {maintenance_hold_s:g} s apart."
        )
    print()
    print(
        "| query | calls ok | errors | ok calls > 1 s | p50 ms | p95 ms | max ms | sum of calls s | rows read "
        "| chunk relations locked |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for timings in results.values():
        print(timings.row())
    verdict = "identical" if not mismatched else f"DIFFERENT in {len(mismatched)} batches: {mismatched[:10]}"
    print(f"\nAnswers compared in {len(compared)} batches: {verdict}.")
    if old_plan is not None:
        print(
            f"\nEXPLAIN (ANALYZE, BUFFERS) of batch {min(len(todo) - 1, 24) + 1}, old statement:\n{old_plan}"
        )
        print(f"\nauto_explain of the same batch, new call:\n{new_plan}")
    return not mismatched


@app.command()
def main(
    database_url: Annotated[
        str, typer.Option(help="admin URL of the server (a throw-away database is created there)")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    sensors: Annotated[int, typer.Option(min=1)] = 50,
    sparse_sensors: Annotated[
        int, typer.Option(min=0, help="sensors with few readings, in every batch too")
    ] = 0,
    sparse_interval_min: Annotated[int, typer.Option(min=1)] = 120,
    days: Annotated[int, typer.Option(min=1)] = 10,
    interval_s: Annotated[int, typer.Option(min=1, help="seconds between two readings of a sensor")] = 10,
    batch_minutes: Annotated[
        int, typer.Option(min=1, help="a call reads this many minutes of each sensor")
    ] = 60,
    lookback: Annotated[int, typer.Option(min=1, help="readings before each batch (:n)")] = 21,
    statement_timeout_ms: Annotated[int, typer.Option(min=0)] = 30_000,
    concurrency: Annotated[int, typer.Option(min=1, help="calls in flight")] = 1,
    maintenance_hold_s: Annotated[
        float,
        typer.Option(
            min=0,
            help="TimescaleDB: during the calls, a reader holds the oldest compressed chunk this long while "
            "decompress_chunk queues behind it (0: off)",
        ),
    ] = 0.0,
    limit: Annotated[int | None, typer.Option(help="time only the first N batches")] = None,
    plans: Annotated[bool, typer.Option(help="print the plans of both for one batch")] = True,
    keep: Annotated[bool, typer.Option(help="keep the database (its URL is printed)")] = False,
) -> None:
    url = create_database(database_url, prefix="sm_bench_alert_window")
    typer.echo(f"database {url}", err=True)
    try:
        upgrade(url)
        same = asyncio.run(
            bench(
                url,
                sensors=sensors,
                sparse_sensors=sparse_sensors,
                sparse_interval_min=sparse_interval_min,
                days=days,
                interval_s=interval_s,
                batch_minutes=batch_minutes,
                lookback=lookback,
                timeout_ms=statement_timeout_ms,
                concurrency=concurrency,
                maintenance_hold_s=maintenance_hold_s,
                limit=limit,
                show_plans=plans,
            )
        )
    finally:
        if keep:
            typer.echo(f"kept {url}", err=True)
        else:
            drop_database(database_url, url)
    if not same:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
