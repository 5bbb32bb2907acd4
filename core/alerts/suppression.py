"""When an alert must not open: the matching reading lies in a maintenance window of the sensor's asset (planned
downtime). An open work order does not suppress anything any more: later alerts on its asset attach to its
incident (``core.incidents.service``)."""

from __future__ import annotations

from datetime import datetime

from core.alerts.repository import SensorInfo


class Suppression:
    def __init__(self, windows: dict[int, list[tuple[datetime, datetime]]]) -> None:
        self._windows = windows

    def reason(self, sensor: SensorInfo | None, at: datetime) -> str | None:
        if sensor is None or sensor.asset_id is None:
            return None
        for starts_at, ends_at in self._windows.get(sensor.asset_id, []):
            if starts_at <= at < ends_at:
                return "maintenance_window"
        return None


__all__ = ["Suppression"]
