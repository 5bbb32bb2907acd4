"""Suppression of alerts: maintenance windows (SQL only here; part of ``AlertingRepository``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.rule_models import MaintenanceWindow


class SuppressionQueries:
    _session: AsyncSession

    # --- suppression ------------------------------------------------------------------------------------------
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


__all__ = ["SuppressionQueries"]
