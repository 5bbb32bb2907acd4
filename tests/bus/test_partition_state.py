"""A worker that gains a partition drops the per-sensor state another worker may have moved on since, for that
partition's sensors only and only in the handlers of the agent the partition belongs to: the alert rules'
watermarks (their next batch is evaluated as its events say) and the anomaly agent's baseline windows (rebuilt from
the database on their next batch)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from core.alerts.agent import Watermarks
from core.anomaly.baseline import SensorState
from core.events.partitions import sensor_partition
from core.runtime.bootstrap import bootstrap_worker, forget_partition
from tests.bus.conftest import bus_settings


async def test_gaining_a_partition_drops_its_sensors_state_in_that_agents_handlers_only(tmp_path: Path) -> None:
    settings = bus_settings("postgresql+asyncpg://postgres@127.0.0.1:9/unused", "nats://127.0.0.1:9", tmp_path)
    runtime = bootstrap_worker(settings, ("alerting", "anomaly"), name="w-test")
    handlers = [s.handler for s in runtime.subscriptions]
    marks = [h.watermarks for h in handlers if isinstance(getattr(h, "watermarks", None), Watermarks)]  # type: ignore[attr-defined]
    assert len(marks) == 2  # the readings and the scored handlers
    assert runtime.anomaly_agent is not None
    states = runtime.anomaly_agent.detector.states
    sensors = [f"wm-{i}" for i in range(40)]
    gained = sensor_partition(sensors[0], settings.bus_partitions)
    moved = [s for s in sensors if sensor_partition(s, settings.bus_partitions) == gained]
    kept = [s for s in sensors if s not in moved]
    assert moved and kept
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for watermarks in marks:
        watermarks.advance(sensors, at)
    for sensor_id in sensors:
        states.put(sensor_id, SensorState(states.config.window))

    forget_partition(runtime, "anomaly", gained)  # the anomaly agent's partition: alerting's state stays
    assert set(states.sensor_ids()) == set(kept)
    assert all(set(w.after(sensors)) == set(sensors) for w in marks)

    forget_partition(runtime, "alerting", gained)
    for watermarks in marks:
        assert set(watermarks.after(sensors)) == set(kept)
    assert set(states.sensor_ids()) == set(kept)
    await runtime.engine.dispose()
