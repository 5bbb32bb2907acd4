"""Injected-fault ground truth (SQL only here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from core.simulation.models import InjectedFault


class FaultLike(Protocol):
    @property
    def sensor_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def magnitude(self) -> float | None: ...
    @property
    def description(self) -> str | None: ...


class FaultRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def replace(self, faults: Sequence[FaultLike]) -> int:
        """Store ``faults``, replacing any stored fault with the same ``(sensor_id, kind, started_at)``.

        Running it twice with the same faults leaves one row per fault. Returns the number of rows written.
        """
        if not faults:
            return 0
        keys = {(f.sensor_id, f.kind, f.started_at) for f in faults}
        await self._session.execute(
            delete(InjectedFault).where(
                tuple_(InjectedFault.sensor_id, InjectedFault.kind, InjectedFault.started_at).in_(list(keys))
            )
        )
        await self._session.execute(
            insert(InjectedFault),
            [
                {
                    "sensor_id": f.sensor_id,
                    "kind": f.kind,
                    "started_at": f.started_at,
                    "ended_at": f.ended_at,
                    "magnitude": f.magnitude,
                    "description": f.description,
                }
                for f in faults
            ],
        )
        return len(faults)

    async def delete_for_sensors(self, sensor_ids: Sequence[str]) -> int:
        """Remove every fault record of these sensors; returns how many were removed."""
        result = await self._session.execute(
            delete(InjectedFault).where(InjectedFault.sensor_id.in_(list(sensor_ids)))
        )
        return cast("CursorResult[Any]", result).rowcount or 0  # a DELETE's result is a CursorResult

    async def list_for_sensors(self, sensor_ids: Sequence[str] | None = None) -> list[InjectedFault]:
        """Fault records sorted by sensor, start time and kind."""
        stmt = select(InjectedFault).order_by(
            InjectedFault.sensor_id, InjectedFault.started_at, InjectedFault.kind, InjectedFault.id
        )
        if sensor_ids is not None:
            stmt = stmt.where(InjectedFault.sensor_id.in_(list(sensor_ids)))
        return list((await self._session.scalars(stmt)).all())
