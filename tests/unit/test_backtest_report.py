"""The back-test report from the API's JSON (synthetic items carrying the event-time fields: ``event_opened_at``
on alerts and work orders, ``evidence.sensors`` on work orders)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core.backtest.report import build_report, hours_before, missing_fields, parse_time, work_order_sensors

END = datetime(2003, 11, 25, 23, 39, 56, tzinfo=UTC)
START = datetime(2003, 10, 22, 12, 6, 24, tzinfo=UTC)
SENSORS = {"B3_rms": "Bearing3", "B3_kurt": "Bearing3", "B4_rms": "Bearing4"}
ASSETS = {1: "Bearing3", 2: "Bearing4", 9: "Other"}


def _page(total: int, *timestamps: str, sensor_id: str = "B3_rms") -> dict[str, object]:
    return {
        "total": total,
        "limit": 1,
        "offset": 0,
        "items": [
            {"id": i, "sensor_id": sensor_id, "timestamp": t, "score": 7.0} for i, t in enumerate(timestamps)
        ],
    }


def _alert(alert_id: int, sensor_id: str, opened: str | None) -> dict[str, object]:
    return {
        "id": alert_id,
        "sensor_id": sensor_id,
        "rule": "anomaly-score",
        "severity": "high",
        "status": "open",
        "opened_at": "2026-01-01T00:00:00Z",  # wall clock of the run: never used
        "incident_id": 1,
        "event_opened_at": opened,
        "last_seen_at": opened,
        "event_resolved_at": None,
    }


def _order(task_id: int, asset_id: int, opened: str | None, *sensors: str) -> dict[str, object]:
    return {
        "id": task_id,
        "asset_id": asset_id,
        "sensor_id": sensors[0] if sensors else None,
        "created_at": "2026-01-01T00:00:01Z",  # wall clock: never used
        "incident_id": 1,
        "event_opened_at": opened,
        "evidence": {"sensors": list(sensors), "rules": ["anomaly-score"], "alert_ids": [1]},
    }


def test_report_per_sensor_and_work_orders() -> None:
    report = build_report(
        end=END,
        start=START,
        sensors=SENSORS,
        anomalies={
            "B3_rms": _page(42, "2003-11-20T10:00:00Z"),
            "B3_kurt": _page(3, "2003-11-21T08:00:00+01:00", sensor_id="B3_kurt"),
            "B4_rms": _page(0),
        },
        alerts=[
            _alert(1, "B3_rms", "2003-11-22T00:00:00Z"),
            _alert(2, "B3_rms", "2003-11-24T12:00:00Z"),
            _alert(3, "B3_kurt", "2003-11-23T00:00:00Z"),
            _alert(4, "someone-else", "2003-11-23T00:00:00Z"),  # not replayed: ignored
            _alert(5, "B3_rms", "2003-09-01T00:00:00Z"),  # before the replay (an earlier run): ignored
            _alert(1, "B3_rms", "2003-11-22T00:00:00Z"),  # same alert on two pages: once
        ],
        work_orders=[
            _order(7, 1, "2003-11-24T12:00:00Z", "B3_rms", "B3_kurt"),
            _order(5, 1, "2003-11-22T00:10:00Z", "B3_rms"),
            _order(8, 9, "2003-11-22T00:00:00Z", "other-sensor"),  # no replayed sensor: ignored
        ],
        asset_names=ASSETS,
    )
    assert report["end"] == "2003-11-25T23:39:56+00:00"
    assert report["sensors"] == {
        "B3_rms": {
            "asset": "Bearing3",
            "first_anomaly": "2003-11-20T10:00:00+00:00",
            "first_alert": "2003-11-22T00:00:00+00:00",
            "first_work_order": "2003-11-22T00:10:00+00:00",
            "anomalies": 42,
            "alerts": 2,
            "work_orders": 2,
        },
        "B3_kurt": {
            "asset": "Bearing3",
            "first_anomaly": "2003-11-21T07:00:00+00:00",  # offsets normalised to UTC
            "first_alert": "2003-11-23T00:00:00+00:00",
            "first_work_order": "2003-11-24T12:00:00+00:00",
            "anomalies": 3,
            "alerts": 1,
            "work_orders": 1,
        },
        "B4_rms": {
            "asset": "Bearing4",
            "first_anomaly": None,
            "first_alert": None,
            "first_work_order": None,
            "anomalies": 0,
            "alerts": 0,
            "work_orders": 0,
        },
    }
    assert report["work_orders"] == [  # by event time
        {"id": 5, "asset": "Bearing3", "opened_at": "2003-11-22T00:10:00+00:00", "sensors": ["B3_rms"]},
        {
            "id": 7,
            "asset": "Bearing3",
            "opened_at": "2003-11-24T12:00:00+00:00",
            "sensors": ["B3_rms", "B3_kurt"],
        },
    ]
    json.dumps(report)  # plain JSON


def test_without_event_fields_counts_remain_and_firsts_are_null() -> None:
    """An API without the event-time fields (alerts without ``event_opened_at``, tasks without ``evidence``)."""
    alerts = [{"id": 1, "sensor_id": "B3_rms", "opened_at": "2026-01-01T00:00:00Z"}]
    orders = [{"id": 3, "asset_id": 1, "sensor_id": "B3_rms", "created_at": "2026-01-01T00:00:01Z"}]
    assert missing_fields(alerts, orders) == [
        "alerts.event_opened_at",
        "work_orders.event_opened_at",
        "work_orders.evidence",
    ]
    assert missing_fields([_alert(1, "B3_rms", None)], [_order(1, 1, None, "B3_rms")]) == []
    assert missing_fields([], []) == []
    report = build_report(
        end=END, start=START, sensors={"B3_rms": "Bearing3"}, anomalies={}, alerts=alerts, work_orders=orders,
        asset_names=ASSETS,
    )  # fmt: skip
    assert report["sensors"]["B3_rms"] == {
        "asset": "Bearing3",
        "first_anomaly": None,
        "first_alert": None,
        "first_work_order": None,
        "anomalies": 0,
        "alerts": 1,
        "work_orders": 1,
    }
    assert report["work_orders"] == [{"id": 3, "asset": "Bearing3", "opened_at": None, "sensors": ["B3_rms"]}]


def test_helpers() -> None:
    assert parse_time(None) is None
    assert parse_time("2003-11-25T23:39:56") == END  # naive: UTC
    assert parse_time("2003-11-26T00:39:56+01:00") == END
    assert hours_before(END, datetime(2003, 11, 25, 11, 39, 56, tzinfo=UTC)) == 12.0
    assert hours_before(END, None) is None
    assert work_order_sensors({"evidence": {"sensors": ["a", "b"]}, "sensor_id": "a"}) == ["a", "b"]
    assert work_order_sensors({"evidence": None, "sensor_id": "a"}) == ["a"]
    assert work_order_sensors({"sensor_id": None}) == []
