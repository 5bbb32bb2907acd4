"""Alerts: the list, and one alert with its history and linked anomalies (scope ``read``); acknowledge and
resolve (scope ``operate``; ``admin`` implies it). The list keeps its OpenAPI tag ``queries``, the rest
``alerting``.

Lifecycle: open → acknowledged → resolved (or open → resolved); any other transition is a 409. Every change is
stored in ``alert_events`` with the API key's name as actor and the optional comment.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import AlertIdPath, Limit, Offset, QueryServiceDep, SensorIdQuery, TextQuery
from apps.api.security import OperatePrincipal, ReadPrincipal
from core.alerts.lifecycle import AlertDetails, AlertLifecycleService
from core.alerts.schemas import AlertDetail, AlertEventRead, AlertTransition, LinkedAnomaly
from core.paging import Page, PageRequest
from core.queries.schemas import AlertFilter, AlertRead, AlertSort

router = APIRouter(prefix="/api/v1/alerts", responses=problem_responses(401, 403, 429))


def _detail(details: AlertDetails) -> AlertDetail:
    alert = details.alert
    return AlertDetail(
        id=alert.id,
        sensor_id=alert.sensor_id,
        rule=alert.rule,
        severity=alert.severity,  # type: ignore[arg-type]
        status=alert.status,  # type: ignore[arg-type]
        opened_at=alert.opened_at,
        acknowledged_at=alert.acknowledged_at,
        resolved_at=alert.resolved_at,
        anomaly_count=alert.anomaly_count,
        incident_id=alert.incident_id,
        event_opened_at=alert.event_opened_at,
        last_seen_at=alert.last_seen_at,
        event_resolved_at=alert.event_resolved_at,
        peak_score=alert.peak_score,
        events=[AlertEventRead.model_validate(e) for e in details.events],
        anomalies=[LinkedAnomaly.model_validate(a) for a in details.anomalies],
    )


@router.get(
    "",
    tags=["queries"],
    response_model=Page[AlertRead],
    summary="List alerts",
    description="Filter by status, severity, sensor and rule; most recently opened first by default.",
    responses=problem_responses(422),
)
async def list_alerts(
    principal: ReadPrincipal,
    service: QueryServiceDep,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    severity: Literal["info", "low", "medium", "high", "critical"] | None = None,
    sensor_id: SensorIdQuery = None,
    rule: TextQuery = None,
    sort: AlertSort = "-opened_at",
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AlertRead]:
    where = AlertFilter(status=status, severity=severity, sensor_id=sensor_id, rule=rule)
    return await service.alerts(where, PageRequest(sort, limit, offset))


@router.get(
    "/{alert_id}",
    tags=["alerting"],
    response_model=AlertDetail,
    summary="Get an alert",
    description="The alert, every lifecycle change (oldest first) and the anomalies it counted.",
    responses=problem_responses(404, 422),
)
async def get_alert(alert_id: AlertIdPath, principal: ReadPrincipal, session: SessionDep) -> AlertDetail:
    return _detail(await AlertLifecycleService(session).details(alert_id))


@router.post(
    "/{alert_id}/ack",
    tags=["alerting"],
    response_model=AlertDetail,
    summary="Acknowledge an alert",
    description="open → acknowledged. An acknowledged or resolved alert answers 409.",
    responses=problem_responses(404, 409, 422),
)
async def acknowledge_alert(
    alert_id: AlertIdPath, principal: OperatePrincipal, session: SessionDep, body: AlertTransition | None = None
) -> AlertDetail:
    comment = body.comment if body is not None else None
    details = await AlertLifecycleService(session).acknowledge(
        alert_id, actor=principal.name, comment=comment
    )
    principal.audit(
        "alert.acknowledge",
        target=f"alert:{alert_id}",
    )
    return _detail(details)


@router.post(
    "/{alert_id}/resolve",
    tags=["alerting"],
    response_model=AlertDetail,
    summary="Resolve an alert",
    description="open or acknowledged → resolved. A resolved alert answers 409.",
    responses=problem_responses(404, 409, 422),
)
async def resolve_alert(
    alert_id: AlertIdPath, principal: OperatePrincipal, session: SessionDep, body: AlertTransition | None = None
) -> AlertDetail:
    comment = body.comment if body is not None else None
    details = await AlertLifecycleService(session).resolve(alert_id, actor=principal.name, comment=comment)
    principal.audit(
        "alert.resolve",
        target=f"alert:{alert_id}",
    )
    return _detail(details)
