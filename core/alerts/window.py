"""Which stored readings an evaluation of ``ReadingsIngested`` reads (``AlertingService.on_readings``).

``reading_filters`` narrows the rules' window to the readings ``simulate`` can act on; ``MatchCache`` remembers
the threshold matches already read, so that consecutive evaluations read only the readings stored since the
previous one instead of the whole window again (5 minutes at 100 readings/s from 50 sensors is 1.5 million rows,
about a second of PostgreSQL per evaluation; reading them is what made the agent fall behind the simulator).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from core.db.models import Alert, AlertRule
from core.db.repositories.alerting import Point, ReadingFilter


def reading_filters(
    pairs: Sequence[tuple[AlertRule, str]],
    unresolved: dict[tuple[str, str], Alert],
    last_observed: dict[int, datetime],
) -> list[ReadingFilter]:
    """Per sensor, the readings before the batch (within the rules' window) that ``simulate`` can act on.

    ``simulate`` gives the same actions without the others: while no alert of a rule is unresolved a normal
    reading only extends the normal streak, which matters only once an alert is open, and opening happens on a
    matching reading, which resets the streak first; while an alert is unresolved, readings up to its last
    matching reading are skipped. So a sensor keeps its matching readings (threshold rules: outside the
    narrowest ``[min, max]`` of its rules), every reading after the last matching reading of its unresolved
    alerts, and everything when it has a rate-of-change rule (whose match depends on the previous reading) or
    an unresolved alert without observations. Without this the agent loaded every reading of the window
    (5 min x 100 readings/s x 50 sensors = 1.5 M rows per batch at the simulator's rate).
    """
    keep_all: dict[str, bool] = {}
    after: dict[str, datetime | None] = {}
    lo: dict[str, float | None] = {}
    hi: dict[str, float | None] = {}
    for rule, sensor_id in pairs:
        keep_all.setdefault(sensor_id, False)
        alert = unresolved.get((sensor_id, rule.name))
        if rule.kind == "rate_of_change":
            keep_all[sensor_id] = True
        if alert is not None:
            at = last_observed.get(alert.id)
            held = after.get(sensor_id)
            if at is None:
                keep_all[sensor_id] = True
            elif held is None or at < held:
                after[sensor_id] = at
        if rule.kind == "threshold":
            low, high = rule.params.get("min"), rule.params.get("max")
            if low is not None:
                current = lo.get(sensor_id)
                lo[sensor_id] = float(low) if current is None else max(current, float(low))
            if high is not None:
                current = hi.get(sensor_id)
                hi[sensor_id] = float(high) if current is None else min(current, float(high))
    return [ReadingFilter(s, keep_all[s], after.get(s), lo.get(s), hi.get(s)) for s in sorted(keep_all)]


@dataclass(slots=True)
class _Entry:
    lo: float | None
    hi: float | None
    covered_from: datetime
    covered_to: datetime
    matches: list[Point]


class MatchCache:
    """Per sensor: the readings outside ``[lo, hi]`` with timestamps in ``[covered_from, covered_to)`` read by an
    earlier evaluation (``covered_to`` is that evaluation's first batch timestamp).

    Used only for sensors whose filter is a pure threshold filter (no rate-of-change rule, no unresolved alert:
    those need every reading). An evaluation may use the entry when its bounds are the same, it covers the start
    of the rules' window and the batch starts at or after ``covered_to``; it then reads only from
    ``covered_to``. A batch starting before ``covered_to`` (readings committed out of order, a redelivery, a
    backfill) reads the whole window and replaces the entry. What it cannot see — like the uncached query — is a
    reading committed after it was read whose timestamp lies before ``covered_to`` and whose own event has not been
    evaluated yet; that event's evaluation then reads the whole window again. Per process, at most
    ``max_sensors`` entries (least recently used dropped).
    """

    def __init__(self, max_sensors: int = 10_000) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.max_sensors = max_sensors
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    @staticmethod
    def _eligible(f: ReadingFilter) -> bool:
        return not f.keep_all and f.after is None

    def scan_from(
        self, filters: Sequence[ReadingFilter], since: datetime, first: datetime
    ) -> dict[str, datetime]:
        """Per sensor, where the query must start reading (``since`` unless a usable entry covers more)."""
        out: dict[str, datetime] = {}
        for f in filters:
            entry = self._entries.get(f.sensor_id)
            if (
                entry is not None
                and self._eligible(f)
                and (entry.lo, entry.hi) == (f.lo, f.hi)
                and entry.covered_from <= since
                and since <= entry.covered_to <= first
            ):
                out[f.sensor_id] = entry.covered_to
                self.hits += 1
            else:
                out[f.sensor_id] = since
                self.misses += 1
        return out

    def cached(self, sensor_id: str, since: datetime, scan_from: datetime) -> list[Point]:
        """The remembered matches in ``[since, scan_from)`` (empty when the sensor is read from ``since``)."""
        entry = self._entries.get(sensor_id)
        if entry is None or scan_from <= since:
            return []
        return [p for p in entry.matches if since <= p.timestamp < scan_from]

    def store(
        self,
        filters: Sequence[ReadingFilter],
        points: dict[str, list[Point]],
        since: datetime,
        first: datetime,
    ) -> None:
        """Remember the matches in ``[since, first)`` of the sensors with a pure threshold filter."""
        for f in filters:
            if not self._eligible(f):
                self._entries.pop(f.sensor_id, None)
                continue
            matches = [
                p
                for p in points.get(f.sensor_id, [])
                if since <= p.timestamp < first
                and ((f.lo is not None and p.value < f.lo) or (f.hi is not None and p.value > f.hi))
            ]
            self._entries[f.sensor_id] = _Entry(f.lo, f.hi, since, first, matches)
            self._entries.move_to_end(f.sensor_id)
        while len(self._entries) > self.max_sensors:
            self._entries.popitem(last=False)


def merge_points(cached: list[Point], fresh: list[Point]) -> list[Point]:
    """``cached`` and ``fresh`` readings of one sensor, in time order, one per timestamp."""
    if not cached:
        return fresh
    by_time = {p.timestamp: p for p in cached}
    by_time.update((p.timestamp, p) for p in fresh)
    return [by_time[t] for t in sorted(by_time)]


__all__ = ["MatchCache", "merge_points", "reading_filters"]
