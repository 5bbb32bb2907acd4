"""Read-side queries of incidents: their alerts, their work orders and the evidence they rest on (SQL only here;
the incidents themselves and their timeline are ``core.incidents.repository``'s)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.models import Alert
from core.incidents.models import Incident
from core.workorders.models import MaintenanceTask


@dataclass(frozen=True, slots=True)
class Evidence:
    """What an incident (and its work order) rests on."""

    sensors: list[str]
    rules: list[str]
    alert_ids: list[int]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    peak_score: float | None
    severity: str | None


class IncidentQueries:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def alerts(self, incident_id: int) -> Sequence[Alert]:
        return (
            await self._session.scalars(
                select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.event_opened_at, Alert.id)
            )
        ).all()

    async def tasks(self, incident_id: int) -> Sequence[MaintenanceTask]:
        return (
            await self._session.scalars(
                select(MaintenanceTask).where(MaintenanceTask.incident_id == incident_id).order_by(MaintenanceTask.id)
            )
        ).all()

    async def evidence(self, incident_ids: Sequence[int]) -> dict[int, Evidence]:
        """Per incident: its alerts' sensors, rules and ids, first/last seen, peak score and severity."""
        ids = sorted(set(incident_ids))
        if not ids:
            return {}
        incidents = {
            i.id: i for i in await self._session.scalars(select(Incident).where(Incident.id.in_(ids)))
        }
        rows = (
            await self._session.execute(
                select(Alert.incident_id, Alert.id, Alert.sensor_id, Alert.rule)
                .where(Alert.incident_id.in_(ids))
                .order_by(Alert.incident_id, Alert.event_opened_at, Alert.id)
            )
        ).all()
        grouped: dict[int, list[tuple[int, str, str]]] = {i: [] for i in ids}
        for incident_id, alert_id, sensor_id, rule in rows:
            assert incident_id is not None  # the query selects alerts of these incidents only
            grouped[incident_id].append((int(alert_id), sensor_id, rule))
        out: dict[int, Evidence] = {}
        for incident_id, alerts in grouped.items():
            incident = incidents.get(incident_id)
            out[incident_id] = Evidence(
                sensors=list(dict.fromkeys(a[1] for a in alerts)),
                rules=list(dict.fromkeys(a[2] for a in alerts)),
                alert_ids=[a[0] for a in alerts],
                first_seen_at=incident.first_seen_at if incident else None,
                last_seen_at=incident.last_seen_at if incident else None,
                peak_score=incident.peak_score if incident else None,
                severity=incident.severity if incident else None,
            )
        return out


__all__ = ["Evidence", "IncidentQueries"]
