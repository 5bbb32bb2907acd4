"""Attribution arithmetic of ``make bench-alerts`` (``core.backtest.alert_quality``) on hand-made episodes,
alerts and work orders, with exact expected counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.backtest.alert_quality import (
    AlertRow,
    Episode,
    WorkOrderRow,
    episode_of,
    fault_free_sensor_days,
    in_episode,
    judge,
    late_work_orders,
    outcome_for,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)
END = T0 + timedelta(hours=24)
GRACE = timedelta(minutes=20)
SENSORS = ("s1", "s2", "s3")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ep(sensor: str, kind: str, start_h: float) -> Episode:
    return Episode(sensor, kind, at(start_h), at(start_h + 0.5), GRACE)


EPISODES = [
    ep("s1", "drift", 1.0),  # detected, one work order
    ep("s2", "spike", 2.5),  # detected, two work orders (one within the grace)
    ep("s3", "drift", 4.0),  # missed: its only alert opened before the fault
    ep("s1", "spike", 5.5),  # detected by an alert, but its work order lists another sensor only
]
ALERTS = [
    AlertRow(1, "s1", "anomaly-score", "high", at(1.05)),
    AlertRow(2, "s1", "temperature-high", "high", at(1.4)),
    AlertRow(3, "s2", "anomaly-score", "high", at(2.55)),
    AlertRow(4, "s2", "anomaly-score", "high", at(3.0) + timedelta(minutes=10)),  # in the grace
    AlertRow(5, "s3", "degradation", "medium", at(3.9)),  # before its fault: a fault-free alert
    AlertRow(6, "s1", "anomaly-score", "high", at(5.6)),
    AlertRow(7, "s2", "flatline", "high", at(5.61)),  # fault-free sensor
    AlertRow(8, "s3", "anomaly-score", "high", at(10.0)),  # fault-free
    AlertRow(9, "s1", "anomaly-score", "high", at(1.0) - timedelta(hours=2)),  # history: before the span
]
ORDERS = [
    WorkOrderRow(1, at(1.05), ("s1",), ("anomaly-score", "temperature-high"), "high", (1, 2)),
    WorkOrderRow(2, at(2.55), ("s2",), ("anomaly-score",), "high", (3,)),
    WorkOrderRow(3, at(3.0) + timedelta(minutes=10), ("s2",), ("anomaly-score",), "high", (4,)),
    WorkOrderRow(4, at(5.61), ("s2",), ("flatline",), "high", (7,)),  # false: s2 is healthy then
    WorkOrderRow(5, at(10.0), ("s3", "s1"), ("anomaly-score",), "high", (8,)),  # false: nobody faulty
    WorkOrderRow(
        6, at(1.5) + timedelta(minutes=21), ("s1",), ("anomaly-score",), "high", ()
    ),  # after the grace
    WorkOrderRow(7, at(-1.0), ("s1",), ("anomaly-score",), "high", (9,)),  # history
]


def test_episode_windows_include_the_grace() -> None:
    e = EPISODES[0]
    assert e.window_end == at(1.5) + GRACE
    assert e.holds(at(1.0)) and e.holds(e.window_end)
    assert not e.holds(at(1.0) - timedelta(seconds=1)) and not e.holds(e.window_end + timedelta(seconds=1))
    assert in_episode("s1", at(1.2), EPISODES) and not in_episode("s2", at(1.2), EPISODES)


def test_work_orders_belong_to_the_episode_of_their_evidence_and_time() -> None:
    assert episode_of(ORDERS[0], EPISODES) == EPISODES[0]
    assert episode_of(ORDERS[2], EPISODES) == EPISODES[1]  # in the grace
    assert episode_of(ORDERS[3], EPISODES) is None  # during s1's episode, but only s2 in its evidence
    assert episode_of(ORDERS[5], EPISODES) is None  # one minute after the grace
    assert [outcome_for(w, EPISODES) for w in ORDERS[:6]] == [
        "fault_confirmed", "fault_confirmed", "fault_confirmed", "no_fault_found", "no_fault_found",
        "no_fault_found",
    ]  # fmt: skip
    both = WorkOrderRow(10, at(5.7), ("s2", "s1"))
    assert outcome_for(both, EPISODES) == "fault_confirmed"  # the faulty sensor is among its evidence


def test_fault_free_sensor_days() -> None:
    # 3 sensors × 1 day minus the windows: s1 2 × 50 min, s2 50 min, s3 50 min
    assert fault_free_sensor_days(SENSORS, T0, END, EPISODES) == pytest.approx(3 - 4 * 50 / 1440)
    # overlapping windows of one sensor count once; windows are clipped to the span
    overlapping = [ep("s1", "drift", 1.0), ep("s1", "spike", 1.25), ep("s2", "drift", 23.9)]
    covered_s1 = (at(1.75) + GRACE - at(1.0)).total_seconds()
    covered_s2 = (END - at(23.9)).total_seconds()
    expected = (3 * 86400 - covered_s1 - covered_s2) / 86400
    assert fault_free_sensor_days(SENSORS, T0, END, overlapping) == pytest.approx(expected)


def test_judge_counts_per_class_and_the_false_work_orders() -> None:
    q = judge(EPISODES, ALERTS, ORDERS, sensors=SENSORS, start=T0, end=END, kinds=["drift", "spike", "stuck"])
    assert list(q.classes) == ["drift", "spike", "stuck"]
    drift, spike, stuck = q.classes["drift"], q.classes["spike"], q.classes["stuck"]
    assert (drift.injected, drift.detected, drift.work_orders) == (2, 1, (1, 0))
    assert (spike.injected, spike.detected, spike.work_orders) == (2, 2, (2, 0))
    assert (stuck.injected, stuck.detected, stuck.work_orders) == (0, 0, ())
    assert drift.exactly_one == 1 and spike.exactly_one == 0
    assert drift.distribution == {0: 1, 1: 1} and spike.distribution == {0: 1, 2: 1}
    assert drift.minutes_to_work_order == pytest.approx((3.0,))
    assert spike.minutes_to_work_order == pytest.approx((3.0,))  # the first of its two
    assert spike.median_minutes == pytest.approx(3.0) and stuck.median_minutes is None
    assert dict(drift.rules) == {"anomaly-score": 1, "temperature-high": 1}
    assert [r.detected for r in q.episodes] == [True, True, False, True]
    assert [w.id for w in q.false_work_orders] == [4, 5, 6]  # history (7) does not count
    assert q.fault_free_sensor_days == pytest.approx(3 - 4 * 50 / 1440)
    assert q.false_per_sensor_day == pytest.approx(3 / (3 - 4 * 50 / 1440))
    assert [a.id for a in q.healthy_alerts] == [5, 7, 8]
    assert q.healthy_alerts_by_rule == {"degradation": 1, "flatline": 1, "anomaly-score": 1}


def test_judge_defaults_to_the_episodes_kinds() -> None:
    q = judge(EPISODES, [], [], sensors=SENSORS, start=T0, end=END)
    assert list(q.classes) == ["drift", "spike"]
    assert all(c.detected == 0 and c.work_orders == (0, 0) for c in q.classes.values())
    assert q.false_work_orders == () and q.false_per_sensor_day == 0.0


def test_late_work_orders() -> None:
    alerts = [
        AlertRow(1, "s1", "anomaly-score", "high", at(1.1)),
        AlertRow(2, "s1", "vibration-zone-d", "critical", at(1.4)),
        AlertRow(3, "s1", "degradation", "medium", at(1.0)),  # medium: opens no work order on its own
    ]
    on_time = WorkOrderRow(1, at(1.1), ("s1",), alert_ids=(1, 2, 3))
    late = WorkOrderRow(2, at(1.4), ("s1",), alert_ids=(1, 2, 3))
    assert late_work_orders([on_time], alerts) == []
    assert late_work_orders([late], alerts) == [(late, alerts[0])]
    assert late_work_orders([WorkOrderRow(3, at(1.4), ("s1",), alert_ids=(2, 3))], alerts) == []
