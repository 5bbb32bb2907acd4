"""The shipped sensor-type catalogue: what each type measures, its canonical unit, and what the detectors need
to know about it.

A sensor's ``type`` is free text (auto-registration takes ``metadata.sensor_type``, else ``unknown``); the types
below are the ones the platform knows. For them:

* ``unit`` is the canonical unit: the unit the default alert rules are written in and the unit a sensor of the
  type is registered with when its readings carry none. A sensor may be registered with any unit; readings in
  another unit of the same dimension are converted to the sensor's unit at ingest (``core.units``), and a
  threshold rule applies to a sensor only where its unit converts to the rule's unit.
* ``scale_floor`` / ``relative_floor``: the smallest robust standard deviation the detectors use for a sensor
  of this type, absolute (in ``unit``) and as a fraction of the level's magnitude. They encode the smallest
  change that matters in practice: without them a very steady signal (RMS vibration of a healthy bearing varies
  by ~0.5 %) scores a 3 % change as a 7-sigma outlier. ``relative_floor`` is 0 for interval quantities
  (temperature in °C has no meaningful zero).
* ``degradation``: which direction of a sustained level change means wear (``up``: vibration, temperature,
  kurtosis; ``both``: pressure or voltage, where a leak or a sag is as bad as an excess).

Unknown types get ``DEFAULT_TYPE``'s floors and ``both``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down", "both"]

#: Length limits of fleet identifiers, shared by the fleet and ingest schemas and the back-test's checks.
MAX_SENSOR_ID_CHARS = 128
MAX_TYPE_CHARS = 64
MAX_UNIT_CHARS = 32
MAX_ASSET_CHARS = 200


@dataclass(frozen=True, slots=True)
class SensorType:
    name: str
    unit: str
    """Canonical unit ('' = dimensionless)."""
    description: str
    scale_floor: float = 0.0
    relative_floor: float = 0.01
    degradation: Direction = "both"


SENSOR_TYPES: dict[str, SensorType] = {
    t.name: t
    for t in (
        SensorType(
            "temperature",
            "°C",
            "Temperature (bearing, winding, process).",
            scale_floor=0.1,
            relative_floor=0.0,
            degradation="up",
        ),
        SensorType(
            "vibration",
            "mm/s",
            "Vibration velocity RMS (10-1,000 Hz), the quantity ISO 10816 / 20816 severity zones are written in.",
            scale_floor=0.01,
            degradation="up",
        ),
        SensorType(
            "acceleration",
            "g",
            "Vibration acceleration RMS in standard gravities (g = 9.806 65 m/s²), e.g. per-record RMS of an "
            "accelerometer.",
            degradation="up",
        ),
        SensorType(
            "kurtosis",
            "",
            "Excess (Fisher) kurtosis of a vibration record: 0 for Gaussian vibration, raised by the impacts of "
            "rolling-element bearing defects (dimensionless).",
            scale_floor=0.2,
            relative_floor=0.0,
            degradation="up",
        ),
        SensorType("pressure", "bar", "Gauge pressure.", scale_floor=0.005),
        SensorType("humidity", "%RH", "Relative humidity.", scale_floor=0.1, relative_floor=0.0),
        SensorType("voltage", "V", "Supply voltage (RMS, one phase).", scale_floor=0.1, relative_floor=0.005),
        SensorType("current", "A", "Motor current (RMS, one phase).", scale_floor=0.01, degradation="up"),
    )
}

#: Floors and direction for a type the catalogue does not know.
DEFAULT_TYPE = SensorType("unknown", "", "A sensor of a type the catalogue does not know.")


def sensor_type(name: str | None) -> SensorType:
    """The catalogue entry of ``name`` (``DEFAULT_TYPE`` for an unknown or missing type)."""
    if name is None:
        return DEFAULT_TYPE
    return SENSOR_TYPES.get(name, DEFAULT_TYPE)


def canonical_unit(name: str | None) -> str | None:
    """The canonical unit of a known type, else None."""
    entry = SENSOR_TYPES.get(name or "")
    return None if entry is None else entry.unit


__all__ = ["DEFAULT_TYPE", "SENSOR_TYPES", "Direction", "SensorType", "canonical_unit", "sensor_type"]
