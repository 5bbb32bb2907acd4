"""CPU of one run of each agent handler, measured in this process (``python scripts/bench/agents_cpu.py``).

What an agent costs the process that runs it, without HTTP or the bus around it: a fresh database (migrated), 100
sensors with 2,000 one-second readings each, then for each scenario the new readings are inserted and the handler
is called the way the bus calls it (``await handler(event)``), ``--runs`` times; the table gives the CPU time of
this process (``time.process_time``: Python, SQLAlchemy, asyncpg — what competes with ingest on the event loop)
and the wall time per run. Scenarios: ``singles`` (an event of 20 sensors with one new reading each, what a group
commit of single readings announces) and ``batch`` (one sensor, 1,000 new readings, a batch request). PostgreSQL's
own CPU is not in the figures. Use it to compare code versions back to back; it is no benchmark of the platform.
"""

from __future__ import annotations

import asyncio
import cProfile
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for _bootstrap
import _bootstrap  # noqa: F401  (puts the project on sys.path when run by path)
import asyncpg
import typer

from core.alerts.agent import ReadingsHandler, ScoredHandler
from core.anomaly.agent import AnomalyAgent
from core.config import load_settings, to_libpq_url
from core.db.admin import create_database, drop_database, upgrade
from core.db.session import create_engine, create_session_factory
from core.events.types import Event, ReadingsIngested, ReadingsScored
from core.ml.registry.memory import InMemoryRegistry

SENSORS = 100
HISTORY = 2_000
Rows = list[tuple[datetime, str, float]]


async def _seed(url: str, start: datetime) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO sensors (sensor_id, type, status) VALUES ($1, 'unknown', 'active')",
            [(f"cpu-{s:03d}",) for s in range(SENSORS)],
        )
        rows = [
            (start + timedelta(seconds=i), f"cpu-{s:03d}", 20.0 + (i % 600) * 0.01 + s * 0.1, None, 1.0)
            for s in range(SENSORS)
            for i in range(HISTORY)
        ]
        await conn.copy_records_to_table(
            "sensor_readings", records=rows, columns=["timestamp", "sensor_id", "value", "unit", "quality"]
        )
        await conn.execute("VACUUM ANALYZE sensor_readings")
    finally:
        await conn.close()


async def _insert(url: str, rows: list[tuple[datetime, str, float]]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "sensor_readings",
            records=[(t, s, v, None, 1.0) for t, s, v in rows],
            columns=["timestamp", "sensor_id", "value", "unit", "quality"],
        )
    finally:
        await conn.close()


async def _measure(
    url: str,
    handler: Callable[[Event], Awaitable[None]],
    events: list[tuple[Rows, Event]],
    profile: cProfile.Profile | None = None,
) -> tuple[float, float]:
    cpu: list[float] = []
    wall: list[float] = []
    for rows, event in events:
        await _insert(url, rows)
        c0, w0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        await handler(event)
        if profile is not None:
            profile.disable()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu) * 1000, statistics.median(wall) * 1000


def _events(scenario: str, runs: int, start: datetime, kind: str) -> list[tuple[Rows, Event]]:
    rng = random.Random(7)
    out: list[tuple[Rows, Event]] = []
    second = HISTORY
    for run in range(runs):
        if scenario == "singles":
            sensors = sorted(rng.sample(range(SENSORS), 20))
            stamp = start + timedelta(seconds=second, milliseconds=run % 1000)
            rows = [(stamp, f"cpu-{s:03d}", 20.0 + rng.random()) for s in sensors]
            second += 1
        else:  # a sensor's batches follow each other in time, as a device sends them (5 sensors in turn)
            sensor = f"cpu-{run % 5:03d}"
            base = HISTORY + (run // 5) * 1000
            rows = [(start + timedelta(seconds=base + i), sensor, 20.0 + (i % 600) * 0.01) for i in range(1000)]
        ids = sorted({s for _, s, _ in rows})
        first, last = min(t for t, _, _ in rows), max(t for t, _, _ in rows)
        event: Event
        if kind == "scored":
            event = ReadingsScored(sensor_ids=ids, count=len(rows), first_timestamp=first, last_timestamp=last)
        else:
            event = ReadingsIngested(
                sensor_ids=ids,
                count=len(rows),
                first_timestamp=first,
                last_timestamp=last,
                ingest_event_id=uuid.uuid4(),
            )
        out.append((rows, event))
    return out


async def _run(url: str, runs: int, profile_dir: Path | None) -> list[tuple[str, str, float, float]]:
    settings = load_settings().model_copy(update={"database_url": url})
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    await _seed(to_libpq_url(url), start)
    results = []
    try:
        handlers: dict[str, tuple[str, Callable[[Event], Awaitable[None]]]] = {
            "alerting.readings_ingested": ("ingested", ReadingsHandler(factory, settings)),
            "alerting.readings_scored": ("scored", ScoredHandler(factory, settings)),
            "anomaly.detect": ("ingested", AnomalyAgent(settings, factory, registry=InMemoryRegistry())),
        }
        offset = 0
        for scenario in ("singles", "batch"):
            for name, (kind, handler) in handlers.items():
                # each handler gets readings of its own, later than everything before (no overlap between handlers)
                shifted = start + timedelta(days=0, seconds=offset)
                events = _events(scenario, runs, shifted, kind)
                offset += (runs + 1) * (200 if scenario == "batch" else 1) + 10
                await _measure(to_libpq_url(url), handler, events[:5])  # warm-up: caches, prepared statements
                profile = cProfile.Profile() if profile_dir is not None else None
                cpu, wall = await _measure(to_libpq_url(url), handler, events[5:], profile)
                if profile is not None and profile_dir is not None:
                    profile_dir.mkdir(parents=True, exist_ok=True)
                    profile.dump_stats(profile_dir / f"{scenario}-{name}.prof")  # CPU figures include the profiler
                results.append((scenario, name, cpu, wall))
    finally:
        await engine.dispose()
    return results


def main(
    runs: Annotated[int, typer.Option(help="handler runs per scenario")] = 200,
    profile: Annotated[
        Path | None, typer.Option(help="write a cProfile of each scenario and handler here (<scenario>-<handler>.prof)")
    ] = None,
) -> None:
    settings = load_settings()
    admin = settings.database_url if settings.database_url_is_explicit else settings.test_admin_database_url
    url = create_database(to_libpq_url(admin), prefix="sm_bench_agents")
    try:
        upgrade(url)
        results = asyncio.run(_run(url, runs, profile))
    finally:
        drop_database(to_libpq_url(admin), url)
    print("| scenario | handler | CPU ms / run (median) | wall ms / run (median) |")
    print("|---|---|---|---|")
    for scenario, name, cpu, wall in results:
        print(f"| {scenario} | {name} | {cpu:.2f} | {wall:.2f} |")


if __name__ == "__main__":
    typer.run(main)
