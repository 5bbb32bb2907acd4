"""The demo fleet's catalogue: sensor-type physics, the five machines and their fifteen sensors.

Everything here is data. :mod:`core.simulation.generator` turns it into readings; the numbers are explained
in ``docs/data/demo_fleet.md``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SensorTypeProfile:
    """How a healthy sensor of one type behaves.

    ``value(t) = baseline + amplitude * cos(2π (hour_of_day(t) - peak_hour) / 24) + AR(1) noise``, where the
    AR(1) noise has coefficient ``ar_phi`` and *stationary* standard deviation ``noise_sd``. Each sensor draws
    its own baseline (± ``baseline_spread``), amplitude (× 0.85–1.15) and peak hour (± 1 h) from the seed.
    ``low``/``high`` is the documented operating range a healthy sensor stays inside.
    """

    type: str
    unit: str
    baseline: float
    baseline_spread: float
    amplitude: float
    peak_hour: float
    noise_sd: float
    ar_phi: float
    low: float
    high: float
    decimals: int
    floor: float | None = None
    """Physical lower bound applied after faults (vibration velocity RMS cannot be negative)."""


TEMPERATURE = SensorTypeProfile(
    type="temperature",
    unit="°C",
    baseline=55.0,
    baseline_spread=3.0,
    amplitude=5.0,
    peak_hour=15.0,
    noise_sd=0.8,
    ar_phi=0.9,
    low=40.0,
    high=75.0,
    decimals=2,
)
VIBRATION = SensorTypeProfile(
    type="vibration",
    unit="mm/s",
    baseline=2.2,
    baseline_spread=0.3,
    amplitude=0.35,
    peak_hour=14.0,
    noise_sd=0.12,
    ar_phi=0.7,
    low=0.5,
    high=4.5,
    decimals=3,
    floor=0.05,
)
PRESSURE = SensorTypeProfile(
    type="pressure",
    unit="bar",
    baseline=6.0,
    baseline_spread=0.4,
    amplitude=0.5,
    peak_hour=3.0,
    noise_sd=0.08,
    ar_phi=0.8,
    low=4.0,
    high=8.0,
    decimals=3,
)
HUMIDITY = SensorTypeProfile(
    type="humidity",
    unit="%RH",
    baseline=50.0,
    baseline_spread=4.0,
    amplitude=6.0,
    peak_hour=5.0,
    noise_sd=1.2,
    ar_phi=0.95,
    low=30.0,
    high=70.0,
    decimals=1,
    floor=0.0,
)
VOLTAGE = SensorTypeProfile(
    type="voltage",
    unit="V",
    baseline=230.0,
    baseline_spread=1.5,
    amplitude=2.5,
    peak_hour=4.0,
    noise_sd=0.6,
    ar_phi=0.5,
    low=218.5,
    high=241.5,
    decimals=1,
)

#: Profiles by sensor type, in catalogue order.
PROFILES: dict[str, SensorTypeProfile] = {
    p.type: p for p in (TEMPERATURE, VIBRATION, PRESSURE, HUMIDITY, VOLTAGE)
}


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """A machine; ``name`` is the natural key (the ``assets.id`` is assigned by the database)."""

    name: str
    site: str
    kind: str


@dataclass(frozen=True, slots=True)
class SensorSpec:
    sensor_id: str
    asset_name: str
    type: str
    unit: str
    location: str
    status: str = "active"


DEMO_ASSETS: tuple[AssetSpec, ...] = (
    AssetSpec("P-101", "plant-north", "pump"),
    AssetSpec("C-201", "plant-north", "compressor"),
    AssetSpec("M-301", "plant-north", "motor"),
    AssetSpec("P-102", "plant-south", "pump"),
    AssetSpec("C-202", "plant-south", "compressor"),
)


def _sensor(n: int, asset: str, profile: SensorTypeProfile, location: str) -> SensorSpec:
    return SensorSpec(f"sensor-{n:03d}", asset, profile.type, profile.unit, location)


DEMO_SENSORS: tuple[SensorSpec, ...] = (
    _sensor(1, "P-101", TEMPERATURE, "pump bearing, drive end"),
    _sensor(2, "P-101", VIBRATION, "pump bearing, drive end, radial"),
    _sensor(3, "P-101", PRESSURE, "discharge line"),
    _sensor(4, "C-201", PRESSURE, "air receiver outlet"),
    _sensor(5, "C-201", HUMIDITY, "intake air"),
    _sensor(6, "C-201", VOLTAGE, "motor supply, phase L1"),
    _sensor(7, "M-301", TEMPERATURE, "motor bearing, non-drive end"),
    _sensor(8, "M-301", VIBRATION, "motor bearing, drive end, radial"),
    _sensor(9, "M-301", VOLTAGE, "motor supply, phase L1"),
    _sensor(10, "P-102", PRESSURE, "discharge line"),
    _sensor(11, "P-102", VIBRATION, "pump bearing, drive end, radial"),
    _sensor(12, "P-102", HUMIDITY, "pump room ambient"),
    _sensor(13, "C-202", TEMPERATURE, "motor bearing, drive end"),
    _sensor(14, "C-202", HUMIDITY, "intake air"),
    _sensor(15, "C-202", VOLTAGE, "motor supply, phase L1"),
)

DEMO_SENSOR_IDS: tuple[str, ...] = tuple(s.sensor_id for s in DEMO_SENSORS)
