"""Simulated time (``core.simulation.simulated``): timestamps and cadence, the fault schedule in simulated
seconds, the faults' effects on the readings, determinism, and continuity with a history seeded up to the start."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from core.simulation.catalogue import DEMO_SENSORS, PROFILES
from core.simulation.generator import generate_demo_fleet
from core.simulation.live_faults import FAULT_MAGNITUDE, FAULT_TYPES, LIVE_FAULT_KINDS, SPIKE_EVERY, LiveFault
from core.simulation.simulated import (
    FaultTiming,
    SimulatedFleet,
    demo_numbers,
    fault_window,
    simulated_schedule,
)

START = datetime(2026, 11, 30, tzinfo=UTC)
DAY = 24 * 3600.0


def values_of(readings: list[dict], sensor_id: str) -> list[float]:
    return [r["value"] for r in readings if r["sensor_id"] == sensor_id]


def test_readings_follow_the_cadence_from_the_start() -> None:
    fleet = SimulatedFleet(DEMO_SENSORS, START, 3600.0, cadence_s=10.0)
    assert fleet.steps == 360 and fleet.end == START + timedelta(hours=1)
    readings = fleet.readings_until(fleet.end)
    assert len(readings) == 360 * 15
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in readings]
    assert stamps == sorted(stamps)
    assert stamps[0] == START + timedelta(seconds=10) and stamps[-1] == START + timedelta(hours=1)
    for spec in DEMO_SENSORS:
        own = [datetime.fromisoformat(r["timestamp"]) for r in readings if r["sensor_id"] == spec.sensor_id]
        assert len(own) == 360 and {b - a for a, b in itertools.pairwise(own)} == {timedelta(seconds=10)}
    assert {(r["unit"], r["quality"]) for r in readings if r["sensor_id"] == "sensor-002"} == {("mm/s", 1.0)}
    assert fleet.readings_until(fleet.end) == []  # nothing twice


def test_batches_cut_the_span_in_time_order_and_stop_at_until() -> None:
    whole = SimulatedFleet(DEMO_SENSORS, START, 3600.0).readings_until(START + timedelta(hours=1))
    fleet = SimulatedFleet(DEMO_SENSORS, START, 3600.0)
    first = list(fleet.batches(300.0, until=START + timedelta(minutes=20)))
    assert [len(b) for b in first] == [30 * 15] * 4
    assert fleet.generated == 120
    rest = list(fleet.batches(300.0))
    assert len(rest) == 8 and sum(len(b) for b in first + rest) == len(whole)
    assert [r for b in first + rest for r in b] == whole  # the same readings however they are cut
    short = SimulatedFleet(DEMO_SENSORS[:1], START, 95.0, cadence_s=10.0)
    assert [len(b) for b in short.batches(40.0)] == [4, 4, 1]  # the last batch is shorter


def test_the_same_inputs_give_the_same_readings() -> None:
    faults = simulated_schedule(DEMO_SENSORS, 6 * 3600.0)
    a = SimulatedFleet(DEMO_SENSORS, START, 6 * 3600.0, faults=faults).readings_until(
        START + timedelta(hours=6)
    )
    b = SimulatedFleet(DEMO_SENSORS, START, 6 * 3600.0, faults=faults).readings_until(
        START + timedelta(hours=6)
    )
    other = SimulatedFleet(DEMO_SENSORS, START, 6 * 3600.0, faults=faults, seed=7)
    assert a == b
    assert a != other.readings_until(START + timedelta(hours=6))


def test_the_default_schedule_over_a_day() -> None:
    faults = simulated_schedule(DEMO_SENSORS, DAY, FaultTiming(), margin_s=1200.0)
    assert [f.start_s for f in faults] == [3600.0 + n * 5400.0 for n in range(15)]
    assert all(f.duration_s == 1800.0 for f in faults)
    assert all(f.end_s + 1200.0 <= DAY for f in faults)
    assert [f.kind for f in faults[:5]] == [*LIVE_FAULT_KINDS, "drift"]
    assert Counter(f.kind for f in faults) == {"drift": 4, "spike": 4, "stuck": 4, "vibration": 3}
    types = {s.sensor_id: s.type for s in DEMO_SENSORS}
    assert all(types[f.sensor_id] in FAULT_TYPES[f.kind] for f in faults)
    assert all(f.magnitude == FAULT_MAGNITUDE[f.kind] for f in faults)
    assert [f.sensor_id for f in faults if f.kind == "drift"] == [
        "sensor-001",
        "sensor-007",
        "sensor-013",
        "sensor-001",
    ]
    # never two at once
    assert all(b.start_s >= a.end_s for a, b in itertools.pairwise(faults))


def test_schedule_options() -> None:
    spikes = simulated_schedule(DEMO_SENSORS, 4 * 3600.0, FaultTiming(1800.0, 3600.0, 600.0), kinds=["spike"])
    assert [(f.sensor_id, f.kind, f.start_s) for f in spikes] == [
        ("sensor-006", "spike", 1800.0), ("sensor-009", "spike", 5400.0), ("sensor-015", "spike", 9000.0),
        ("sensor-006", "spike", 12600.0),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown fault kinds"):
        simulated_schedule(DEMO_SENSORS, DAY, kinds=["melt"])
    with pytest.raises(ValueError):
        FaultTiming(0.0, 60.0, 120.0)  # longer than the spacing: two faults at once
    assert fault_window(spikes[0], START) == (START + timedelta(minutes=30), START + timedelta(minutes=40))


def _pair(fault: LiveFault, span_s: float = 7200.0) -> tuple[list[dict], list[dict]]:
    """The span with and without the fault (the noise streams are the same)."""
    with_fault = SimulatedFleet(DEMO_SENSORS, START, span_s, faults=[fault]).readings_until(
        START + timedelta(seconds=span_s)
    )
    healthy = SimulatedFleet(DEMO_SENSORS, START, span_s).readings_until(START + timedelta(seconds=span_s))
    return with_fault, healthy


def test_fault_effects_lie_inside_their_window() -> None:
    drift = LiveFault("sensor-001", "drift", 1800.0, 1800.0, 40.0)
    faulty, healthy = _pair(drift)
    diff = [
        a - b for a, b in zip(values_of(faulty, "sensor-001"), values_of(healthy, "sensor-001"), strict=True)
    ]
    # reading k at k·10 s: the window holds readings 180…359
    assert all(d == 0 for d in diff[:179]) and all(d == 0 for d in diff[359:])
    assert diff[179] == pytest.approx(0.0, abs=0.011)
    assert diff[358] == pytest.approx(40.0 * 179 / 180, abs=0.011)
    assert all(b >= a - 0.02 for a, b in itertools.pairwise(diff[179:359]))  # a ramp
    others = [r for r in faulty if r["sensor_id"] != "sensor-001"]
    assert others == [r for r in healthy if r["sensor_id"] != "sensor-001"]

    spike = LiveFault("sensor-006", "spike", 1800.0, 600.0, 35.0)
    faulty, healthy = _pair(spike)
    diff = [
        a - b for a, b in zip(values_of(faulty, "sensor-006"), values_of(healthy, "sensor-006"), strict=True)
    ]
    hits = [i for i, d in enumerate(diff) if d]
    assert len(hits) == 60 // SPIKE_EVERY and all(179 <= i < 239 for i in hits)
    assert sorted({round(abs(diff[i]), 1) for i in hits}) == [35.0]

    stuck = LiveFault("sensor-005", "stuck", 1800.0, 1800.0, 0.0)
    faulty, healthy = _pair(stuck)
    values = values_of(faulty, "sensor-005")
    assert len(set(values[179:359])) == 1 and values[179] == values_of(healthy, "sensor-005")[178]
    assert values[359:] == values_of(healthy, "sensor-005")[359:]

    vibration = LiveFault("sensor-002", "vibration", 1800.0, 1800.0, 8.0)
    faulty, healthy = _pair(vibration)
    diff = [
        a - b for a, b in zip(values_of(faulty, "sensor-002"), values_of(healthy, "sensor-002"), strict=True)
    ]
    assert all(d == 0 for d in diff[:179]) and all(d == 0 for d in diff[359:])
    assert statistics.mean(diff[179:239]) < 1.0  # quadratic growth: slow at first
    assert statistics.mean(diff[339:359]) > 6.0
    assert max(values_of(faulty, "sensor-002")[339:359]) > 7.1  # crosses ISO 10816 zone D


def test_simulated_readings_continue_the_seeded_history() -> None:
    """A history seeded up to the start is followed without gap or overlap, at the seeded sensors' levels."""
    seeded = generate_demo_fleet(START, seed=42)
    assert seeded.end == START
    fleet = SimulatedFleet(DEMO_SENSORS, START, DAY, seed=42)
    readings = fleet.readings_until(fleet.end)
    assert datetime.fromisoformat(readings[0]["timestamp"]) == START + timedelta(seconds=10)
    faulty = {f.sensor_id for f in seeded.faults}
    for spec in DEMO_SENSORS:
        if spec.sensor_id in faulty:
            continue
        history = seeded.readings[seeded.readings["sensor_id"] == spec.sensor_id]["value"]
        profile = PROFILES[spec.type]
        gap = abs(statistics.median(values_of(readings, spec.sensor_id)) - float(history.median()))
        assert gap < max(2 * profile.noise_sd, 0.2 * profile.baseline_spread), (spec.sensor_id, gap)


def test_sensors_keep_their_catalogue_stream() -> None:
    assert demo_numbers(DEMO_SENSORS) == list(range(1, 16))
    assert demo_numbers([DEMO_SENSORS[4], DEMO_SENSORS[0]]) == [5, 1]
    alone = SimulatedFleet([DEMO_SENSORS[4]], START, 600.0).readings_until(START + timedelta(minutes=10))
    fleet = SimulatedFleet(DEMO_SENSORS, START, 600.0).readings_until(START + timedelta(minutes=10))
    assert values_of(alone, "sensor-005") == values_of(fleet, "sensor-005")


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        SimulatedFleet(DEMO_SENSORS, START.replace(tzinfo=None), 3600.0)
    with pytest.raises(ValueError):
        SimulatedFleet(DEMO_SENSORS, START, 5.0, cadence_s=10.0)
    with pytest.raises(ValueError):
        list(SimulatedFleet(DEMO_SENSORS, START, 60.0).batches(0.0))
