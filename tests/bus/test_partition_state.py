"""A worker that gains a partition drops the per-sensor state another worker may have moved on since: the alerting
handlers' watermarks of that partition's sensors (their next batch is evaluated as its events say)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from core.alerts.agent import Watermarks
from core.events.partitions import sensor_partition
from core.runtime.bootstrap import bootstrap_worker, forget_partition
from tests.bus.conftest import bus_settings


async def test_gaining_an_alerting_partition_drops_its_sensors_watermarks_only(tmp_path: Path) -> None:
    settings = bus_settings("postgresql+asyncpg://postgres@127.0.0.1:9/unused", "nats://127.0.0.1:9", tmp_path)
    runtime = bootstrap_worker(settings, ("alerting",), name="w-test")
    handlers = [s.handler for s in runtime.subscriptions]
    marks = [h.watermarks for h in handlers if isinstance(getattr(h, "watermarks", None), Watermarks)]  # type: ignore[attr-defined]
    assert len(marks) == 2  # the readings and the scored handlers
    sensors = [f"wm-{i}" for i in range(40)]
    gained = sensor_partition(sensors[0], settings.bus_partitions)
    moved = [s for s in sensors if sensor_partition(s, settings.bus_partitions) == gained]
    kept = [s for s in sensors if s not in moved]
    assert moved and kept
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for watermarks in marks:
        watermarks.advance(sensors, at)
    forget_partition(runtime, "anomaly", gained)  # another agent's partition: nothing of alerting's changes
    assert all(set(w.after(sensors)) == set(sensors) for w in marks)
    forget_partition(runtime, "alerting", gained)
    for watermarks in marks:
        assert set(watermarks.after(sensors)) == set(kept)
    await runtime.engine.dispose()
