"""The back-test report, built from the API's JSON (pure: no I/O).

Input, as the query API answers it:

* ``anomalies``: per replayed sensor, a page of ``GET /api/v1/anomalies?sensor_id=…`` (``{"total", "items"}``);
  ``total`` is the sensor's count, the earliest ``timestamp`` among ``items`` its first anomaly (the runner asks
  for one item sorted by ``timestamp`` ascending);
* ``alerts``: items of ``GET /api/v1/alerts`` (every page) — ``sensor_id`` and ``event_opened_at``, the event time
  of the reading that opened the alert;
* ``work_orders``: items of ``GET /api/v1/maintenance/tasks`` (every page) — ``id``, ``asset_id``,
  ``event_opened_at`` (event time at which the work order was opened) and ``evidence.sensors`` (the sensors whose
  alerts it gathers; without ``evidence`` the task's own ``sensor_id``).

Only the replayed sensors count: an alert of another sensor is ignored, a work order counts when one of its
sensors was replayed. Items whose event time lies outside ``[start, end]`` are left out (earlier runs against the
same platform); items without an event time are kept (the window cannot be checked) and contribute no "first".

Output (timestamps ISO 8601 in UTC, ``null`` where none)::

    {"end": ts,
     "sensors": {id: {"asset", "first_anomaly", "first_alert", "first_work_order",
                      "anomalies", "alerts", "work_orders"}},
     "work_orders": [{"id", "asset", "opened_at", "sensors"}]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

#: Fields of the query API's items the report needs beyond what every version has (see ``missing_fields``).
ALERT_EVENT_FIELDS = ("event_opened_at",)
WORK_ORDER_EVENT_FIELDS = ("event_opened_at", "evidence")


def parse_time(value: Any) -> datetime | None:
    """A timestamp of the API's JSON as an aware UTC datetime (``None`` stays ``None``; naive is read as UTC)."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()


def hours_before(end: datetime, when: datetime | None) -> float | None:
    return None if when is None else (end - when).total_seconds() / 3600.0


def work_order_sensors(task: Mapping[str, Any]) -> list[str]:
    """``evidence.sensors`` of a work order, else its own ``sensor_id`` (APIs without evidence)."""
    evidence = task.get("evidence")
    if isinstance(evidence, Mapping) and evidence.get("sensors") is not None:
        return [str(s) for s in evidence["sensors"]]
    sensor_id = task.get("sensor_id")
    return [str(sensor_id)] if sensor_id else []


def missing_fields(
    alerts: Sequence[Mapping[str, Any]], work_orders: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Event-time fields the API did not send (an older platform): the report's "first" times are then null."""
    missing = [f"alerts.{f}" for f in ALERT_EVENT_FIELDS if alerts and any(f not in a for a in alerts)]
    missing += [
        f"work_orders.{f}"
        for f in WORK_ORDER_EVENT_FIELDS
        if work_orders and any(f not in t for t in work_orders)
    ]
    return missing


def _within(when: datetime | None, start: datetime | None, end: datetime) -> bool:
    return when is None or ((start is None or when >= start) and when <= end)


def _earliest(times: Iterable[datetime | None]) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _unique(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Items once each (pages may overlap while the data changes), by ``id`` where there is one."""
    seen: set[Any] = set()
    out = []
    for item in items:
        key = item.get("id", id(item))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def build_report(
    *,
    end: datetime,
    sensors: Mapping[str, str],
    anomalies: Mapping[str, Mapping[str, Any]],
    alerts: Iterable[Mapping[str, Any]],
    work_orders: Iterable[Mapping[str, Any]],
    asset_names: Mapping[int, str],
    start: datetime | None = None,
) -> dict[str, Any]:
    """The report of a replay ending at ``end`` of ``sensors`` (sensor id → asset name); module docstring."""
    first_anomaly: dict[str, datetime | None] = {}
    anomaly_count: dict[str, int] = {}
    for sensor_id in sensors:
        page = anomalies.get(sensor_id) or {}
        items = [a for a in page.get("items", []) if a.get("sensor_id", sensor_id) == sensor_id]
        times = [parse_time(a.get("timestamp")) for a in items]
        first_anomaly[sensor_id] = _earliest(t for t in times if _within(t, start, end))
        anomaly_count[sensor_id] = int(page.get("total", len(items)))

    alert_times: dict[str, list[datetime | None]] = {s: [] for s in sensors}
    for alert in _unique(alerts):
        alert_sensor = alert.get("sensor_id")
        opened = parse_time(alert.get("event_opened_at"))
        if alert_sensor in alert_times and _within(opened, start, end):
            alert_times[alert_sensor].append(opened)

    orders: list[dict[str, Any]] = []
    order_times: dict[str, list[datetime | None]] = {s: [] for s in sensors}
    for task in _unique(work_orders):
        task_sensors = work_order_sensors(task)
        opened = parse_time(task.get("event_opened_at"))
        if not set(task_sensors) & set(sensors) or not _within(opened, start, end):
            continue
        asset_id = task.get("asset_id")
        orders.append(
            {
                "id": task["id"],
                "asset": asset_names.get(asset_id) if asset_id is not None else None,
                "opened_at": opened,
                "sensors": task_sensors,
            }
        )
        for sensor_id in task_sensors:
            if sensor_id in order_times:
                order_times[sensor_id].append(opened)
    orders.sort(key=lambda o: (o["opened_at"] is None, o["opened_at"] or end, o["id"]))

    return {
        "end": iso(end),
        "sensors": {
            sensor_id: {
                "asset": asset,
                "first_anomaly": iso(first_anomaly[sensor_id]),
                "first_alert": iso(_earliest(alert_times[sensor_id])),
                "first_work_order": iso(_earliest(order_times[sensor_id])),
                "anomalies": anomaly_count[sensor_id],
                "alerts": len(alert_times[sensor_id]),
                "work_orders": len(order_times[sensor_id]),
            }
            for sensor_id, asset in sensors.items()
        },
        "work_orders": [{**o, "opened_at": iso(o["opened_at"])} for o in orders],
    }


__all__ = [
    "build_report",
    "hours_before",
    "iso",
    "missing_fields",
    "parse_time",
    "work_order_sensors",
]
