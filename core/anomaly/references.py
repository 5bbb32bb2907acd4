"""Healthy references: what each sensor looked like while healthy, learned by the anomaly agent.

A reference is the median and robust scale (1.4826·MAD, at least the type's floors) of a sensor's readings over
its learning span, plus the longest run of equal consecutive readings it typically shows (the 99th percentile of
its runs' lengths: one stuck stretch in the learning data does not count; the flat-line rule wants a flat line
three times longer). Re-centring keeps the previous reference's scale and run when they are larger
(30 readings say little about spread). The degradation detector (``core.anomaly.trend``) compares the sensor's level
with it; unlike the outlier baseline's rolling window it does not move while the machine wears.

When a sensor learns (one ``sensor_references`` row per learning, newest = current):

* ``initial`` — from its first reading, until it has ``min_readings`` readings spanning ``min_span`` (24 h by
  default, so that a daily cycle is part of normal);
* ``regime_change`` — after a regime gap (the outlier baseline restarts there too: the machine stopped), on the
  next ``recenter_readings`` readings: the level is learned again, the scale is kept from the previous reference
  (or learned fully when there was none). ``reason`` says how long the gap was and ``previous_median`` keeps the
  level before, so the step stays visible in the sensor's timeline;
* ``repair`` — after a work order of its asset was completed with ``fault_confirmed`` (``relearn_after_repair``),
  re-centred the same way on the readings after the completion.

While a sensor learns, the degradation detector is silent for it. Everything is decided from stored readings in
event time, and rows have a natural key (sensor, start), so a redelivered or replayed batch learns the same
thing. ``ReferenceTracker`` caches the current row per sensor (entries expire after ``cache_ttl_s`` so that rows
written by another process — a repair completed through the API — are picked up).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from core.anomaly.baseline import Floors, robust_scale
from core.anomaly.reference_repository import ReferenceRepository, ReferenceRow
from core.config import Settings
from core.incidents.repository import IncidentRepository

#: Readings fetched at most to learn an initial reference (a day at 1 Hz).
MAX_LEARNING_READINGS = 200_000


@dataclass(frozen=True, slots=True)
class ReferenceConfig:
    min_readings: int = 100
    min_span: timedelta = timedelta(hours=24)
    recenter_readings: int = 30
    cache_ttl_s: float = 60.0
    max_sensors: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ReferenceConfig:
        return cls(
            min_readings=settings.reference_min_readings,
            min_span=timedelta(hours=settings.reference_min_hours),
            recenter_readings=settings.reference_recenter_readings,
            max_sensors=settings.anomaly_baseline_max_sensors,
        )


def longest_run(values: np.ndarray) -> int:
    """The longest run of equal consecutive values (1 for a series without repeats, 0 when empty)."""
    runs = run_lengths(values)
    return int(runs.max()) if runs.size else 0


def run_lengths(values: np.ndarray) -> np.ndarray:
    """Lengths of the runs of equal consecutive values, in order."""
    if values.size == 0:
        return np.zeros(0, dtype=int)
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    return np.diff(np.concatenate([starts, [values.size]]))


def typical_longest_run(values: np.ndarray, quantile: float = 0.99) -> int:
    """The longest run of equal readings a healthy sensor shows: the ``quantile`` of the lengths of its runs —
    robust to one stuck stretch in the learning data (the demo's seed holds one), which would otherwise make the
    flat-line rule wait for 3 × that stretch."""
    runs = run_lengths(values)
    if runs.size == 0:
        return 0
    return int(np.quantile(runs, quantile, method="higher"))


@dataclass
class _Entry:
    row: ReferenceRow | None
    loaded: float
    counted: int | None = None
    """Readings since ``row.started_at`` at the last progress check (learning rows), plus those seen since;
    None: not checked yet (the next ``learn`` checks)."""
    next_check_at: datetime | None = None
    """An initial reference with enough readings but too short a span: not checked again before this."""


class ReferenceTracker:
    def __init__(self, config: ReferenceConfig) -> None:
        self.config = config
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def invalidate(self, sensor_ids: list[str] | None = None) -> None:
        if sensor_ids is None:
            self._entries.clear()
        else:
            for sensor_id in sensor_ids:
                self._entries.pop(sensor_id, None)

    def get(self, sensor_id: str) -> ReferenceRow | None:
        entry = self._entries.get(sensor_id)
        return entry.row if entry is not None else None

    def _put(self, sensor_id: str, row: ReferenceRow | None) -> None:
        self._entries[sensor_id] = _Entry(row, time.monotonic())
        self._entries.move_to_end(sensor_id)
        while len(self._entries) > self.config.max_sensors:
            self._entries.popitem(last=False)

    async def prepare(self, session: AsyncSession, sensor_ids: list[str]) -> None:
        """Load the current reference of the sensors not cached (or expired); start an initial one for a sensor
        that has none (from its first stored reading)."""
        now = time.monotonic()
        stale = [
            s for s in sensor_ids
            if (e := self._entries.get(s)) is None or now - e.loaded > self.config.cache_ttl_s
        ]
        if not stale:
            return
        repo = ReferenceRepository(session)
        current = await repo.current(stale)
        missing = [s for s in stale if s not in current]
        if missing:
            firsts = await repo.first_readings(missing)
            for sensor_id in missing:
                first = firsts.get(sensor_id)
                if first is not None:
                    await repo.start(sensor_id, kind="initial", started_at=first, reason="first readings")
            current |= await repo.current(missing)
        for sensor_id in stale:
            held = self._entries.get(sensor_id)
            row = current.get(sensor_id)
            if held is not None and held.row is not None and row is not None and held.row == row:
                held.loaded = now  # unchanged: keep its progress
                self._entries.move_to_end(sensor_id)
            else:
                self._put(sensor_id, row)

    async def restart(
        self, session: AsyncSession, sensor_id: str, at: datetime, gap_s: float, cadence_s: float | None
    ) -> None:
        """A regime gap before the reading at ``at``: learn the level again from there."""
        held = self.get(sensor_id)
        if held is not None and held.started_at >= at:
            return  # this restart (or a later one) is known already
        previous = held.median if held is not None and held.status == "ready" else None
        cadence = f"{cadence_s / 60:.3g} min" if cadence_s is not None else "unknown"
        reason = (
            f"regime change: no data for {gap_s / 3600:.1f} h (median interval {cadence}); the level is learned "
            f"again from the next {self.config.recenter_readings} readings"
        )
        repo = ReferenceRepository(session)
        if await repo.start(sensor_id, kind="regime_change", started_at=at, reason=reason, previous_median=previous):
            # an incident open on the sensor's asset gets the note in its timeline (the alerts' context)
            await IncidentRepository(session).note_on_open_incident(
                sensor_id, "regime_change", event_at=at, note=f"{sensor_id}: {reason}"
            )
        self._put(sensor_id, (await repo.current([sensor_id])).get(sensor_id))

    async def learn(
        self, session: AsyncSession, sensor_id: str, until: datetime, seen: int, floors: Floors
    ) -> ReferenceRow | None:
        """Advance a learning reference by ``seen`` readings up to ``until``; learn it when it has enough.
        Answers the current row."""
        entry = self._entries.get(sensor_id)
        if entry is None or entry.row is None or entry.row.status != "learning":
            return entry.row if entry is not None else None
        row = entry.row
        recenter = row.kind != "initial"
        needed = self.config.recenter_readings if recenter else self.config.min_readings
        if entry.counted is not None:
            entry.counted += seen
            if entry.counted < needed or (entry.next_check_at is not None and until < entry.next_check_at):
                return row
        repo = ReferenceRepository(session)
        progress = await repo.progress(sensor_id, row.started_at, until)
        entry.counted = progress.count
        if progress.count < needed or progress.first is None or progress.last is None:
            return row
        if not recenter and progress.last - progress.first < self.config.min_span:
            entry.next_check_at = progress.first + self.config.min_span
            return row
        limit = needed if recenter else MAX_LEARNING_READINGS
        readings = await repo.readings(sensor_id, row.started_at, until, limit)
        if not recenter:
            start = readings[0][0]
            end = next(
                (i for i, (t, _) in enumerate(readings) if i + 1 >= needed and t - start >= self.config.min_span), None
            )
            if end is None:
                return row
            readings = readings[: end + 1]
        values = np.array([v for _, v in readings], dtype=float)
        median, scale = robust_scale(values, floors)
        run = typical_longest_run(values)
        if recenter:  # a few readings say little about spread: keep what the previous reference learned
            previous = await self._previous(repo, sensor_id, row)
            if previous is not None:
                scale = max(scale, float(previous.scale)) if previous.scale is not None else scale
                run = max(run, previous.longest_run or 0)
        await repo.learned(
            row.id,
            ready_at=readings[-1][0],
            readings=len(values),
            median=median,
            scale=scale,
            longest_run=run,
        )
        learned = (await repo.current([sensor_id])).get(sensor_id)
        self._put(sensor_id, learned)
        return learned

    @staticmethod
    async def _previous(repo: ReferenceRepository, sensor_id: str, row: ReferenceRow) -> Any:
        """The newest learned reference before ``row``."""
        for older in await repo.history(sensor_id, limit=20):
            if older.started_at < row.started_at and older.scale is not None:
                return older
        return None


async def relearn_after_repair(session: AsyncSession, task: Any, *, at: datetime) -> list[str]:
    """A work order was completed with ``fault_confirmed``: the sensors of its asset (or its sensor) re-learn
    their level from the readings after ``at``."""
    return await ReferenceRepository(session).start_for_asset(
        task.asset_id,
        task.sensor_id,
        kind="repair",
        at=at,
        reason=f"repair: work order {task.id} completed with the fault confirmed; the level is learned again",
    )


__all__ = [
    "ReferenceConfig",
    "ReferenceTracker",
    "longest_run",
    "relearn_after_repair",
    "run_lengths",
    "typical_longest_run",
]
