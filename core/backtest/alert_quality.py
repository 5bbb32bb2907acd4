"""Alert quality of a simulated run: injected fault episodes against the alerts and work orders the platform
opened (pure arithmetic, no I/O; ``make bench-alerts`` feeds it the API's answers).

Definitions (event time throughout: an alert's and a work order's ``event_opened_at``):

* **Episode**: one injected fault on one sensor, active in ``[start, end)``; its **window** is
  ``[start, end + grace]`` (the rules need a few readings after the last faulty one, and a fault's aftermath —
  the baseline's rolling window still holding faulty readings — belongs to it).
* An episode is **detected** when an alert opens on its sensor inside its window.
* A work order **belongs to** an episode when it opened inside the episode's window and its evidence (the sensors
  of every alert of its incident) includes the episode's sensor. **Work orders per episode** count those (target
  exactly 1); **time to the work order** is from the fault's start to the first of them.
* Every other work order of the simulated span is a **false work order**: its evidence holds no sensor that was
  faulty (in an episode window) when it opened. They are counted per **fault-free sensor-day**: the span of every
  sensor minus its episodes' windows, summed, in days.
* Alerts on fault-free sensors (the sensor in none of its episode windows when the alert opened) are counted by
  rule, for information.

The technician of the benchmark uses :func:`outcome_for`: a work order that belongs to an episode is completed
``fault_confirmed``, any other ``no_fault_found``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DAY_S = 86400.0
#: Severities whose alert opens a work order on its own (``core.workorders.policy``).
WARRANTING = ("high", "critical")


@dataclass(frozen=True, slots=True)
class Episode:
    sensor_id: str
    kind: str
    start: datetime
    end: datetime
    grace: timedelta

    @property
    def window_end(self) -> datetime:
        return self.end + self.grace

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment <= self.window_end


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    sensor_id: str
    rule: str
    severity: str
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class WorkOrderRow:
    id: int
    opened_at: datetime
    sensors: tuple[str, ...]
    rules: tuple[str, ...] = ()
    priority: str = ""
    alert_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class EpisodeResult:
    episode: Episode
    alerts: tuple[AlertRow, ...]
    work_orders: tuple[WorkOrderRow, ...]

    @property
    def detected(self) -> bool:
        return bool(self.alerts)

    @property
    def first_work_order_s(self) -> float | None:
        if not self.work_orders:
            return None
        return (min(w.opened_at for w in self.work_orders) - self.episode.start).total_seconds()

    @property
    def first_alert_s(self) -> float | None:
        if not self.alerts:
            return None
        return (min(a.opened_at for a in self.alerts) - self.episode.start).total_seconds()


@dataclass(frozen=True)
class ClassSummary:
    kind: str
    injected: int
    detected: int
    work_orders: tuple[int, ...]
    """Work orders of each episode, in episode order."""
    minutes_to_work_order: tuple[float, ...]
    """Of the episodes with a work order."""
    rules: Counter[str] = field(default_factory=Counter)
    """Alerts that opened in the class's episodes, by rule."""

    @property
    def exactly_one(self) -> int:
        return sum(1 for n in self.work_orders if n == 1)

    @property
    def distribution(self) -> dict[int, int]:
        """Number of work orders → episodes with that many."""
        return dict(sorted(Counter(self.work_orders).items()))

    @property
    def median_minutes(self) -> float | None:
        return statistics.median(self.minutes_to_work_order) if self.minutes_to_work_order else None


@dataclass(frozen=True)
class Quality:
    """Everything the benchmark reports about one run."""

    episodes: tuple[EpisodeResult, ...]
    classes: dict[str, ClassSummary]
    false_work_orders: tuple[WorkOrderRow, ...]
    fault_free_sensor_days: float
    healthy_alerts: tuple[AlertRow, ...]

    @property
    def false_per_sensor_day(self) -> float:
        days = self.fault_free_sensor_days
        return len(self.false_work_orders) / days if days > 0 else float("nan")

    @property
    def healthy_alerts_by_rule(self) -> dict[str, int]:
        return dict(Counter(a.rule for a in self.healthy_alerts).most_common())


def episode_of(order: WorkOrderRow, episodes: Iterable[Episode]) -> Episode | None:
    """The episode the work order belongs to (its window holds the opening, its evidence the sensor), if any."""
    return next((e for e in episodes if e.holds(order.opened_at) and e.sensor_id in order.sensors), None)


