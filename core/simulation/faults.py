"""Injected faults with ground truth.

Every fault is applied to one sensor's series and described by a :class:`FaultSpec` that becomes an
``injected_faults`` row. Windows are placed at fixed fractions of the *nominal* series (the last
``readings_per_sensor`` slots before ``end``), so they scale with ``readings_per_sensor`` (numbers below are for
the default 600 readings = 50 h at 5 min, as slot indices of that nominal series):

========  ===========  ============================  ==========================================================
kind      sensor       window                        effect and ``magnitude``
========  ===========  ============================  ==========================================================
drift     sensor-001   readings 450–599 (12.5 h)     linear ramp from 0 to ``magnitude`` (+12 °C) at the end:
                                                     bearing temperature rising (lubrication degradation)
variance  sensor-008   readings 330–449 (10 h)       noise standard deviation × ``magnitude`` (4): looseness
step      sensor-010   readings 360–455 (8 h)        level shift of ``magnitude`` (−1.8 bar): seal leak
stuck     sensor-012   readings 240–311 (6 h)        flat line; ``magnitude`` is the held value (last good one)
spike     sensor-006   readings 120, 300 and 510     one record per spike; single-point offset of
                                                     ``magnitude`` (+28 V, −35 V, +25 V): supply transients
dropout   sensor-011   readings 180–215 (3 h)        readings missing; ``magnitude`` is the number missing (36)
========  ===========  ============================  ==========================================================

``started_at``/``ended_at`` are the timestamps of the first and last affected slot (inclusive; equal for a spike).
For a dropout both name slots that have no reading.

Every sensor still has ``readings_per_sensor`` readings: a sensor with dropouts gets a longer series that starts
:func:`dropout_slots` slots earlier (sensor-011: 636 slots = 53 h, 36 of them empty), and its fault windows keep
their place in time (``offset`` of :func:`apply_faults`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

FAULT_KINDS: tuple[str, ...] = ("spike", "step", "drift", "variance", "stuck", "dropout")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Ground truth of one injected fault (one ``injected_faults`` row)."""

    sensor_id: str
    kind: str
    started_at: datetime
    ended_at: datetime
    magnitude: float
    description: str


@dataclass(frozen=True, slots=True)
class PlannedFault:
    """A fault in index space: ``start`` and ``length`` as fractions of the series length."""

    sensor_id: str
    kind: str
    start: float
    length: float
    magnitude: float | None
    description: str

    def window(self, n: int) -> tuple[int, int]:
        """Inclusive index window ``(first, last)`` for a series of ``n`` readings."""
        first = min(n - 1, round(self.start * n))
        length = max(1, round(self.length * n))
        return first, min(n - 1, first + length - 1)


#: The demo fault plan (see the module docstring). Spikes have ``length`` 0 (a single reading).
FAULT_PLAN: tuple[PlannedFault, ...] = (
    PlannedFault(
        "sensor-001",
        "drift",
        0.75,
        0.25,
        12.0,
        "Bearing temperature rising (lubrication degradation): linear ramp to {m:+g} °C",
    ),
    PlannedFault(
        "sensor-008",
        "variance",
        0.55,
        0.20,
        4.0,
        "Mechanical looseness: vibration noise standard deviation ×{m:g}",
    ),
    PlannedFault(
        "sensor-010", "step", 0.60, 0.16, -1.8, "Seal leak: discharge pressure level shift of {m:+g} bar"
    ),
    PlannedFault(
        "sensor-012", "stuck", 0.40, 0.12, None, "Sensor stuck: flat line at the last good value {m:g} %RH"
    ),
    PlannedFault(
        "sensor-006", "spike", 0.20, 0.0, 28.0, "Supply transient: single-reading spike of {m:+g} V"
    ),
    PlannedFault("sensor-006", "spike", 0.50, 0.0, -35.0, "Supply transient: single-reading sag of {m:+g} V"),
    PlannedFault(
        "sensor-006", "spike", 0.85, 0.0, 25.0, "Supply transient: single-reading spike of {m:+g} V"
    ),
    PlannedFault("sensor-011", "dropout", 0.30, 0.06, None, "Communication loss: {m:g} readings missing"),
)


def dropout_slots(sensor_id: str, n: int, plan: Sequence[PlannedFault] = FAULT_PLAN) -> int:
    """Slots the plan's dropouts of ``sensor_id`` leave empty in a nominal series of ``n`` readings."""
    empty: set[int] = set()
    for planned in plan:
        if planned.sensor_id == sensor_id and planned.kind == "dropout":
            first, last = planned.window(n)
            empty.update(range(first, last + 1))
    return len(empty)


def apply_faults(
    sensor_id: str,
    timestamps: Sequence[datetime],
    value: np.ndarray,
    noise: np.ndarray,
    quality: np.ndarray,
    keep: np.ndarray,
    decimals: int,
    plan: Sequence[PlannedFault] = FAULT_PLAN,
    *,
    offset: int = 0,
) -> list[FaultSpec]:
    """Apply the plan's faults for ``sensor_id`` in place; return their ground-truth records.

    ``value`` already holds cycle + AR(1) ``noise``; ``keep`` marks readings that exist (dropouts clear it).
    Stuck values are rounded to ``decimals`` so the held value is exactly what is stored. The series may start
    ``offset`` slots before the nominal one (see :func:`dropout_slots`): windows are placed on its last
    ``len(value) - offset`` slots.
    """
    if not 0 <= offset < len(value):
        raise ValueError("offset must be at least 0 and less than the series length")
    n = len(value) - offset
    faults: list[FaultSpec] = []
    for planned in plan:
        if planned.sensor_id != sensor_id:
            continue
        first, last = (offset + i for i in planned.window(n))
        sl = slice(first, last + 1)
        magnitude = planned.magnitude
        if planned.kind == "drift":
            assert magnitude is not None
            value[sl] += np.linspace(0.0, magnitude, last - first + 1)
        elif planned.kind == "variance":
            assert magnitude is not None
            value[sl] += (magnitude - 1.0) * noise[sl]
        elif planned.kind in ("step", "spike"):
            assert magnitude is not None
            value[sl] += magnitude
        elif planned.kind == "stuck":
            held = round(float(value[first - 1]) if first > 0 else float(value[first]), decimals)
            value[sl] = held
            quality[sl] = 1.0  # the device does not know it is stuck
            magnitude = held
        elif planned.kind == "dropout":
            keep[sl] = False
            magnitude = float(last - first + 1)
        else:  # pragma: no cover - the plan is static
            raise ValueError(f"unknown fault kind {planned.kind!r}")
        faults.append(
            FaultSpec(
                sensor_id=sensor_id,
                kind=planned.kind,
                started_at=timestamps[first],
                ended_at=timestamps[last],
                magnitude=float(magnitude),
                description=planned.description.format(m=magnitude),
            )
        )
    return faults
