"""The sensors and units of a batch of valid readings: lookup, auto-registration, unit adoption and conversion.

Rules (README, "How sensors are registered, and units"):

* A reading's unit is compared with its sensor's registered unit. A reading without a unit (absent, ``null`` or
  ``""``) is taken as the sensor's unit and stored without one (exports read it as the sensor's unit).
* A different unit is converted into the registered one when ``core.units`` defines the conversion; the value is
  then stored converted, with the registered unit. Otherwise that reading is rejected with the reason.
* A sensor registered without a unit (``NULL``) takes the first unit it receives (``sensors.unit`` is updated).
* Auto-registration: type = the first reading's ``metadata.sensor_type`` (else ``unknown``); unit = that
  reading's unit, else the catalogue unit of the type (``core.fleet.types``), else the first unit any of the
  sensor's readings carries, else none.

The common case — every reading's unit equal to its sensor's or absent — costs one comparison per reading
(``apply_units``'s first loop); everything else happens only in batches that need it.

Registrations and adopted units are written in their own short transaction, committed *before* the readings'
transaction writes anything (``with_sensors_registered``): the readings' transaction only reads ``sensors`` (and
its foreign-key checks take the weakest table lock, ROW SHARE). On TimescaleDB, creating a chunk copies the
foreign key to ``sensors`` and needs a SHARE ROW EXCLUSIVE lock on it; a readings transaction that had also
written ``sensors`` (ROW EXCLUSIVE) would deadlock with another one creating a chunk (issue 12). So a plan
that needs sensor writes raises ``RegistrationNeeded`` inside the readings' transaction, which rolls back (it
has written nothing yet), the writes are committed, and the work runs again with the sensors in place. A
registered sensor stays registered even if the readings' transaction then fails: registration is idempotent.

A concurrent transaction may register the same new sensor, or give the same unit-less sensor a unit, first. The
next plan then reads the winner's unit, so readings are never stored in a unit their sensor does not have.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.session import unit_of_work
from core.errors import Conflict
from core.fleet.types import canonical_unit
from core.ingest.repository import IngestRepository
from core.ingest.schemas import MAX_REASON_CHARS, RejectedItem, ValidReading
from core.units import Conversion, converter, hint, is_known, normalize

UNKNOWN_SENSOR = "unknown sensor"
#: Different unit strings one batch may need looked up (each new one costs up to ~0.4 ms of pint): a bound on
#: the work a single request can cause; items with further units are rejected.
MAX_UNITS_PER_BATCH = 100
#: Plans of one batch before giving up on sensors whose units keep changing under it (never seen in practice).
MAX_ATTEMPTS = 3

Units = Mapping[str, str | None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Registration:
    """Sensor writes a batch needs before its readings can be stored."""

    new: list[tuple[str, str | None, str | None]]
    """``(sensor_id, type, unit)`` of sensors to register."""
    adopt: dict[str, str]
    """Registered sensors without a unit (``unit IS NULL``) → the first unit they receive."""


class RegistrationNeeded(Exception):
    """Raised in a readings' transaction: commit ``registration`` first, in its own transaction, then retry."""

    def __init__(self, registration: Registration) -> None:
        super().__init__(f"{len(registration.new)} sensors to register, {len(registration.adopt)} units to adopt")
        self.registration = registration


@dataclass(slots=True)
class UnitPlan:
    readings: list[ValidReading]
    """Readings to store: values in their sensor's unit, ``unit`` the sensor's (or None: no unit given)."""
    rejected: list[RejectedItem] = field(default_factory=list)
    adopted: dict[str, str] = field(default_factory=dict)
    """Sensors without a unit that take the first unit they receive."""


@dataclass(slots=True)
class Resolved:
    readings: list[ValidReading]
    rejected: list[RejectedItem]
    units: dict[str, str | None]
    """The registered unit of every sensor of ``readings`` after this batch."""
    pending: Registration | None = None
    """Sensor writes needed before ``readings`` can be stored (``require_registered`` raises them)."""

    def require_registered(self) -> None:
        """Raise ``RegistrationNeeded`` when sensors must be written first."""
        if self.pending is not None:
            raise RegistrationNeeded(self.pending)


def registration_unit(reading: ValidReading) -> str | None:
    """The unit an unknown sensor is registered with from its first reading (before adoption)."""
    unit = normalize(reading.unit)
    return unit if unit else canonical_unit(reading.sensor_type)


def unit_reason(unit: str, sensor_id: str, sensor_unit: str) -> str:
    """Why a reading in ``unit`` cannot be stored for a sensor registered in ``sensor_unit``."""
    if not is_known(unit):
        reason = f"unit: {unit!r} is not a unit the platform knows ({sensor_id}'s unit is {sensor_unit!r})"
    elif not is_known(sensor_unit):
        reason = (
            f"unit: {unit!r} cannot be converted to {sensor_id}'s unit {sensor_unit!r}, "
            "which is not a unit the platform knows"
        )
    else:
        reason = f"unit: {unit!r} cannot be converted to {sensor_id}'s unit {sensor_unit!r}"
    extra = hint(unit)
    return (reason if extra is None else f"{reason} ({extra})")[:MAX_REASON_CHARS]


