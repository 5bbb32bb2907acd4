"""Per-delivery cost of the maintenance loop's ``ReadingsIngested`` handlers (a micro-benchmark for bench-loop).

A fresh database migrated to head (default alert rules), ``--sensors`` sensors of the demo fleet's five types,
``--history`` seconds of stored readings at ``--rate`` readings/s in total (the simulator's shape: every sensor
gets ``rate / sensors`` readings a second), then ``--batches`` consecutive batches of 0.1 s of readings
(500 readings from 50 sensors at 5,000/s), each written with COPY and delivered to the anomaly agent
(``anomaly.detect``) and to the alerting agent (``alerting.readings_ingested``) one after the other, timed
separately. ``--profile`` prints the top functions of cProfile for both handlers.

    .venv/bin/python scripts/profile_loop.py --history 30 --batches 40 [--profile]
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import _bootstrap  # noqa: F401  (puts the project on sys.path when run by path)
import asyncpg
import numpy as np
import typer
from rich.console import Console

from core.alerts.agent import ReadingsHandler
from core.anomaly.agent import AnomalyAgent
from core.config import load_settings, to_libpq_url
from core.db.admin import create_database, drop_database, upgrade
from core.db.session import create_engine, create_session_factory
from core.events.types import ReadingsIngested

console = Console(highlight=False)
TYPES = {"temperature": 60.0, "vibration": 3.0, "pressure": 5.0, "humidity": 50.0, "voltage": 230.0}


class _Registry:
    """No champion model for any type: the baseline scores everything (what bench-loop measures)."""

    def check_reachable(self) -> None:
        return None

    def champion_version(self, name: str) -> None:
        return None

    def load(self, name: str, version: str) -> None:
        raise LookupError(name)


async def _run(sensors: int, rate: int, history: float, batches: int, profile: bool, db_url: str) -> None:
    rng = np.random.default_rng(0)
    ids = [f"prof-{i:03d}" for i in range(sensors)]
    kinds = list(TYPES)
    period = sensors / rate
    t0 = datetime.now(UTC) - timedelta(seconds=history + batches * 0.1 + 60)
    conn = await asyncpg.connect(to_libpq_url(db_url))
    await conn.executemany(
        "INSERT INTO sensors (sensor_id, type) VALUES ($1, $2)",
        [(s, kinds[i % len(kinds)]) for i, s in enumerate(ids)],
    )

    def rows(k0: int, k1: int) -> list[tuple[datetime, str, float]]:
        out = []
        for k in range(k0, k1):
            at = t0 + timedelta(seconds=k * period)
            for i, s in enumerate(ids):
                out.append((at, s, TYPES[kinds[i % len(kinds)]] * (1 + 0.01 * rng.standard_normal())))
        return out

    per_batch = max(1, round(0.1 / period))
    k = int(history / period)
    await conn.copy_records_to_table(
        "sensor_readings", records=rows(0, k), columns=["timestamp", "sensor_id", "value"]
    )
    await conn.execute("ANALYZE sensor_readings")
    settings = load_settings(database_url=db_url, mlflow_tracking_uri="http://127.0.0.1:9", db_pool_size=5)
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    agent = AnomalyAgent(settings, factory, registry=_Registry())  # type: ignore[arg-type]
    alerting = ReadingsHandler(factory)
    times: dict[str, list[float]] = {"anomaly.detect": [], "alerting.readings_ingested": []}
    profiles = {name: cProfile.Profile() for name in times}
    try:
        for b in range(batches):
            batch = rows(k, k + per_batch)
            k += per_batch
            await conn.copy_records_to_table(
                "sensor_readings", records=batch, columns=["timestamp", "sensor_id", "value"]
            )
            event = ReadingsIngested(
                sensor_ids=ids,
                count=len(batch),
                first_timestamp=batch[0][0],
                last_timestamp=batch[-1][0],
                ingest_event_id=uuid.uuid4(),
            )
            for name, handler in (("anomaly.detect", agent.handle), ("alerting.readings_ingested", alerting)):
                started = time.perf_counter()
                if profile and b >= 2:
                    profiles[name].enable()
                await handler(event)
                profiles[name].disable()
                if b >= 2:  # the first deliveries build the baseline states from the database
                    times[name].append(time.perf_counter() - started)
    finally:
        await agent.aclose()
        await engine.dispose()
        await conn.close()
    console.print(
        f"{sensors} sensors, {history:.0f} s of history at {rate:,}/s "
        f"({int(history / period):,} readings/sensor), batches of {per_batch * sensors} readings:"
    )
    for name, values in times.items():
        ms = sorted(v * 1000 for v in values)
        console.print(
            f"  {name:28s} mean {statistics.fmean(ms):7.1f} ms  p50 {ms[len(ms) // 2]:7.1f} ms  "
            f"max {ms[-1]:7.1f} ms  ({len(ms)} deliveries)"
        )
    if profile:
        for name, prof in profiles.items():
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
            console.print(f"--- {name} ---\n{out.getvalue()}")


def main(
    sensors: Annotated[int, typer.Option()] = 50,
    rate: Annotated[int, typer.Option(help="readings/s of the whole fleet")] = 5000,
    history: Annotated[float, typer.Option(help="seconds of readings stored before the batches")] = 30.0,
    batches: Annotated[int, typer.Option()] = 30,
    profile: Annotated[bool, typer.Option("--profile")] = False,
) -> None:
    settings = load_settings()
    admin = settings.database_url if settings.database_url_is_explicit else settings.test_admin_database_url
    db_url = create_database(to_libpq_url(admin), prefix="sm_profloop")
    try:
        upgrade(db_url)
        asyncio.run(_run(sensors, rate, history, batches, profile, db_url))
    finally:
        drop_database(to_libpq_url(admin), db_url)


if __name__ == "__main__":
    typer.run(main)
