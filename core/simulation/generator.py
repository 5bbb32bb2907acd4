"""Demo-fleet generator: 15 sensors on 5 machines, realistic per-type physics and injected faults.

A pure function: :func:`generate_demo_fleet` returns the asset/sensor catalogue, the readings (a pandas
DataFrame) and the fault ground truth. It touches no database and no clock when ``end`` is given; the same
``end``, ``seed``, ``readings_per_sensor`` and ``interval`` always give the same output.

Time axis
    Every sensor has ``readings_per_sensor`` readings at ``interval`` spacing, the last one at ``end`` (default:
    now, rounded down to the interval). 600 × 5 min = 50 h, a little over two daily cycles. A sensor with an
    injected dropout starts earlier by the length of its gap, so it has the same number of readings and the gap
    stays real: sensor-011 spans 636 slots (53 h) with 36 of them empty. Hours of day are UTC.

Physics (healthy behaviour; ``core.simulation.catalogue`` holds the numbers, ``docs/data/demo_fleet.md``
explains them)
    ``value = baseline + amplitude · cos(2π (hour − peak_hour) / 24) + AR(1) noise``

    ============  =====  =============  ========  =========  ========  ====================================
    type          unit   baseline       daily ±   peak (h)   noise σ   operating range, driver
    ============  =====  =============  ========  =========  ========  ====================================
    temperature   °C     55 ± 3         5         15         0.8       40–75: bearing/motor, load + ambient
    vibration     mm/s   2.2 ± 0.3      0.35      14         0.12      0.5–4.5: ISO 10816 class II, healthy
    pressure      bar    6.0 ± 0.4      0.5       3          0.08      4–8: line pressure, high at low demand
    humidity      %RH    50 ± 4         6         5          1.2       30–70: ambient, high before dawn
    voltage       V      230 ± 1.5      2.5       4          0.6       230 ± 5 %: mains, sags under load
    ============  =====  =============  ========  =========  ========  ====================================

    The noise is autocorrelated: ``e[t] = φ e[t−1] + √(1−φ²) σ ε[t]`` (φ = 0.9, 0.7, 0.8, 0.95, 0.5 in table
    order), started from its stationary distribution. About 2 % of readings are *noisy*: their ``quality`` is
    drawn from 0.55–0.9 and they carry extra white noise of standard deviation ``2 (1 − quality) σ``; every
    other reading has quality 1.0. Values are rounded to the sensor's resolution (0.01 °C, 0.001 mm/s,
    0.001 bar, 0.1 %RH, 0.1 V).

Faults
    See :mod:`core.simulation.faults`: drift, variance, step, stuck, spike and dropout, at least one per
    sensor type; each comes with a :class:`~core.simulation.faults.FaultSpec` record.

Random streams
    Each sensor uses its own generator seeded with ``(seed, sensor number)``, so sensors are independent and
    adding a sensor to the catalogue does not change the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from core.simulation.catalogue import DEMO_ASSETS, DEMO_SENSORS, PROFILES, AssetSpec, SensorSpec
from core.simulation.faults import FAULT_PLAN, FaultSpec, PlannedFault, apply_faults, dropout_slots

DEFAULT_READINGS_PER_SENSOR = 600
DEFAULT_INTERVAL = timedelta(minutes=5)
DEFAULT_SEED = 42
NOISY_FRACTION = 0.02
MIN_READINGS_PER_SENSOR = 50

#: Columns of :attr:`DemoFleet.readings`, in order.
READING_COLUMNS: tuple[str, ...] = ("timestamp", "sensor_id", "sensor_type", "value", "unit", "quality")


@dataclass(frozen=True)
class DemoFleet:
    """Output of :func:`generate_demo_fleet`.

    ``readings`` has the columns :data:`READING_COLUMNS`: ``timestamp`` is timezone-aware UTC, rows are sorted
    by sensor then time, every sensor has ``readings_per_sensor`` rows, and dropout slots are absent.
    """

    assets: tuple[AssetSpec, ...]
    sensors: tuple[SensorSpec, ...]
    readings: pd.DataFrame
    faults: tuple[FaultSpec, ...]
    timeline: tuple[datetime, ...]
    """All slots of the fleet, including those a dropout leaves empty: from the first slot of the longest series
    (a sensor with a dropout starts earlier) to ``end``."""

    @property
    def end(self) -> datetime:
        return self.timeline[-1]


def floor_time(moment: datetime, interval: timedelta = DEFAULT_INTERVAL) -> datetime:
    """``moment`` in UTC rounded down to a multiple of ``interval`` since the Unix epoch."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    step = interval // timedelta(microseconds=1)
    elapsed = (moment.astimezone(UTC) - epoch) // timedelta(microseconds=1)
    return epoch + timedelta(microseconds=elapsed - elapsed % step)


def build_timeline(end: datetime, readings_per_sensor: int, interval: timedelta) -> tuple[datetime, ...]:
    """``readings_per_sensor`` slots ``interval`` apart, the last one at ``end`` (kept exactly as given)."""
    end = end.astimezone(UTC)
    return tuple(end - (readings_per_sensor - 1 - i) * interval for i in range(readings_per_sensor))


