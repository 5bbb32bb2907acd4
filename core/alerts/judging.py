"""What the alert rules judge, as plain functions of their inputs (``core.alerts.service`` runs them):

* ``hysteresis_of(rule)``: the rule's k-of-n / m / hold / max-age hysteresis (``core.alerts.engine``);
* ``reading_violation(kind, params)``: the violation test of a threshold, rate-of-change or flat-line rule;
* ``matching_anomalies(anomalies, params)``: the anomalies an anomaly-score rule counts;
* ``evaluation_start(first, evaluated_until)``: where a sensor's evaluation starts;
* ``Judged``: one (rule, sensor) pair to evaluate, with the rule's params in the sensor's unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.alerts.engine import Hysteresis, Violation, flatline_violation, rate_violation, threshold_violation
from core.alerts.repository import AnomalyPoint, SensorInfo
from core.alerts.rule_models import AlertRule


def hysteresis_of(rule: AlertRule, *, min_k: int = 1) -> Hysteresis:
    """The rule's hysteresis; ``min_k`` raises k (and n with it), e.g. for a flat line longer than the sensor's
    longest healthy one."""
    k = max(rule.open_after_k, min_k)
    return Hysteresis(
        k=k,
        n=max(rule.window_readings, k),
        m=rule.resolve_after_m,
        max_age=timedelta(minutes=rule.max_age_minutes) if rule.max_age_minutes else None,
        hold=timedelta(minutes=rule.min_hold_minutes or 0.0),
    )


@dataclass(frozen=True, slots=True)
class Judged:
    """One (rule, sensor) to evaluate: the rule's params in the sensor's unit and its hysteresis."""

    rule: AlertRule
    sensor: SensorInfo
    params: dict[str, Any]
    hysteresis: Hysteresis


def evaluation_start(first: datetime, evaluated_until: datetime | None) -> datetime:
    """Where a sensor's evaluation starts: just after its last evaluated reading when that lies before ``first``."""
    if evaluated_until is not None and evaluated_until < first:
        return evaluated_until + timedelta(microseconds=1)
    return first


def reading_violation(kind: str, params: dict[str, Any]) -> Violation:
    if kind == "threshold":
        return threshold_violation(params)
    if kind == "rate_of_change":
        return rate_violation(params)
    if kind == "flatline":
        return flatline_violation(params)
    raise ValueError(f"no reading violation for rule kind {kind!r}")


def matching_anomalies(anomalies: Sequence[AnomalyPoint], params: dict[str, Any]) -> dict[datetime, AnomalyPoint]:
    """The anomalies an anomaly-score rule counts (its methods, ``score >= min_score``), by timestamp (the highest
    score when several methods flagged the same reading)."""
    methods = params.get("methods")
    min_score = float(params.get("min_score", 0.0))
    out: dict[datetime, AnomalyPoint] = {}
    for a in anomalies:
        if a.score < min_score or (methods is not None and a.method not in methods):
            continue
        held = out.get(a.timestamp)
        if held is None or a.score > held.score:
            out[a.timestamp] = a
    return out


__all__ = ["Judged", "evaluation_start", "hysteresis_of", "matching_anomalies", "reading_violation"]
