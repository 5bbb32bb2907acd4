"""Which sensors are under maintenance when an alert would open (the alerting agent's suppression rule)."""

from __future__ import annotations

from datetime import datetime

from core.db.repositories.alerting import SensorInfo


class Suppression:
    """Which sensors are under maintenance: an active task of their asset or of the sensor itself (sensors
    without an asset get tasks too), or a window of their asset containing the time."""

    def __init__(
        self,
        active_tasks: set[int],
        windows: dict[int, list[tuple[datetime, datetime]]],
        sensors_with_tasks: set[str] | None = None,
    ) -> None:
        self._tasks = active_tasks
        self._windows = windows
        self._sensor_tasks = sensors_with_tasks or set()

    def reason(self, sensor: SensorInfo | None, at: datetime) -> str | None:
        if sensor is None:
            return None
        if sensor.sensor_id in self._sensor_tasks:
            return "maintenance_task"
        if sensor.asset_id is None:
            return None
        if sensor.asset_id in self._tasks:
            return "maintenance_task"
        for starts_at, ends_at in self._windows.get(sensor.asset_id, []):
            if starts_at <= at < ends_at:
                return "maintenance_window"
        return None


__all__ = ["Suppression"]
