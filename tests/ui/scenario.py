"""Incidents, work orders and healthy references made by the platform itself: readings are sent to the console's
API (tests/ui/conftest.py) and the agents it hosts open the alerts, join them into incidents, open and escalate the
work orders and learn the references. Waits poll the API (or the outbox) with a deadline; no sleeps as waits.

* ``press`` (asset ``ui-press-line``): the temperature overheats (``temperature-high``, high) → an incident and a
  work order; ten minutes later the vibration reaches ISO 10816 zone D (critical) on the same asset → its alert
  joins the incident, is attached to the work order and escalates it to critical.
* ``dryer`` (asset ``ui-dryer``): humidity too high for four minutes (``humidity-high``, medium), then normal for
  long enough (10 readings, 30-minute hold) → the alert resolves, the incident is resolved, no work order.
* ``kiln`` (asset ``ui-kiln``): overheating → incident and work order; the work order is completed
  (fault_confirmed) through the API → the incident is closed.
* ``ui-ref-press`` (asset ``ui-compressor``): 25 h of readings around 5 bar → the initial reference; a 7-hour gap
  (the machine stopped); then readings around 6 bar → a regime-change reference learned from them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from core.config import to_libpq_url

DEADLINE_S = 60.0
T = TypeVar("T")


@dataclass(frozen=True)
class Scenario:
    press_incident: int
    press_task: int
    press_alerts: dict[str, int]
    """rule → alert id, on the press line (``temperature-high`` opened the work order, the zone-D one escalated
    it)."""
    dryer_incident: int
    kiln_incident: int
    kiln_task: int
    reference_sensor: str = "ui-ref-press"


def until(what: str, probe: Callable[[], T | None], timeout: float = DEADLINE_S) -> T:
    """Poll ``probe`` until it answers something truthy (returned) or the deadline passes (fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)  # poll interval, not a wait for a result


def _unpublished(database_url: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(to_libpq_url(database_url))
        try:
            return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
        finally:
            await conn.close()

    return asyncio.run(count())


def build(api: Any) -> Scenario:
    """Drive the scenario through ``api`` (a ``ConsoleApi``); answers the ids the tests look for."""
    base = datetime.now(UTC).replace(second=0, microsecond=0)

    def at(minutes_ago: float) -> str:
        return (base - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")

    def post(path: str, body: Any) -> Any:
        response = api.call("POST", path, json=body)
        assert response.status_code in (200, 201, 202), response.text
        return response.json()

    def asset_with(name: str, *sensors: tuple[str, str, str]) -> int:
        asset_id = int(post("/api/v1/assets", {"name": name})["id"])
        for sensor_id, sensor_type, unit in sensors:
            post(
                "/api/v1/sensors",
                {"sensor_id": sensor_id, "type": sensor_type, "unit": unit, "asset_id": asset_id},
            )
        return asset_id

    def readings(
        sensor_id: str, unit: str, values: list[float], first_minutes_ago: float, every: float = 1.0
    ):
        return [
            {"sensor_id": sensor_id, "timestamp": at(first_minutes_ago - i * every), "value": v, "unit": unit}
            for i, v in enumerate(values)
        ]

    def noisy(level: float, count: int, step: float = 0.1) -> list[float]:
        return [level + step * ((i * 7) % 5 - 2) for i in range(count)]

    def tasks(**params: Any) -> list[dict[str, Any]]:
        return list(api.get("/api/v1/maintenance/tasks", **params)["items"])

    def incidents(**params: Any) -> list[dict[str, Any]]:
        return list(api.get("/api/v1/incidents", **params)["items"])

    # the press line: overheating opens a work order, zone-D vibration on the same asset joins and escalates it
    press = asset_with(
        "ui-press-line", ("ui-press-temp", "temperature", "°C"), ("ui-press-vib", "vibration", "mm/s")
    )
    post("/api/v1/data/ingest", readings("ui-press-temp", "°C", noisy(20.0, 40), 200)
         + readings("ui-press-vib", "mm/s", noisy(2.0, 40), 200))  # fmt: skip
    post("/api/v1/data/ingest", readings("ui-press-temp", "°C", [95.0, 96.0, 97.0, 98.0], 150))
    [task] = until("the press line's work order", lambda: tasks(asset_id=press))
    post("/api/v1/data/ingest", readings("ui-press-vib", "mm/s", [12.0, 13.0, 14.0, 15.0], 140))
    until("the escalation to critical", lambda: api.get(f"/api/v1/maintenance/tasks/{task['id']}")["priority"]
          == "critical")  # fmt: skip

    # the dryer: a medium alert that resolves on its own
    dryer = asset_with("ui-dryer", ("ui-dryer-hum", "humidity", "%RH"))
    post("/api/v1/data/ingest", readings("ui-dryer-hum", "%RH", [95.0] * 4, 120)
         + readings("ui-dryer-hum", "%RH", noisy(50.0, 15, 1.0), 80))  # fmt: skip
    [dryer_incident] = until(
        "the dryer's resolved incident", lambda: incidents(asset_id=dryer, status="resolved")
    )

    # the kiln: a work order completed with fault_confirmed closes its incident
    kiln = asset_with("ui-kiln", ("ui-kiln-temp", "temperature", "°C"))
    post("/api/v1/data/ingest", readings("ui-kiln-temp", "°C", [99.0] * 4, 100))
    [kiln_task] = until("the kiln's work order", lambda: tasks(asset_id=kiln))
    post(f"/api/v1/maintenance/tasks/{kiln_task['id']}/complete",
         {"outcome": "fault_confirmed", "technician": "ana", "notes": "thermocouple replaced"})  # fmt: skip
    [kiln_incident] = until("the kiln's closed incident", lambda: incidents(asset_id=kiln, status="closed"))

    # a compressor: 25 h around 5 bar, a 7-hour stop, then around 6 bar → initial and regime-change references
    asset_with("ui-compressor", ("ui-ref-press", "pressure", "bar"))
    post("/api/v1/data/ingest", readings("ui-ref-press", "bar", noisy(5.0, 151, 0.05), 40 * 60, every=10))
    until("the initial reference", lambda: [r for r in api.get("/api/v1/sensors/ui-ref-press/references")["items"]
                                            if r["status"] == "ready"])  # fmt: skip
    post("/api/v1/data/ingest", readings("ui-ref-press", "bar", noisy(6.0, 36, 0.05), 8 * 60, every=10))
    until("the regime-change reference", lambda: [
        r for r in api.get("/api/v1/sensors/ui-ref-press/references")["items"]
        if r["kind"] == "regime_change" and r["status"] == "ready"
    ])  # fmt: skip

    until("every event handled", lambda: _unpublished(api.settings.database_url) == 0)
    alerts = (
        api.get("/api/v1/alerts", sensor_id="ui-press-temp")["items"]
        + api.get("/api/v1/alerts", sensor_id="ui-press-vib")["items"]
    )
    return Scenario(
        press_incident=int(task["incident_id"]),
        press_task=int(task["id"]),
        press_alerts={a["rule"]: a["id"] for a in alerts if a["rule"] != "anomaly-score"},
        dryer_incident=int(dryer_incident["id"]),
        kiln_incident=int(kiln_incident["id"]),
        kiln_task=int(kiln_task["id"]),
    )
