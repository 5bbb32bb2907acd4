"""Alert rules of the alerting agent: list and get (scope ``read``); create, change, delete (scope ``admin``).

``params`` are validated per ``kind`` (422 otherwise); a second rule with the same name is a 409.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import Limit, Offset, RuleIdPath
from apps.api.security import AdminPrincipal, ReadPrincipal
from core.alerts.rules import AlertRuleService
from core.alerts.schemas import AlertRuleCreate, AlertRuleRead, AlertRuleUpdate, RuleKind
from core.paging import Page

router = APIRouter(
    prefix="/api/v1/alert-rules",
    tags=["alerting"],
    responses=problem_responses(401, 403, 429),
)


@router.get(
    "",
    response_model=Page[AlertRuleRead],
    summary="List alert rules",
    description="Every rule, oldest first, optionally filtered by kind and enabled flag.",
    responses=problem_responses(422),
)
async def list_alert_rules(
    principal: ReadPrincipal,
    session: SessionDep,
    kind: RuleKind | None = None,
    enabled: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AlertRuleRead]:
    rows, total = await AlertRuleService(session).page(limit=limit, offset=offset, kind=kind, enabled=enabled)
    return Page[AlertRuleRead].of(rows, total=total, limit=limit, offset=offset)


@router.get(
    "/{rule_id}",
    response_model=AlertRuleRead,
    summary="Get an alert rule",
    responses=problem_responses(404, 422),
)
async def get_alert_rule(rule_id: RuleIdPath, principal: ReadPrincipal, session: SessionDep) -> AlertRuleRead:
    return AlertRuleRead.model_validate(await AlertRuleService(session).get(rule_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertRuleRead,
    summary="Create an alert rule",
    description=(
        "Scope: `sensor_type` or `sensor_id` (neither: every sensor). `params` per `kind`: anomaly_score "
        "`{min_score, methods?}`, threshold `{min, max}` (one or both, in `unit`), rate_of_change "
        "`{max_rate_per_min}`, flatline `{tolerance}`, no_data `{no_data_minutes}` or `{interval_multiple, "
        "min_minutes}` (the sensor's cadence). Hysteresis in readings and event time: open after `open_after_k` "
        "matching readings among the sensor's last `window_readings` (not older than `max_age_minutes` when set), "
        "resolve after `resolve_after_m` consecutive normal readings once `min_hold_minutes` have passed."
    ),
    responses=problem_responses(409, 422),
)
async def create_alert_rule(
    body: AlertRuleCreate, principal: AdminPrincipal, session: SessionDep
) -> AlertRuleRead:
    rule = await AlertRuleService(session).create(body)
    principal.audit(
        "alert_rule.create",
        target=f"alert_rule:{rule.id}",
        target_name=rule.name,
    )
    return AlertRuleRead.model_validate(rule)


@router.patch(
    "/{rule_id}",
    response_model=AlertRuleRead,
    summary="Change an alert rule",
    description="Only the fields sent change; `params` are validated against the rule's kind (which cannot change).",
    responses=problem_responses(404, 409, 422),
)
async def update_alert_rule(
    rule_id: RuleIdPath, body: AlertRuleUpdate, principal: AdminPrincipal, session: SessionDep
) -> AlertRuleRead:
    rule = await AlertRuleService(session).update(rule_id, body)
    principal.audit(
        "alert_rule.update",
        target=f"alert_rule:{rule.id}",
        target_name=rule.name,
    )
    return AlertRuleRead.model_validate(rule)


@router.delete(
    "/{rule_id}",
    response_model=AlertRuleRead,
    summary="Delete an alert rule",
    description="Answers the deleted rule. Alerts it raised stay (their `rule` keeps the name).",
    responses=problem_responses(404, 422),
)
async def delete_alert_rule(rule_id: RuleIdPath, principal: AdminPrincipal, session: SessionDep) -> AlertRuleRead:
    rule = await AlertRuleService(session).delete(rule_id)
    principal.audit(
        "alert_rule.delete",
        target=f"alert_rule:{rule.id}",
        target_name=rule.name,
    )
    return AlertRuleRead.model_validate(rule)
