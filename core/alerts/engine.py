"""Pure rule evaluation with hysteresis (no I/O): what a sequence of readings means for one (sensor, rule).

Everything is counted in readings and judged in event time (the readings' timestamps), never in wall-clock
minutes, so a sensor sending once a second and one sending every ten minutes behave alike, and a replay or a
back-fill gives the same alerts as the live stream did.

``simulate`` walks the readings of one sensor in time order (the last readings before the batch, then the
batch), starting from the unresolved alert of the rule if there is one, and answers the actions to take:

* a reading **matches** when it violates the rule (threshold: outside ``[min, max]``; rate of change: the
  absolute change per minute since the previous reading exceeds ``max_rate_per_min``; flat line: equal to the
  previous reading within ``tolerance``; anomaly score: an anomaly of the rule's methods with ``score >=
  min_score`` exists at its timestamp);
* **open** when at least ``k`` of the sensor's last ``n`` readings match (only matches no alert of the rule has
  counted yet, not older than ``max_age`` before the reading when set), at a reading of the batch being
  evaluated, unless suppressed;
* **observe** every matching reading while the alert is unresolved;
* **resolve** after ``m`` consecutive normal readings later than the alert's last matching reading, once ``hold``
  has passed since the alert opened (event time).

Idempotency: the outcome depends only on stored readings and on the observations stored per alert (natural
key: alert, timestamp). Evaluating the same batch again finds the same readings, skips matching readings an
alert has already counted and reaches the same normal streak, so it changes nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.alerts.repository import Point

Violation = Callable[[Point | None, Point], bool]


def threshold_violation(params: dict[str, Any]) -> Violation:
    low = params.get("min")
    high = params.get("max")

    def violates(_previous: Point | None, point: Point) -> bool:
        return (low is not None and point.value < low) or (high is not None and point.value > high)

    return violates


def rate_violation(params: dict[str, Any]) -> Violation:
    max_rate = float(params["max_rate_per_min"])

    def violates(previous: Point | None, point: Point) -> bool:
        if previous is None:
            return False
        minutes = (point.timestamp - previous.timestamp).total_seconds() / 60.0
        if minutes <= 0:
            return False
        return abs(point.value - previous.value) / minutes > max_rate

    return violates


def flatline_violation(params: dict[str, Any]) -> Violation:
    tolerance = float(params.get("tolerance", 0.0))

    def violates(previous: Point | None, point: Point) -> bool:
        return previous is not None and abs(point.value - previous.value) <= tolerance

    return violates


def anomaly_violation(anomalous: set[datetime]) -> Violation:
    def violates(_previous: Point | None, point: Point) -> bool:
        return point.timestamp in anomalous

    return violates


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """k of the last n readings (matches not older than ``max_age``), m normal readings and ``hold`` to resolve."""

    k: int
    n: int
    m: int
    max_age: timedelta | None = None
    hold: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n or self.m < 1:
            raise ValueError("need 1 <= k <= n and m >= 1")

    @property
    def lookback(self) -> int:
        """Readings before a batch that an evaluation needs (the k-of-n window and the normal streak)."""
        return max(self.n, self.m) + 1


@dataclass
class Opening:
    at: datetime
    observations: list[Point]


@dataclass
class Actions:
    """What to do, in time order: ``steps`` holds ("open", Opening) / ("observe", Point) / ("resolve", ts) /
    ("suppressed", ts)."""

    steps: list[tuple[str, Any]] = field(default_factory=list)


def simulate(
    points: Sequence[Point],
    violates: Violation,
    hysteresis: Hysteresis,
    *,
    alert_open: bool,
    opened_at: datetime | None,
    last_observed_at: datetime | None,
    observed: set[datetime],
    batch_start: datetime,
    suppressed: Callable[[datetime], bool],
    can_open: bool = True,
) -> Actions:
    """The actions for ``points`` (one sensor, time order). ``opened_at``: event time the unresolved alert opened."""
    h = hysteresis
    actions = Actions()
    is_open = alert_open
    streak = 0
    recent: deque[tuple[Point, bool]] = deque(maxlen=h.n)  # the last n readings: (reading, counts towards k)
    previous: Point | None = None
    for point in points:
        bad = violates(previous, point)
        previous = point
        if is_open and last_observed_at is not None and point.timestamp <= last_observed_at:
            continue  # before the alert's last matching reading: neither a new match nor a normal one
        if bad:
            streak = 0
            if is_open:
                if point.timestamp not in observed:
                    actions.steps.append(("observe", point))
                continue
            counts = point.timestamp not in observed  # else already counted by an earlier alert of this rule
            recent.append((point, counts))
            if not counts or not can_open or point.timestamp < batch_start:
                continue
            oldest = point.timestamp - h.max_age if h.max_age is not None else None
            matches = [p for p, c in recent if c and (oldest is None or p.timestamp >= oldest)]
            if len(matches) < h.k:
                continue
            if suppressed(point.timestamp):
                actions.steps.append(("suppressed", point.timestamp))
                continue
            actions.steps.append(("open", Opening(point.timestamp, matches)))
            is_open = True
            opened_at = last_observed_at = point.timestamp
            recent.clear()
        else:
            streak += 1
            recent.append((point, False))
            if (
                is_open
                and streak >= h.m
                and (opened_at is None or point.timestamp - opened_at >= h.hold)
            ):
                actions.steps.append(("resolve", point.timestamp))
                is_open = False
                last_observed_at = None
                recent.clear()
    return actions


__all__ = [
    "Actions",
    "Hysteresis",
    "Opening",
    "Violation",
    "anomaly_violation",
    "flatline_violation",
    "rate_violation",
    "simulate",
    "threshold_violation",
]
