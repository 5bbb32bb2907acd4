"""Alert lifecycle on the API's side: details (history, linked anomalies) and the operators' transitions.

open → acknowledged → resolved (and open → resolved); any other transition is a 409 (``Conflict``). Services
flush, never commit; SQL lives in ``core.alerts.repository``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.models import ALERT_UNRESOLVED_STATUSES, Alert
from core.alerts.repository import AlertingRepository
from core.alerts.rule_models import AlertEvent
from core.anomaly.models import Anomaly
from core.errors import Conflict, NotFound
from core.incidents.service import IncidentService
from core.observability.metrics import ALERTS_RESOLVED_TOTAL


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AlertDetails:
    alert: Alert
    events: Sequence[AlertEvent]
    anomalies: Sequence[Anomaly]


class AlertLifecycleService:
    """open → acknowledged → resolved (and open → resolved); any other transition is a 409."""

    def __init__(self, session: AsyncSession, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._session = session
        self._repo = AlertingRepository(session)
        self._clock = clock

    async def details(self, alert_id: int) -> AlertDetails:
        alert = await self._repo.get_alert(alert_id)
        if alert is None:
            raise NotFound(f"alert {alert_id} does not exist")
        return AlertDetails(
            alert, await self._repo.events(alert_id), await self._repo.linked_anomalies(alert_id)
        )

    async def _transition(
        self, alert_id: int, allowed: tuple[str, ...], to: str, actor: str, comment: str | None
    ) -> AlertDetails:
        alert = await self._repo.get_alert(alert_id, for_update=True)
        if alert is None:
            raise NotFound(f"alert {alert_id} does not exist")
        if alert.status not in allowed:
            raise Conflict(
                f"alert {alert_id} is {alert.status}: it cannot become {to}",
                extra={"status": alert.status},
            )
        previous = await self._repo.set_status(alert_id, allowed, to, self._clock())
        await self._repo.add_event(alert_id, previous, to, actor, comment, at=self._clock())
        if to == "resolved":
            ALERTS_RESOLVED_TOTAL.labels(rule=alert.rule).inc()
            if alert.incident_id is not None:
                await IncidentService(self._session).alert_resolved(
                    alert.incident_id,
                    alert_id,
                    event_at=None,
                    note=f"resolved by {actor}",
                    alerts_unresolved=bool(await self._repo.unresolved_in_incident(alert.incident_id)),
                )
        return await self.details(alert_id)

    async def acknowledge(self, alert_id: int, *, actor: str, comment: str | None = None) -> AlertDetails:
        return await self._transition(alert_id, ("open",), "acknowledged", actor, comment)

    async def resolve(self, alert_id: int, *, actor: str, comment: str | None = None) -> AlertDetails:
        return await self._transition(alert_id, ALERT_UNRESOLVED_STATUSES, "resolved", actor, comment)


__all__ = ["AlertDetails", "AlertLifecycleService"]
