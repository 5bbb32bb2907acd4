"""The demo's vibration snapshots (``simulate --waveforms``): the demo sensor is registered once, the streamer's
snapshots are accepted by the API and the scheduled defect is what the diagnosis agent names."""

from __future__ import annotations

import asyncio
import time

from apps.cli.simulate_waveforms import bearing_signal, ensure_demo_sensor
from core.config import Settings
from core.simulation.waveform_live import DEMO_WAVEFORM_SENSOR, WaveformPlan, WaveformStreamer
from tests.api.auth_support import bootstrap_headers, serve_app


def test_fault_schedule() -> None:
    plan = WaveformPlan(first_fault_s=60, fault_every_s=600, fault_duration_s=120)
    assert [plan.fault_at(t) for t in (0, 59, 60, 179, 180, 660, 1260, 1380)] == [
        "none", "none", "outer", "outer", "none", "inner", "ball", "none",
    ]  # fmt: skip
    assert WaveformPlan(faults=False).fault_at(100) == "none"


async def test_streamer_sends_snapshots_the_agent_diagnoses(settings: Settings) -> None:
    first = await ensure_demo_sensor(settings)
    again = await ensure_demo_sensor(settings)
    assert DEMO_WAVEFORM_SENSOR.sensor_id in first and again.endswith("is registered")
    plan = WaveformPlan(every_s=0.2, first_fault_s=0.0, fault_duration_s=60.0)
    async with serve_app(settings) as (_, client):
        key = bootstrap_headers(settings)["X-API-Key"]
        streamer = WaveformStreamer("http://testserver", key, plan, bearing_signal, seed=3, client=client)
        stats = await streamer.run(duration=0.3)
        assert (stats.sent, stats.accepted, streamer.fatal) == (2, 2, None)
        assert stats.by_fault == {"outer": 2}
        deadline = time.monotonic() + 20
        while True:
            response = await client.get(
                f"/api/v1/sensors/{plan.sensor_id}/diagnoses", headers=bootstrap_headers(settings)
            )
            items = response.json()["items"]
            if len(items) >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert [i["fault"] for i in items[:2]] == ["outer race", "outer race"]
