"""Store the demo fleet: assets, sensors, readings and fault ground truth (a service: it only flushes).

Idempotence and top-up
    * **Already seeded → skipped.** When every demo sensor already holds at least ``readings_per_sensor``
      readings (600, what the generator produces for every sensor: the sensor with the dropout gap starts
      earlier), nothing is written unless ``force=True``. ``make up`` runs the seed on every start and relies
      on this.
    * **Never back-fills.** Each sensor only receives generated readings *after its latest stored reading*
      (all of them on an empty database). Assets and sensors are upserted by their natural keys (rows already
      current are not rewritten) and readings go in with ``ON CONFLICT (timestamp, sensor_id) DO NOTHING``.
    * **Fixed ``end`` → exact no-op on re-run**: a second run (with ``force``) inserts 0 readings and 0 faults.
    * **Default ``end`` (now) → top-up**: a forced run later appends the readings between each sensor's latest
      reading and the new ``end`` (the generated window is the 50 h before ``end``, 53 h for the dropout
      sensor; if the previous run is older than that, a gap remains between the two). Stored readings are never changed.

Fault ground truth follows the stored data
    A generated fault is recorded only for readings this run stored: entirely after the sensor's latest
    reading → recorded as generated; straddling it → recorded from the first new slot, with a note in its
    description; entirely before it → not recorded. Records are replaced by ``(sensor_id, kind, started_at)``,
    and records of earlier runs are kept, since the readings they describe are still stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from core.fleet.repository import FleetRepository, SensorUpsert
from core.readings.repository import ReadingRepository, ReadingRow
from core.simulation.catalogue import DEMO_SENSOR_IDS
from core.simulation.faults import FaultSpec
from core.simulation.generator import (
    DEFAULT_INTERVAL,
    DEFAULT_READINGS_PER_SENSOR,
    DEFAULT_SEED,
    DemoFleet,
    generate_demo_fleet,
)
from core.simulation.repository import FaultRepository

CLIPPED_NOTE = " (window clipped to the readings this seed stored)"


@dataclass(frozen=True, slots=True)
class SeedReport:
    skipped: bool
    end: datetime
    seed: int
    assets: int
    sensors: int
    sensor_types: int
    sensors_created: int
    readings_generated: int
    readings_inserted: int
    faults_generated: int
    faults_recorded: int

    def __str__(self) -> str:
        when = self.end.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if self.skipped:
            return (
                f"demo fleet already seeded ({self.sensors} sensors); skipped, use --force to top up "
                f"(end {when}, seed {self.seed})"
            )
        return (
            f"demo fleet: {self.assets} assets, {self.sensors} sensors of {self.sensor_types} types "
            f"({self.sensors_created} new), {self.readings_inserted} of {self.readings_generated} readings "
            f"inserted, {self.faults_recorded} of {self.faults_generated} faults recorded "
            f"(end {when}, seed {self.seed})"
        )


def faults_after(fleet: DemoFleet, latest: dict[str, datetime]) -> list[FaultSpec]:
    """The fleet's faults restricted to the slots after each sensor's latest stored reading (see module doc)."""
    recorded: list[FaultSpec] = []
    for fault in fleet.faults:
        cutoff = latest.get(fault.sensor_id)
        if cutoff is None or fault.started_at > cutoff:
            recorded.append(fault)
        elif fault.ended_at > cutoff:
            first = next(t for t in fleet.timeline if t > cutoff)
            recorded.append(replace(fault, started_at=first, description=fault.description + CLIPPED_NOTE))
    return recorded


def _reading_rows(fleet: DemoFleet, latest: dict[str, datetime]) -> list[ReadingRow]:
    frame = fleet.readings
    cutoff = frame["sensor_id"].map(latest)
    frame = frame[cutoff.isna() | (frame["timestamp"] > cutoff)] if latest else frame
    return [
        ReadingRow(ts.to_pydatetime(), sensor_id, value, unit, quality)
        for ts, sensor_id, value, unit, quality in zip(
            frame["timestamp"],
            frame["sensor_id"].tolist(),
            frame["value"].tolist(),
            frame["unit"].tolist(),
            frame["quality"].tolist(),
            strict=True,
        )
    ]


async def seed_demo_fleet(
    session: AsyncSession,
    *,
    end: datetime | None = None,
    seed: int = DEFAULT_SEED,
    readings_per_sensor: int = DEFAULT_READINGS_PER_SENSOR,
    interval: timedelta = DEFAULT_INTERVAL,
    force: bool = False,
) -> SeedReport:
    """Generate the demo fleet and store it in the caller's transaction (flushes, never commits)."""
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=UTC)  # command lines give naive times; they mean UTC
    fleet = generate_demo_fleet(end, seed=seed, readings_per_sensor=readings_per_sensor, interval=interval)
    readings = ReadingRepository(session)
    report = partial(  # the report's generated figures; what was stored is added below
        SeedReport,
        end=fleet.end,
        seed=seed,
        assets=len(fleet.assets),
        sensors=len(fleet.sensors),
        sensor_types=len({s.type for s in fleet.sensors}),
        readings_generated=len(fleet.readings),
        faults_generated=len(fleet.faults),
    )

    stored = await readings.count_by_sensor(DEMO_SENSOR_IDS, at_most=readings_per_sensor)
    if not force and all(stored.get(sensor_id, 0) >= readings_per_sensor for sensor_id in DEMO_SENSOR_IDS):
        return report(skipped=True, sensors_created=0, readings_inserted=0, faults_recorded=0)

    fleet_repo = FleetRepository(session)
    asset_ids, _ = await fleet_repo.upsert_assets(fleet.assets)
    sensors = await fleet_repo.upsert_sensors(
        [
            SensorUpsert(s.sensor_id, asset_ids[s.asset_name], s.type, s.unit, s.location, s.status)
            for s in fleet.sensors
        ]
    )
    latest = await readings.latest_by_sensor(DEMO_SENSOR_IDS)
    inserted = await readings.insert_many(_reading_rows(fleet, latest))
    recorded = await FaultRepository(session).replace(faults_after(fleet, latest))
    await session.flush()
    return report(skipped=False, sensors_created=sensors.created, readings_inserted=inserted, faults_recorded=recorded)
