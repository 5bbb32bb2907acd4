"""``reading_filters`` drops only readings that cannot change what ``simulate`` does.

Random histories, rules and alert states: ``simulate`` over every reading of the window and over the readings the
filter keeps (the SQL predicate of ``AlertingRepository.readings_for``, mirrored here) must give the same steps.
The repository's SQL itself is checked against the same mirror in ``tests/agents/test_alerting.py``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from core.alerts.engine import rate_violation, simulate, threshold_violation
from core.alerts.window import reading_filters
from core.db.models import Alert, AlertRule
from core.db.repositories.alerting import Point, ReadingFilter

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SENSOR = "s-1"


def kept(f: ReadingFilter, points: list[Point], since: datetime, first: datetime, last_n: int) -> list[Point]:
    """What ``_FILTERED_READINGS_SQL`` answers for one sensor (``points`` are every stored reading)."""

    def keep(p: Point) -> bool:
        if not since <= p.timestamp:
            return False
        return (
            p.timestamp >= first
            or f.keep_all
            or (f.after is not None and p.timestamp > f.after)
            or (f.lo is not None and p.value < f.lo)
            or (f.hi is not None and p.value > f.hi)
        )

    chosen = {p.timestamp: p for p in points if keep(p)}
    chosen.update({p.timestamp: p for p in points[-last_n:]})
    return [chosen[t] for t in sorted(chosen)]


def scenario(rng: random.Random) -> None:
    n = rng.randint(5, 80)
    points = [Point(T0 + timedelta(minutes=i), rng.gauss(0.0, 1.0)) for i in range(n)]
    first_index = rng.randint(0, n - 1)
    first = points[first_index].timestamp
    rules = []
    for i in range(rng.randint(1, 3)):
        kind = "rate_of_change" if rng.random() < 0.15 else "threshold"
        params: dict[str, float] = {}
        if kind == "threshold":
            if rng.random() < 0.7:
                params["max"] = rng.uniform(0.3, 2.0)
            if rng.random() < 0.7 or not params:
                params["min"] = -rng.uniform(0.3, 2.0)
        else:
            params["max_rate_per_min"] = rng.uniform(0.5, 2.5)
        rules.append(
            AlertRule(
                id=i + 1,
                name=f"r{i}",
                kind=kind,
                params=params,
                open_after_k=rng.randint(1, 4),
                window_minutes=rng.randint(2, 30),
                resolve_after_m=rng.randint(1, 4),
            )
        )
    violates = {
        r.name: threshold_violation(r.params) if r.kind == "threshold" else rate_violation(r.params)
        for r in rules
    }
    unresolved: dict[tuple[str, str], Alert] = {}
    last_observed: dict[int, datetime] = {}
    observed: dict[str, set[datetime]] = {}
    for i, rule in enumerate(rules):
        matching = [
            p.timestamp
            for j, p in enumerate(points[:first_index])
            if violates[rule.name](points[j - 1] if j else None, p)
        ]
        observed[rule.name] = {t for t in matching if rng.random() < 0.3}
        if rng.random() < 0.5:
            alert = Alert(id=i + 1, sensor_id=SENSOR, rule=rule.name, status="open")
            unresolved[(SENSOR, rule.name)] = alert
            if matching and rng.random() < 0.9:
                last_observed[alert.id] = rng.choice(matching)
    pairs = [(r, SENSOR) for r in rules]
    (flt,) = reading_filters(pairs, unresolved, last_observed)
    since = first - timedelta(minutes=max(r.window_minutes for r in rules))
    last_n = max(r.resolve_after_m + r.open_after_k for r in rules) + 1
    everything = kept(ReadingFilter(SENSOR, keep_all=True), points, since, first, last_n)
    filtered = kept(flt, points, since, first, last_n)
    for rule in rules:
        alert = unresolved.get((SENSOR, rule.name))

        def run(pts: list[Point], rule: AlertRule = rule, alert: Alert | None = alert) -> list[object]:
            return simulate(
                pts,
                violates[rule.name],
                k=rule.open_after_k,
                window=timedelta(minutes=rule.window_minutes),
                m=rule.resolve_after_m,
                alert_open=alert is not None,
                last_observed_at=last_observed.get(alert.id) if alert is not None else None,
                observed=observed[rule.name],
                batch_start=first,
                suppressed=lambda at: at.minute % 7 == 0,
            ).steps

        assert run(filtered) == run(everything), (rule.name, rule.kind, rule.params, flt)


@pytest.mark.parametrize("seed", range(20))
def test_filtered_readings_give_the_same_actions(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        scenario(rng)


def test_filter_keeps_the_narrowest_bounds_and_the_earliest_alert() -> None:
    rules = [
        AlertRule(id=1, name="a", kind="threshold", params={"min": 1.0, "max": 9.0}),
        AlertRule(id=2, name="b", kind="threshold", params={"min": 2.0, "max": 12.0}),
        AlertRule(id=3, name="c", kind="anomaly_score", params={"min_score": 0.0}),
    ]
    unresolved = {
        (SENSOR, "a"): Alert(id=10, sensor_id=SENSOR, rule="a"),
        (SENSOR, "c"): Alert(id=11, sensor_id=SENSOR, rule="c"),
    }
    last = {10: T0 + timedelta(minutes=5), 11: T0 + timedelta(minutes=2)}
    (flt,) = reading_filters([(r, SENSOR) for r in rules], unresolved, last)
    assert flt == ReadingFilter(SENSOR, keep_all=False, after=T0 + timedelta(minutes=2), lo=2.0, hi=9.0)
    rate = AlertRule(id=4, name="d", kind="rate_of_change", params={"max_rate_per_min": 1.0})
    assert reading_filters([(rate, SENSOR)], {}, {})[0].keep_all
    no_obs = {(SENSOR, "a"): Alert(id=12, sensor_id=SENSOR, rule="a")}
    assert reading_filters([(rules[0], SENSOR)], no_obs, {})[0].keep_all
