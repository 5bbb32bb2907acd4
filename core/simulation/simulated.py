"""Simulated time: the live demo fleet and its fault schedule over ``[start, start + span]``, decoupled from the
wall clock, so that a caller can send a day of readings as fast as the platform takes them.

Physics and faults are the live simulator's (:mod:`core.simulation.live`): each sensor is a
:class:`~core.simulation.live.LiveSensor` — the seeded sensor's baseline, daily amplitude and peak hour drawn from
the seed's generator stream (``default_rng([seed, number])``, as :mod:`core.simulation.generator`), so the
simulated readings continue the level of a history seeded with the same seed — and the faults are
:func:`~core.simulation.live_faults.fault_schedule`'s four live kinds (drift, spike, stuck, vibration) with their
magnitudes. Only the time axis differs: instead of ``now``, reading ``k`` (k = 1, 2, …) of every sensor is
stamped ``start + k · cadence``, and a fault's ``start_s``/``end_s`` are simulated seconds after ``start``.
A history seeded with ``end = start`` (``seed_demo_fleet(end=start)``, ``python -m apps.cli seed --end START``)
is therefore followed without a gap or an overlap.

The default schedule (:class:`FaultTiming`, used by ``make bench-alerts``): one fault every 90 min, the first
after 1 h, each lasting 30 min, the kinds in turn, each on the next sensor of a suitable type — 15 faults in 24 h,
at least 3 per kind, never two at once. At the default cadence (one reading every 10 s per sensor) a fault spans
180 readings, so the shipped rules (k of the last n readings, 30-min hold times) act as in a plant.

Everything is deterministic: the same start, span, cadence, seed and schedule give the same readings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.simulation.catalogue import DEMO_SENSORS, SensorSpec
from core.simulation.live import IngestItem, LiveSensor
from core.simulation.live_faults import FAULT_TYPES, LiveFault, fault_schedule

DEFAULT_CADENCE_S = 10.0
DEFAULT_SEED = 42


@dataclass(frozen=True, slots=True)
class FaultTiming:
    """When faults happen, in simulated seconds after the start."""

    first_at_s: float = 3600.0
    every_s: float = 5400.0
    duration_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.first_at_s < 0 or self.every_s <= 0 or self.duration_s <= 0:
            raise ValueError("first_at_s must be >= 0, every_s and duration_s > 0")
        if self.duration_s > self.every_s:
            raise ValueError("a fault must end before the next one starts (duration_s <= every_s)")


def simulated_schedule(
    sensors: Sequence[SensorSpec],
    span_s: float,
    timing: FaultTiming = FaultTiming(),
    *,
    kinds: Sequence[str] | None = None,
    margin_s: float = 0.0,
) -> list[LiveFault]:
    """The live fault schedule over a simulated span: every fault that ends at least ``margin_s`` before the
    span's end (``margin_s``: e.g. the grace a benchmark waits after a fault). ``kinds`` restricts it to some
    kinds (in the live order); the faults then fall on the sensors of the types those kinds suit."""
    if kinds is not None:
        unknown = sorted(set(kinds) - set(FAULT_TYPES))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {sorted(FAULT_TYPES)}")
        types = {t for k in kinds for t in FAULT_TYPES[k]}
        sensors = [s for s in sensors if s.type in types]
    horizon = span_s - timing.duration_s - margin_s + 1e-9
    return fault_schedule(
        sensors, horizon, first_at_s=timing.first_at_s, every_s=timing.every_s, duration_s=timing.duration_s
    )


def demo_numbers(sensors: Sequence[SensorSpec]) -> list[int]:
    """The generator-stream number of each sensor: its position in the demo catalogue (1-based) for a demo
    sensor, else its position in ``sensors`` — as the live simulator numbers them."""
    catalogue = {s.sensor_id: n for n, s in enumerate(DEMO_SENSORS, start=1)}
    return [catalogue.get(s.sensor_id, n) for n, s in enumerate(sensors, start=1)]


class SimulatedFleet:
    """The fleet's readings in simulated time, generated in time order on demand."""

    def __init__(
        self,
        sensors: Sequence[SensorSpec],
        start: datetime,
        span_s: float,
        *,
        cadence_s: float = DEFAULT_CADENCE_S,
        seed: int = DEFAULT_SEED,
        faults: Sequence[LiveFault] = (),
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        if cadence_s <= 0 or span_s < cadence_s:
            raise ValueError("the cadence must be positive and the span at least one cadence")
        self.specs = tuple(sensors)
        self.start = start
        self.span_s = float(span_s)
        self.cadence_s = float(cadence_s)
        self.seed = seed
        self.faults = tuple(faults)
        self.steps = math.floor(self.span_s / self.cadence_s + 1e-9)
        """Readings per sensor: reading k (1…steps) at ``start + k · cadence``."""
        self._sensors = [
            LiveSensor(spec, number, seed, self.faults)
            for spec, number in zip(self.specs, demo_numbers(self.specs), strict=True)
        ]
        self._done = 0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.span_s)

    @property
    def generated(self) -> int:
        """Readings generated so far per sensor (the last one at ``at(generated)``)."""
        return self._done

    def at(self, k: int) -> datetime:
        return self.start + timedelta(seconds=k * self.cadence_s)

    def step_of(self, moment: datetime) -> int:
        """The last reading number at or before ``moment`` (0: before the first reading), at most ``steps``."""
        elapsed = (moment - self.start).total_seconds()
        return max(0, min(self.steps, math.floor(elapsed / self.cadence_s + 1e-9)))

    def readings_until(self, moment: datetime) -> list[IngestItem]:
        """The readings not generated yet up to ``moment`` (inclusive), in time order (sensors in fleet order
        within one instant), as ingest items."""
        target = self.step_of(moment)
        out: list[IngestItem] = []
        for k in range(self._done + 1, target + 1):
            when = self.at(k)
            stamp = when.isoformat()
            elapsed = k * self.cadence_s
            for sensor in self._sensors:
                value = sensor.next_value(when, elapsed)
                out.append({"sensor_id": sensor.spec.sensor_id, "timestamp": stamp, "value": value,
                            "unit": sensor.spec.unit, "quality": 1.0})  # fmt: skip
        self._done = max(self._done, target)
        return out

    def batches(self, batch_s: float, until: datetime | None = None) -> Iterator[list[IngestItem]]:
        """The rest of the readings up to ``until`` (default: the end) in batches of ``batch_s`` simulated
        seconds (the last one may be shorter; empty batches are skipped)."""
        if batch_s <= 0:
            raise ValueError("batch_s must be positive")
        stop = self.step_of(until) if until is not None else self.steps
        per_batch = max(1, math.floor(batch_s / self.cadence_s + 1e-9))
        while self._done < stop:
            k = min(stop, self._done + per_batch)
            batch = self.readings_until(self.at(k))
            if batch:
                yield batch


def fault_window(fault: LiveFault, start: datetime) -> tuple[datetime, datetime]:
    """A fault's window in event time ``[first faulty instant, end)``."""
    return start + timedelta(seconds=fault.start_s), start + timedelta(seconds=fault.end_s)


__all__ = [
    "DEFAULT_CADENCE_S",
    "DEFAULT_SEED",
    "FaultTiming",
    "SimulatedFleet",
    "demo_numbers",
    "fault_window",
    "simulated_schedule",
]
