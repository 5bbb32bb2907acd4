"""Reading incidents (with their alerts, work orders, evidence and timeline), the evidence of work orders and
sensor references for the API (reads only; SQL in the repositories)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.models import Alert
from core.anomaly.reference_models import SensorReference
from core.anomaly.reference_repository import ReferenceRepository
from core.errors import NotFound
from core.incidents.models import Incident, IncidentEvent
from core.incidents.repository import IncidentRepository
from core.queries.incident_repository import Evidence, IncidentQueries
from core.workorders.models import MaintenanceTask


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
        self._queries = IncidentQueries(session)

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
            await self._queries.alerts(incident_id),
            await self._queries.tasks(incident_id),
            await self._queries.evidence([incident_id]),
            await self._repo.events(incident_id),
        )

    async def work_order_evidence(self, tasks: Sequence[MaintenanceTask]) -> dict[int, Evidence]:
        """The evidence of the work orders' incidents, by incident id."""
        return await self._queries.evidence([t.incident_id for t in tasks if t.incident_id is not None])

    async def references(self, sensor_id: str, limit: int = 50) -> Sequence[SensorReference]:
        if not await self._repo.sensor_exists(sensor_id):
            raise NotFound(f"sensor {sensor_id!r} does not exist")
        return await ReferenceRepository(self._session).history(sensor_id, limit)


__all__ = ["Evidence", "IncidentReads", "IncidentView"]