def outcome_for(order: WorkOrderRow, episodes: Iterable[Episode]) -> str:
    """What the benchmark's technician records: ``fault_confirmed`` for a work order of an injected fault,
    ``no_fault_found`` for any other."""
    return "fault_confirmed" if episode_of(order, episodes) is not None else "no_fault_found"


def in_episode(sensor_id: str, moment: datetime, episodes: Iterable[Episode]) -> bool:
    return any(e.sensor_id == sensor_id and e.holds(moment) for e in episodes)


def fault_free_sensor_days(
    sensors: Iterable[str], start: datetime, end: datetime, episodes: Sequence[Episode]
) -> float:
    """Sum over the sensors of ``[start, end]`` minus their episodes' windows (clipped, overlaps merged), in days."""
    total = 0.0
    for sensor_id in sensors:
        windows = sorted(
            (max(e.start, start), min(e.window_end, end))
            for e in episodes
            if e.sensor_id == sensor_id and e.window_end > start and e.start < end
        )
        covered = 0.0
        cursor = start
        for lo, hi in windows:
            lo = max(lo, cursor)
            if hi > lo:
                covered += (hi - lo).total_seconds()
                cursor = hi
        total += (end - start).total_seconds() - covered
    return total / DAY_S


def late_work_orders(
    work_orders: Iterable[WorkOrderRow], alerts: Iterable[AlertRow]
) -> list[tuple[WorkOrderRow, AlertRow]]:
    """Work orders that opened (event time) after an earlier alert of their own incident that warrants one on its
    own (high or critical), with that alert: the work order's time then depends on which alert the scheduling
    agent happened to handle first, not on the evidence."""
    by_id = {a.id: a for a in alerts}
    out = []
    for order in work_orders:
        warranting = [by_id[i] for i in order.alert_ids if i in by_id and by_id[i].severity in WARRANTING]
        first = min(warranting, key=lambda a: (a.opened_at, a.id), default=None)
        if first is not None and first.opened_at < order.opened_at:
            out.append((order, first))
    return out


def judge(
    episodes: Sequence[Episode],
    alerts: Iterable[AlertRow],
    work_orders: Iterable[WorkOrderRow],
    *,
    sensors: Iterable[str],
    start: datetime,
    end: datetime,
    kinds: Sequence[str] | None = None,
) -> Quality:
    """Score the alerts and work orders of the simulated span ``(start, end]`` against the episodes (items
    outside the span are history and do not count). ``kinds``: the classes to report, in order (default: those
    of the episodes, in first-seen order)."""
    alerts = [a for a in alerts if start < a.opened_at <= end]
    orders = [w for w in work_orders if start < w.opened_at <= end]
    results = []
    for e in episodes:
        results.append(
            EpisodeResult(
                e,
                tuple(a for a in alerts if a.sensor_id == e.sensor_id and e.holds(a.opened_at)),
                tuple(w for w in orders if episode_of(w, [e]) is not None),
            )
        )
    order = list(kinds) if kinds is not None else list(dict.fromkeys(e.kind for e in episodes))
    classes = {}
    for kind in order:
        mine = [r for r in results if r.episode.kind == kind]
        classes[kind] = ClassSummary(
            kind=kind,
            injected=len(mine),
            detected=sum(r.detected for r in mine),
            work_orders=tuple(len(r.work_orders) for r in mine),
            minutes_to_work_order=tuple(
                r.first_work_order_s / 60.0 for r in mine if r.first_work_order_s is not None
            ),
            rules=Counter(a.rule for r in mine for a in r.alerts),
        )
    false_orders = tuple(w for w in orders if episode_of(w, episodes) is None)
    healthy = tuple(a for a in alerts if not in_episode(a.sensor_id, a.opened_at, episodes))
    return Quality(
        episodes=tuple(results),
        classes=classes,
        false_work_orders=false_orders,
        fault_free_sensor_days=fault_free_sensor_days(sensors, start, end, episodes),
        healthy_alerts=healthy,
    )


__all__ = [
    "AlertRow",
    "ClassSummary",
    "Episode",
    "EpisodeResult",
    "Quality",
    "WorkOrderRow",
    "episode_of",
    "fault_free_sensor_days",
    "in_episode",
    "judge",
    "late_work_orders",
    "outcome_for",
]
