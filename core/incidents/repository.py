"""Incidents of assets and their timeline (SQL only here). Their alerts, work orders and evidence are read by
``core.queries.incident_repository``; an incident's active work order by ``core.workorders.repository``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.pages import equal_to, fetch_page
from core.fleet.models import Sensor
from core.incidents.models import Incident, IncidentEvent

_LOCK_SQL = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose incidents: an asset's, or those of a sensor without an asset."""

    asset_id: int | None
    sensor_id: str | None

    @property
    def key(self) -> str:
        return f"incident:asset:{self.asset_id}" if self.asset_id is not None else f"incident:sensor:{self.sensor_id}"


class IncidentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self, scope: Scope) -> None:
        """Serialise the transactions deciding about one asset's incidents (until commit or rollback)."""
        await self._session.execute(_LOCK_SQL, {"key": scope.key})

    async def lock_incident(self, incident_id: int) -> Incident | None:
        return await self._session.scalar(
            select(Incident)
            .where(Incident.id == incident_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def _scope_filter(self, scope: Scope) -> ColumnElement[bool]:
        if scope.asset_id is not None:
            return Incident.asset_id == scope.asset_id
        return (Incident.sensor_id == scope.sensor_id) & Incident.asset_id.is_(None)

    async def joinable(self, scope: Scope, resolved_since: datetime) -> Incident | None:
        """The scope's open incident, else its latest incident resolved (not closed) with evidence at or after
        ``resolved_since`` (the correlation window)."""
        stmt = (
            select(Incident)
            .where(
                self._scope_filter(scope),
                (Incident.status == "open")
                | ((Incident.status == "resolved") & (Incident.last_seen_at >= resolved_since)),
            )
            .order_by((Incident.status == "open").desc(), Incident.last_seen_at.desc(), Incident.id.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        return (await self._session.scalars(stmt)).first()

    async def create(self, scope: Scope, *, severity: str, seen_at: datetime, peak_score: float | None) -> Incident:
        row = (
            await self._session.scalars(
                insert(Incident)
                .values(
                    asset_id=scope.asset_id,
                    sensor_id=scope.sensor_id if scope.asset_id is None else None,
                    status="open",
                    severity=severity,
                    first_seen_at=seen_at,
                    last_seen_at=seen_at,
                    peak_score=peak_score,
                    alert_count=0,
                )
                .returning(Incident)
            )
        ).one()
        return row

    async def update(self, incident_id: int, values: dict[str, Any]) -> None:
        await self._session.execute(
            update(Incident)
            .where(Incident.id == incident_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def touch(self, incident_id: int, seen_at: datetime, peak_score: float | None) -> None:
        """New evidence of an alert already in the incident: last seen (and peak score) move forward."""
        values: dict[str, Any] = {"last_seen_at": func.greatest(Incident.last_seen_at, seen_at)}
        if peak_score is not None:
            values["peak_score"] = func.greatest(func.coalesce(Incident.peak_score, peak_score), peak_score)
        await self.update(incident_id, values)

    async def add_event(
        self,
        incident_id: int,
        kind: str,
        *,
        event_at: datetime | None = None,
        alert_id: int | None = None,
        task_id: int | None = None,
        note: str | None = None,
    ) -> None:
        await self._session.execute(
            insert(IncidentEvent).values(
                incident_id=incident_id,
                kind=kind,
                event_at=event_at,
                alert_id=alert_id,
                task_id=task_id,
                note=note,
            )
        )

    async def note_on_open_incident(
        self, sensor_id: str, kind: str, *, event_at: datetime | None, note: str
    ) -> int | None:
        """Add a timeline entry to the open incident of the sensor's asset (or of the sensor, without an asset);
        answers its id, None when there is none."""
        asset_id = await self._session.scalar(select(Sensor.asset_id).where(Sensor.sensor_id == sensor_id))
        scope = Scope(asset_id, sensor_id)
        incident_id = await self._session.scalar(
            select(Incident.id).where(self._scope_filter(scope), Incident.status == "open").limit(1)
        )
        if incident_id is not None:
            await self.add_event(int(incident_id), kind, event_at=event_at, note=note)
        return incident_id

    # --- reads ------------------------------------------------------------------------------------------------
    async def sensor_exists(self, sensor_id: str) -> bool:
        return (await self._session.get(Sensor, sensor_id)) is not None

    async def get(self, incident_id: int) -> Incident | None:
        return await self._session.get(Incident, incident_id)

    async def events(self, incident_id: int) -> Sequence[IncidentEvent]:
        return (
            await self._session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(IncidentEvent.at, IncidentEvent.id)
            )
        ).all()

    async def page(
        self,
        *,
        status: str | None,
        asset_id: int | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Incident], int]:
        where = equal_to((Incident.status, status), (Incident.asset_id, asset_id))
        latest_first = (Incident.last_seen_at.desc(), Incident.id.desc())
        return await fetch_page(self._session, Incident, where, latest_first, limit=limit, offset=offset)


__all__ = ["IncidentRepository", "Scope"]