_NO_UNIT = object()


def apply_units(readings: list[ValidReading], units: Units) -> UnitPlan:
    """Check every reading's unit against ``units`` (sensor id → registered unit); convert or reject.

    Every sensor of ``readings`` must be in ``units``. Fast path: when no reading carries a unit other than its
    sensor's, ``readings`` is returned as it is.
    """
    for reading in readings:
        unit = reading.unit
        if unit is not None and unit != units[reading.sensor_id]:
            break
    else:
        return UnitPlan(readings)
    return _convert(readings, dict(units))


def _convert(readings: list[ValidReading], units: dict[str, str | None]) -> UnitPlan:
    plan = UnitPlan([])
    keep, reject = plan.readings.append, plan.rejected.append
    outcomes: dict[tuple[str, str], Conversion | str | object] = {}  # (unit, sensor) → conversion or reason
    looked_up: set[str] = set()
    too_many = f"unit: more than {MAX_UNITS_PER_BATCH} different units in one request"
    for r in readings:
        sensor_id, unit = r.sensor_id, r.unit
        target = units[sensor_id]
        if unit is None or unit == target:
            keep(r)
            continue
        key = (unit, sensor_id)
        outcome = outcomes.get(key)
        if outcome is None:
            normal = normalize(unit)
            if unit not in looked_up and len(looked_up) >= MAX_UNITS_PER_BATCH:
                outcome = too_many
            elif not normal:
                outcome = _NO_UNIT
            elif target is None:
                units[sensor_id] = target = plan.adopted[sensor_id] = normal
                outcome = converter(normal, normal)
            else:
                outcome = converter(normal, target) or unit_reason(unit, sensor_id, target)
            looked_up.add(unit)
            outcomes[key] = outcome
        if outcome is _NO_UNIT:
            keep(ValidReading(r.index, sensor_id, r.value, r.timestamp, None, r.quality, r.sensor_type))
        elif isinstance(outcome, str):
            reject(RejectedItem(index=r.index, reason=outcome))
        else:
            assert isinstance(outcome, Conversion)
            value = outcome(r.value)
            if not math.isfinite(value):
                reason = f"value: {r.value!r} {unit} is not finite in {sensor_id}'s unit {target!r}"
                reject(RejectedItem(index=r.index, reason=reason[:MAX_REASON_CHARS]))
                continue
            keep(ValidReading(r.index, sensor_id, value, r.timestamp, target, r.quality, r.sensor_type))
    return plan


async def resolve_sensors(
    repo: IngestRepository, readings: list[ValidReading], *, auto_register: bool
) -> Resolved:
    """Readings of known sensors in their sensor's unit; readings of unknown sensors rejected unless
    ``auto_register``; readings whose unit does not convert rejected. Reads only: the sensors to register and
    the units to adopt come back in ``pending`` (module docstring)."""
    first: dict[str, ValidReading] = {}
    for reading in readings:
        first.setdefault(reading.sensor_id, reading)
    units = await repo.existing_sensors(list(first))
    rejected: list[RejectedItem] = []
    new = [sid for sid in first if sid not in units]
    if new and not auto_register:
        unknown = set(new)
        rejected = [
            RejectedItem(index=r.index, reason=UNKNOWN_SENSOR) for r in readings if r.sensor_id in unknown
        ]
        readings = [r for r in readings if r.sensor_id not in unknown]
        new = []
    created_here = set(new)
    for sid in new:
        units[sid] = registration_unit(first[sid])
    plan = apply_units(readings, units)
    units.update(plan.adopted)
    adopt = {sid: unit for sid, unit in plan.adopted.items() if sid not in created_here}
    pending = None
    if new or adopt:
        pending = Registration([(sid, first[sid].sensor_type, units[sid]) for sid in new], adopt)
    return Resolved(plan.readings, rejected + plan.rejected, units, pending)


async def register(factory: async_sessionmaker[AsyncSession], registration: Registration) -> None:
    """Commit ``registration`` in its own short transaction. Sensors registered or given a unit concurrently
    keep what the other transaction wrote (the next plan reads it)."""
    async with unit_of_work(factory) as session:
        repo = IngestRepository(session)
        await repo.register_sensors(registration.new)
        await repo.adopt_units(registration.adopt)


async def with_sensors_registered(
    factory: async_sessionmaker[AsyncSession], work: Callable[[], Awaitable[T]]
) -> T:
    """Run ``work`` (which opens its own transaction); when it raises ``RegistrationNeeded``, commit the
    registration and run it again, up to ``MAX_ATTEMPTS`` times."""
    for _ in range(MAX_ATTEMPTS):
        try:
            return await work()
        except RegistrationNeeded as need:
            await register(factory, need.registration)
    raise Conflict("the units of these sensors are being changed concurrently; retry the request")


__all__ = [
    "MAX_ATTEMPTS",
    "MAX_UNITS_PER_BATCH",
    "UNKNOWN_SENSOR",
    "Registration",
    "RegistrationNeeded",
    "Resolved",
    "UnitPlan",
    "apply_units",
    "register",
    "registration_unit",
    "resolve_sensors",
    "unit_reason",
    "with_sensors_registered",
]
