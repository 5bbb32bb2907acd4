"""Reading incidents and sensor references for the API (services flush, never commit; SQL in the repositories)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.incident_models import Incident, IncidentEvent
from core.alerts.incident_repository import Evidence, IncidentRepository
from core.alerts.models import Alert
from core.anomaly.reference_models import SensorReference
from core.anomaly.reference_repository import ReferenceRepository
from core.errors import NotFound
from core.maintenance.models import MaintenanceTask


@dataclass(frozen=True, slots=True)
class IncidentView:
    incident: Incident
    alerts: Sequence[Alert]
    tasks: Sequence[MaintenanceTask]
    evidence: dict[int, Evidence]
    timeline: Sequence[IncidentEvent]


class IncidentReads:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._repo = IncidentRepository(session)

    async def page(
        self, *, status: str | None, asset_id: int | None, limit: int, offset: int
    ) -> tuple[Sequence[Incident], int]:
        return await self._repo.page(status=status, asset_id=asset_id, limit=limit, offset=offset)

    async def detail(self, incident_id: int) -> IncidentView:
        incident = await self._repo.get(incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return IncidentView(
            incident,
            await self._repo.alerts(incident_id),
            await self._repo.tasks(incident_id),
            await self._repo.evidence([incident_id]),
            await self._repo.events(incident_id),
        )

    async def references(self, sensor_id: str, limit: int = 50) -> Sequence[SensorReference]:
        if not await self._repo.sensor_exists(sensor_id):
            raise NotFound(f"sensor {sensor_id!r} does not exist")
        return await ReferenceRepository(self._session).history(sensor_id, limit)


__all__ = ["IncidentReads", "IncidentView"]
