"""The live simulator's faults: which kinds exist, the sensors they suit, their schedule and their effect.

Faults (``--faults``), one at a time, on a fixed schedule (:func:`fault_schedule`): every ``every_s`` seconds
(first after ``first_at_s``) the next kind of :data:`LIVE_FAULT_KINDS` starts on the next sensor of a type it
suits, lasts ``duration_s`` and then the sensor is healthy again. Magnitudes are chosen to cross the default
alert rules (temperature > 85 °C, vibration > 7.1 mm/s, voltage outside 207–253 V):

=========  ============  ===================================================================================
kind       sensor types  effect
=========  ============  ===================================================================================
drift      temperature   linear ramp from 0 to ``magnitude`` (+40 °C) over the window (lubrication loss)
spike      voltage       every 5th reading of the window offset by ``magnitude`` (+35 V), sign alternating
stuck      humidity,     flat line at the last healthy value (the device does not know it is stuck)
           pressure
vibration  vibration     growing vibration: level + noise grow quadratically to ``magnitude`` (+8 mm/s)
=========  ============  ===================================================================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.simulation.catalogue import SensorSpec

LIVE_FAULT_KINDS: tuple[str, ...] = ("drift", "spike", "stuck", "vibration")
FAULT_TYPES: dict[str, tuple[str, ...]] = {
    "drift": ("temperature",),
    "spike": ("voltage",),
    "stuck": ("humidity", "pressure"),
    "vibration": ("vibration",),
}
FAULT_MAGNITUDE: dict[str, float] = {"drift": 40.0, "spike": 35.0, "stuck": 0.0, "vibration": 8.0}
SPIKE_EVERY = 5


@dataclass(frozen=True, slots=True)
class LiveFault:
    """One scheduled fault, in seconds since the simulator's start."""

    sensor_id: str
    kind: str
    start_s: float
    duration_s: float
    magnitude: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def active(self, elapsed: float) -> bool:
        return self.start_s <= elapsed < self.end_s

    def describe(self, t0: datetime | None = None) -> str:
        when = f"+{self.start_s:.0f}s"
        if t0 is not None:
            when += f" ({(t0 + timedelta(seconds=self.start_s)):%H:%M:%S} UTC)"
        mag = "" if self.kind == "stuck" else f", magnitude {self.magnitude:+g}"
        return f"{when} {self.kind} on {self.sensor_id} for {self.duration_s:.0f}s{mag}"


def fault_schedule(
    sensors: Sequence[SensorSpec],
    horizon_s: float,
    *,
    first_at_s: float = 20.0,
    every_s: float = 60.0,
    duration_s: float = 30.0,
) -> list[LiveFault]:
    """The faults that start before ``horizon_s``: kinds in turn, each on the next sensor of a suitable type
    (kinds with no suitable sensor are skipped)."""
    if every_s <= 0 or duration_s <= 0:
        raise ValueError("every_s and duration_s must be positive")
    candidates = {
        kind: [s.sensor_id for s in sensors if s.type in types] for kind, types in FAULT_TYPES.items()
    }
    kinds = [k for k in LIVE_FAULT_KINDS if candidates[k]]
    if not kinds:
        return []
    used: Counter[str] = Counter()
    out: list[LiveFault] = []
    n = 0
    while (start := first_at_s + n * every_s) < horizon_s:
        kind = kinds[n % len(kinds)]
        pool = candidates[kind]
        sensor_id = pool[used[kind] % len(pool)]
        used[kind] += 1
        out.append(LiveFault(sensor_id, kind, start, min(duration_s, every_s), FAULT_MAGNITUDE[kind]))
        n += 1
    return out


def fault_effect(fault: LiveFault, elapsed: float, value: float, noise: float, index: int) -> float:
    """``value`` (healthy, ``noise`` its AR(1) part) under ``fault`` at ``elapsed`` seconds; reading ``index``
    of the sensor (spikes hit every :data:`SPIKE_EVERY`-th). ``stuck`` is handled by the caller (it holds)."""
    if not fault.active(elapsed):
        return value
    progress = (elapsed - fault.start_s) / fault.duration_s
    if fault.kind == "drift":
        return value + fault.magnitude * progress
    if fault.kind == "spike":
        if index % SPIKE_EVERY:
            return value
        return value + (fault.magnitude if (index // SPIKE_EVERY) % 2 == 0 else -fault.magnitude)
    if fault.kind == "vibration":
        growth = progress * progress
        return value + fault.magnitude * growth + 4.0 * growth * noise
    return value


__all__ = [
    "FAULT_MAGNITUDE",
    "FAULT_TYPES",
    "LIVE_FAULT_KINDS",
    "SPIKE_EVERY",
    "LiveFault",
    "fault_effect",
    "fault_schedule",
]
