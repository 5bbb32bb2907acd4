"""One fault, one incident, one work order: alerts of an asset within the correlation window join one incident.

``IncidentService`` (services flush, never commit; SQL in ``core.incidents.repository``; the alerting service in
``core.alerts.service`` calls it and links the alert to the incident, ``alerts.incident_id``):

* ``attach`` — when an alert opens: the asset's open incident, or its latest resolved one whose last evidence
  lies within the correlation window before the alert (event time; it is re-opened), or a new one. The incident's
  evidence moves (first/last seen, peak severity and score, alert count) and its timeline notes the alert. An
  alert attaching to an incident whose work order is active is *not* suppressed: it is visible on the incident
  and the work order, notifies, and may escalate the work order's priority (``core.maintenance``). The active work
  order is looked up in ``core.workorders``.
* ``touch`` — new matching readings of an unresolved alert: last seen (and peak score) move forward.
* ``alert_resolved`` — the incident resolves once none of its alerts is unresolved (the caller, which owns the
  alerts, says whether one is), unless its severity warrants a work order (high or critical:
  ``core.workorders.policy``): such an incident stays open until its work order is completed or cancelled,
  whether or not the scheduling agent has opened it yet — so which incident a later alert joins depends only on
  the alerts (event time), not on how fast the agents ran, and a back-test gives the live result.
* ``close`` — its work order was completed or cancelled.

Transactions deciding about one asset's incidents are serialised with a transaction-scoped advisory lock
(``IncidentRepository.lock``), so two alerts opening at the same moment (the readings and the scoring handler)
join one incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.incidents.models import SEVERITIES
from core.incidents.repository import IncidentRepository, Scope
from core.workorders.policy import PRIORITY_BY_SEVERITY
from core.workorders.repository import WorkOrderRepository

#: info 0, low 1, medium 2, high 3, critical 4.
SEVERITY_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def higher_severity(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a, 0) >= SEVERITY_RANK.get(b, 0) else b


@dataclass(frozen=True, slots=True)
class Attachment:
    incident_id: int
    created: bool
    reopened: bool
    task_id: int | None
    """The active work order the alert attached to (None: the incident has none)."""


class IncidentService:
    def __init__(self, session: AsyncSession, *, window: timedelta = timedelta(minutes=60)) -> None:
        self._repo = IncidentRepository(session)
        self._work_orders = WorkOrderRepository(session)
        self._window = window

    async def attach(
        self,
        alert_id: int,
        scope: Scope,
        *,
        rule: str,
        severity: str,
        event_at: datetime,
        peak_score: float | None = None,
    ) -> Attachment:
        """Join the alert to its scope's incident (``scope.sensor_id``: the alert's sensor). The caller links the
        alert to ``Attachment.incident_id``."""
        await self._repo.lock(scope)
        incident = await self._repo.joinable(scope, event_at - self._window)
        created = reopened = False
        if incident is None:
            incident = await self._repo.create(scope, severity=severity, seen_at=event_at, peak_score=peak_score)
            created = True
            await self._repo.add_event(
                incident.id,
                "opened",
                event_at=event_at,
                alert_id=alert_id,
                note=f"{rule} ({severity}) on {scope.sensor_id}",
            )
        else:
            values: dict[str, object] = {
                "severity": higher_severity(incident.severity, severity),
                "first_seen_at": min(incident.first_seen_at, event_at),
                "last_seen_at": max(incident.last_seen_at, event_at),
            }
            if peak_score is not None:
                values["peak_score"] = max(incident.peak_score or peak_score, peak_score)
            if incident.status == "resolved":
                values |= {"status": "open", "resolved_at": None}
                reopened = True
                await self._repo.add_event(
                    incident.id,
                    "reopened",
                    event_at=event_at,
                    alert_id=alert_id,
                    note="a new alert within the correlation window",
                )
            await self._repo.update(incident.id, values)
        await self._repo.update(incident.id, {"alert_count": incident.alert_count + 1})
        task = await self._work_orders.active_task(incident.id)
        if not created:
            note = f"{rule} ({severity}) on {scope.sensor_id}"
            if task is not None:
                note += f"; attached to work order {task.id}"
            await self._repo.add_event(incident.id, "alert_joined", event_at=event_at, alert_id=alert_id, note=note)
        return Attachment(incident.id, created, reopened, task.id if task is not None else None)

    async def touch(self, incident_id: int, seen_at: datetime, peak_score: float | None = None) -> None:
        await self._repo.touch(incident_id, seen_at, peak_score)

    async def alert_resolved(
        self, incident_id: int, alert_id: int, *, event_at: datetime | None, note: str, alerts_unresolved: bool
    ) -> bool:
        """Note the resolution; resolve the incident when nothing in it is left (answers whether it did).
        ``alerts_unresolved``: whether an alert of the incident is still unresolved."""
        await self._repo.add_event(incident_id, "alert_resolved", event_at=event_at, alert_id=alert_id, note=note)
        if alerts_unresolved or await self._work_orders.active_task(incident_id) is not None:
            return False
        incident = await self._repo.lock_incident(incident_id)
        if incident is None or incident.status != "open" or incident.severity in PRIORITY_BY_SEVERITY:
            return False  # a work order is (or will be) open for it: it stays open until that is closed
        await self._repo.update(incident_id, {"status": "resolved", "resolved_at": datetime.now(UTC)})
        await self._repo.add_event(incident_id, "resolved", event_at=event_at, note="every alert resolved")
        return True

    async def close(self, incident_id: int, *, task_id: int | None, note: str) -> None:
        """Close the incident (its work order was completed or cancelled): a later alert opens a new one."""
        incident = await self._repo.lock_incident(incident_id)
        if incident is None or incident.status == "closed":
            return
        await self._repo.update(incident_id, {"status": "closed", "closed_at": datetime.now(UTC)})
        await self._repo.add_event(incident_id, "closed", task_id=task_id, note=note)


__all__ = ["SEVERITY_RANK", "Attachment", "IncidentService", "higher_severity"]
