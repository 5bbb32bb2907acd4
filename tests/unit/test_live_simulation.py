"""Pure parts of the live simulator: rates, fleet, fault schedule and shapes, physics, due readings."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from core.simulation.catalogue import PROFILES
from core.simulation.live import LiveSensor, LiveSimulator, backoff_s, due_count, live_fleet, parse_rate
from core.simulation.live_faults import (
    FAULT_TYPES,
    LIVE_FAULT_KINDS,
    SPIKE_EVERY,
    LiveFault,
    fault_effect,
    fault_schedule,
)


@pytest.mark.parametrize(
    ("text", "rate"), [("50/s", 50.0), ("600/min", 10.0), ("3600/h", 1.0), (" 2.5 / s ", 2.5)]
)
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["50", "0/s", "-1/s", "5/day", "fast"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_fleets() -> None:
    demo = live_fleet(15)
    assert [s.sensor_id for s in demo] == [f"sensor-{i:03d}" for i in range(1, 16)]
    more = live_fleet(17)
    assert [s.sensor_id for s in more[15:]] == ["sim-016", "sim-017"]
    sim = live_fleet(5, "sim")
    assert [s.sensor_id for s in sim] == [f"sim-{i:03d}" for i in range(1, 6)]
    assert [s.type for s in sim] == list(PROFILES)
    with pytest.raises(ValueError):
        live_fleet(0)


def test_schedule_cycles_the_kinds_on_suitable_sensors() -> None:
    fleet = live_fleet(15)
    types = {s.sensor_id: s.type for s in fleet}
    schedule = fault_schedule(fleet, 600, first_at_s=20, every_s=60, duration_s=30)
    assert [f.start_s for f in schedule] == [20 + 60 * i for i in range(10)]
    assert [f.kind for f in schedule[:4]] == list(LIVE_FAULT_KINDS)
    assert [f.kind for f in schedule[4:8]] == list(LIVE_FAULT_KINDS)
    for f in schedule:
        assert types[f.sensor_id] in FAULT_TYPES[f.kind]
        assert f.duration_s == 30
    assert schedule[0].sensor_id != schedule[4].sensor_id  # the next sensor of the type the second time
    # faults never overlap
    assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(schedule))
    assert fault_schedule(fleet, 10, first_at_s=20) == []


def test_schedule_skips_kinds_without_a_suitable_sensor() -> None:
    only_temperature = [s for s in live_fleet(15) if s.type == "temperature"]
    assert {f.kind for f in fault_schedule(only_temperature, 1000)} == {"drift"}


def test_fault_shapes() -> None:
    drift = LiveFault("s", "drift", 10, 20, 40.0)
    assert fault_effect(drift, 5, 50.0, 0.0, 0) == 50.0
    assert fault_effect(drift, 10, 50.0, 0.0, 0) == 50.0
    assert fault_effect(drift, 20, 50.0, 0.0, 0) == pytest.approx(70.0)
    assert fault_effect(drift, 30, 50.0, 0.0, 0) == 50.0  # over
    spike = LiveFault("s", "spike", 0, 10, 35.0)
    values = [fault_effect(spike, 1, 230.0, 0.0, i) for i in range(4 * SPIKE_EVERY)]
    assert values.count(230.0) == 4 * SPIKE_EVERY - 4
    assert sorted(v for v in values if v != 230.0) == [195.0, 195.0, 265.0, 265.0]
    vib = LiveFault("s", "vibration", 0, 10, 8.0)
    grown = [fault_effect(vib, t, 2.0, 0.0, 0) - 2.0 for t in (0, 2.5, 5, 7.5, 9.99)]
    assert grown == sorted(grown) and grown[0] == 0 and grown[-1] == pytest.approx(8.0, abs=0.05)
    assert grown[2] < 8.0 / 2  # accelerating growth


def test_physics_stays_in_range_and_stuck_holds() -> None:
    fleet = live_fleet(15)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    for n, spec in enumerate(fleet, start=1):
        sensor = LiveSensor(spec, n, 42)
        p = PROFILES[spec.type]
        values = [sensor.next_value(t0 + timedelta(seconds=i), i) for i in range(500)]
        assert all(p.low <= v <= p.high for v in values), spec.sensor_id
        assert statistics.pstdev(values) > 0
    humid = next(s for s in fleet if s.type == "humidity")
    stuck = LiveFault(humid.sensor_id, "stuck", 5, 5, 0.0)
    sensor = LiveSensor(humid, 5, 42, [stuck])
    values = [sensor.next_value(t0 + timedelta(seconds=i), float(i)) for i in range(15)]
    assert len(set(values[5:10])) == 1 and values[5] == values[4]
    assert len(set(values[10:])) > 1


def test_drift_crosses_the_default_temperature_rule() -> None:
    spec = live_fleet(1)[0]
    fault = LiveFault(spec.sensor_id, "drift", 0, 10, 40.0)
    sensor = LiveSensor(spec, 1, 42, [fault])
    t0 = datetime(2026, 11, 1, 15, tzinfo=UTC)
    values = [sensor.next_value(t0, t / 10) for t in range(100)]
    assert max(values[-10:]) > 85.0


def test_due_readings_follow_the_rate() -> None:
    assert due_count(-1, 0.5) == 0
    assert due_count(0, 0.5) == 1
    assert due_count(2.0, 0.5) == 5
    sim = LiveSimulator("http://x", "k", live_fleet(10), rate=100.0)
    first = sim.due(0.0)
    assert len(first) == 10
    batch = sim.due(1.0)
    assert len(batch) == 100  # 100/s over 10 sensors: 10 each in the next second
    assert sim.due(1.0) == []  # nothing twice
    stamps = [(r["sensor_id"], r["timestamp"]) for r in first + batch]
    assert len(set(stamps)) == len(stamps)


def test_backoff_grows_and_caps() -> None:
    assert [backoff_s(a) for a in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_s(20) == 10.0


def test_live_sensors_continue_the_seeded_sensors_levels() -> None:
    """The live stream of a demo sensor has the seeded history's baseline, daily amplitude and peak (same seed):
    over the seeded timestamps the healthy medians agree to well within a sensor-to-sensor baseline spread."""
    from datetime import UTC, datetime

    import numpy as np

    from core.simulation.catalogue import DEMO_SENSORS, PROFILES
    from core.simulation.generator import generate_demo_fleet
    from core.simulation.live import LiveSensor

    fleet = generate_demo_fleet(datetime(2026, 11, 26, 12, tzinfo=UTC), seed=42)
    faulty = {f.sensor_id for f in fleet.faults}
    for number, spec in enumerate(DEMO_SENSORS, start=1):
        if spec.sensor_id in faulty:
            continue
        seeded = fleet.readings[fleet.readings["sensor_id"] == spec.sensor_id]
        live = LiveSensor(spec, number, 42)
        values = [live.next_value(ts.to_pydatetime(), 0.0) for ts in seeded["timestamp"]]
        profile = PROFILES[spec.type]
        gap = abs(float(np.median(values)) - float(seeded["value"].median()))
        assert gap < max(2 * profile.noise_sd, 0.2 * profile.baseline_spread), (spec.sensor_id, gap)