def _hours_of_day(timeline: tuple[datetime, ...]) -> np.ndarray:
    return np.array([t.hour + t.minute / 60 + t.second / 3600 for t in timeline])


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """AR(1) noise with stationary standard deviation ``sd``, started from the stationary distribution."""
    eps = rng.standard_normal(n)
    out = np.empty(n)
    out[0] = sd * eps[0]
    innovation = sd * math.sqrt(1.0 - phi * phi)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + innovation * eps[i]
    return out


def _sensor_series(
    sensor: SensorSpec,
    number: int,
    seed: int,
    timeline: tuple[datetime, ...],
    hours: np.ndarray,
    plan: tuple[PlannedFault, ...],
    offset: int = 0,
) -> tuple[pd.DataFrame, list[FaultSpec]]:
    """One sensor's readings on ``timeline`` (its own slots; the first ``offset`` of them precede the nominal
    series, see :func:`core.simulation.faults.apply_faults`) and its fault records."""
    profile = PROFILES[sensor.type]
    rng = np.random.default_rng([seed, number])
    n = len(timeline)
    baseline = profile.baseline + rng.uniform(-profile.baseline_spread, profile.baseline_spread)
    amplitude = profile.amplitude * rng.uniform(0.85, 1.15)
    peak = profile.peak_hour + rng.uniform(-1.0, 1.0)
    cycle = amplitude * np.cos(2 * np.pi * (hours - peak) / 24.0)
    noise = _ar1(rng, n, profile.ar_phi, profile.noise_sd)
    value = baseline + cycle + noise

    quality = np.ones(n)
    noisy = rng.random(n) < NOISY_FRACTION
    quality[noisy] = np.round(rng.uniform(0.55, 0.9, noisy.sum()), 2)
    value[noisy] += rng.normal(0.0, 1.0, noisy.sum()) * 2.0 * (1.0 - quality[noisy]) * profile.noise_sd

    keep = np.ones(n, dtype=bool)
    faults = apply_faults(
        sensor.sensor_id, timeline, value, noise, quality, keep, profile.decimals, plan, offset=offset
    )
    if profile.floor is not None:
        value = np.maximum(value, profile.floor)
    value = np.round(value, profile.decimals)

    frame = pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(timeline)[keep],
            "sensor_id": sensor.sensor_id,
            "sensor_type": sensor.type,
            "value": value[keep],
            "unit": sensor.unit,
            "quality": quality[keep],
        }
    )
    return frame, faults


def generate_demo_fleet(
    end: datetime | None = None,
    *,
    seed: int = DEFAULT_SEED,
    readings_per_sensor: int = DEFAULT_READINGS_PER_SENSOR,
    interval: timedelta = DEFAULT_INTERVAL,
    plan: tuple[PlannedFault, ...] = FAULT_PLAN,
) -> DemoFleet:
    """Generate the demo fleet: catalogue, readings and fault ground truth (no I/O).

    ``end`` must be timezone-aware; it defaults to now rounded down to ``interval``.
    """
    if readings_per_sensor < MIN_READINGS_PER_SENSOR:
        raise ValueError(f"readings_per_sensor must be at least {MIN_READINGS_PER_SENSOR}")
    if interval <= timedelta(0):
        raise ValueError("interval must be positive")
    if end is None:
        end = floor_time(datetime.now(UTC), interval)
    elif end.tzinfo is None:
        raise ValueError("end must be timezone-aware (UTC)")
    # a sensor with dropouts starts earlier by the slots they leave empty, so it has readings_per_sensor too
    extra = {s.sensor_id: dropout_slots(s.sensor_id, readings_per_sensor, plan) for s in DEMO_SENSORS}
    timeline = build_timeline(end, readings_per_sensor + max(extra.values(), default=0), interval)
    hours = _hours_of_day(timeline)

    frames: list[pd.DataFrame] = []
    faults: list[FaultSpec] = []
    for number, sensor in enumerate(DEMO_SENSORS, start=1):
        slots = readings_per_sensor + extra[sensor.sensor_id]
        frame, sensor_faults = _sensor_series(
            sensor, number, seed, timeline[-slots:], hours[-slots:], plan, extra[sensor.sensor_id]
        )
        frames.append(frame)
        faults.extend(sensor_faults)
    readings = pd.concat(frames, ignore_index=True).sort_values(["sensor_id", "timestamp"], ignore_index=True)
    faults.sort(key=lambda f: (f.sensor_id, f.started_at, f.kind))
    return DemoFleet(
        assets=DEMO_ASSETS,
        sensors=DEMO_SENSORS,
        readings=readings.loc[:, list(READING_COLUMNS)],
        faults=tuple(faults),
        timeline=timeline,
    )


def parse_utc(text: str) -> datetime:
    """Parse an ISO 8601 time for a command line; ``Z`` and offsets are honoured, a naive time means UTC."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
