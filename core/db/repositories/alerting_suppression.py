"""Suppression of alerts: active work orders and maintenance windows (SQL only here; part of
``AlertingRepository``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import MaintenanceTask, MaintenanceWindow

#: Work-order statuses that suppress new alerts on the asset.
ACTIVE_TASK_STATUSES = ("open", "in_progress")


class SuppressionQueries:
    _session: AsyncSession

    # --- suppression ------------------------------------------------------------------------------------------
    async def assets_with_active_tasks(self, asset_ids: Iterable[int]) -> set[int]:
        ids = [a for a in set(asset_ids) if a is not None]
        if not ids:
            return set()
        rows = await self._session.scalars(
            select(MaintenanceTask.asset_id)
            .where(MaintenanceTask.asset_id.in_(ids), MaintenanceTask.status.in_(ACTIVE_TASK_STATUSES))
            .distinct()
        )
        return {int(a) for a in rows if a is not None}

    async def sensors_with_active_tasks(self, sensor_ids: Iterable[str]) -> set[str]:
        """Sensors that have a task ``open``/``in_progress`` of their own (what counts for a sensor without an
        asset, whose tasks carry only ``sensor_id``)."""
        ids = list(set(sensor_ids))
        if not ids:
            return set()
        rows = await self._session.scalars(
            select(MaintenanceTask.sensor_id)
            .where(MaintenanceTask.sensor_id.in_(ids), MaintenanceTask.status.in_(ACTIVE_TASK_STATUSES))
            .distinct()
        )
        return {str(s) for s in rows if s is not None}

    async def maintenance_windows(
        self, asset_ids: Iterable[int], since: datetime, until: datetime
    ) -> dict[int, list[tuple[datetime, datetime]]]:
        """Windows of the assets overlapping ``[since, until]``."""
        ids = [a for a in set(asset_ids) if a is not None]
        out: dict[int, list[tuple[datetime, datetime]]] = {}
        if not ids:
            return out
        rows = await self._session.execute(
            select(MaintenanceWindow.asset_id, MaintenanceWindow.starts_at, MaintenanceWindow.ends_at).where(
                MaintenanceWindow.asset_id.in_(ids),
                MaintenanceWindow.starts_at <= until,
                MaintenanceWindow.ends_at > since,
            )
        )
        for asset_id, starts_at, ends_at in rows:
            out.setdefault(asset_id, []).append((starts_at, ends_at))
        return out

    async def add_window(
        self, asset_id: int, starts_at: datetime, ends_at: datetime, reason: str | None
    ) -> int:
        row = (
            await self._session.execute(
                insert(MaintenanceWindow)
                .values(asset_id=asset_id, starts_at=starts_at, ends_at=ends_at, reason=reason)
                .returning(MaintenanceWindow.id)
            )
        ).one()
        return int(row[0])


__all__ = ["ACTIVE_TASK_STATUSES", "SuppressionQueries"]
