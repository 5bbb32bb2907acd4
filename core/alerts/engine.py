"""Pure rule evaluation with hysteresis (no I/O): what a sequence of readings means for one (sensor, rule).

``simulate`` walks the readings of one sensor in time order, starting from the unresolved alert of the rule
if there is one, and answers the actions to take:

* a reading **matches** when it violates the rule (threshold: outside ``[min, max]``; rate of change: the
  absolute change per minute since the previous reading exceeds ``max_rate_per_min``; anomaly score: an
  anomaly with ``score >= min_score`` exists at its timestamp);
* **open** after ``k`` matching readings within ``window`` (only matching readings no alert of the rule has
  counted yet, and only at a reading of the batch being evaluated), unless suppressed;
* **observe** every matching reading while the alert is unresolved;
* **resolve** after ``m`` consecutive normal readings later than the alert's last matching reading.

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

from core.db.repositories.alerting import Point


def threshold_violation(params: dict[str, Any]) -> Callable[[Point | None, Point], bool]:
    low = params.get("min")
    high = params.get("max")

    def violates(_previous: Point | None, point: Point) -> bool:
        return (low is not None and point.value < low) or (high is not None and point.value > high)

    return violates


def rate_violation(params: dict[str, Any]) -> Callable[[Point | None, Point], bool]:
    max_rate = float(params["max_rate_per_min"])

    def violates(previous: Point | None, point: Point) -> bool:
        if previous is None:
            return False
        minutes = (point.timestamp - previous.timestamp).total_seconds() / 60.0
        if minutes <= 0:
            return False
        return abs(point.value - previous.value) / minutes > max_rate

    return violates


def anomaly_violation(anomalous: set[datetime]) -> Callable[[Point | None, Point], bool]:
    def violates(_previous: Point | None, point: Point) -> bool:
        return point.timestamp in anomalous

    return violates


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
    violates: Callable[[Point | None, Point], bool],
    *,
    k: int,
    window: timedelta,
    m: int,
    alert_open: bool,
    last_observed_at: datetime | None,
    observed: set[datetime],
    batch_start: datetime,
    suppressed: Callable[[datetime], bool],
    can_open: bool = True,
) -> Actions:
    actions = Actions()
    is_open = alert_open
    streak = 0
    pending: deque[Point] = deque()
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
            if point.timestamp in observed:
                continue  # already counted by an earlier alert of this rule
            pending.append(point)
            while pending and pending[0].timestamp < point.timestamp - window:
                pending.popleft()
            if can_open and len(pending) >= k and point.timestamp >= batch_start:
                if suppressed(point.timestamp):
                    actions.steps.append(("suppressed", point.timestamp))
                    continue
                actions.steps.append(("open", Opening(point.timestamp, list(pending))))
                is_open = True
                last_observed_at = point.timestamp
                pending.clear()
        else:
            streak += 1
            if is_open and streak >= m:
                actions.steps.append(("resolve", point.timestamp))
                is_open = False
                last_observed_at = None
                pending.clear()
    return actions


__all__ = [
    "Actions",
    "Opening",
    "anomaly_violation",
    "rate_violation",
    "simulate",
    "threshold_violation",
]
