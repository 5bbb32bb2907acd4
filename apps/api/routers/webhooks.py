"""Webhook subscriptions (scope ``admin``) and notification deliveries (scope ``read``).

Nothing is sent from these endpoints: the notification agent enqueues deliveries for events and the delivery
worker sends them (core/notifications). Targets are checked against the destination policy
(``core.notifications.destinations``: https in production, no credentials, public addresses only unless allowed)
when a subscription is created or re-targeted; delivery targets are shown to admin keys only.

The runtime's ``webhook_resolver`` (a function ``(host, port) -> addresses``, set with
``create_app(overrides=RuntimeOverrides(webhook_resolver=...))``), when set, replaces the system resolver for these
checks and the delivery worker's (tests simulate DNS with it).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from apps.api.deps import RuntimeDep, SessionDep
from apps.api.errors import problem_responses
from apps.api.params import Limit, Offset, big_id_path, text_query
from apps.api.security import AdminPrincipal, Principal, ReadPrincipal
from core.auth.keys import ADMIN
from core.notifications.destinations import DestinationPolicy
from core.notifications.schemas import (
    DeliveryChannel,
    DeliveryFilter,
    DeliveryRead,
    DeliveryStatus,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
)
from core.notifications.service import WebhookService
from core.paging import Page

router = APIRouter(tags=["notifications"], responses=problem_responses(401, 403, 429))

WEBHOOKS = "/api/v1/webhooks"
WebhookId = Annotated[int, big_id_path("Webhook subscription id.")]


def destination_policy(runtime: RuntimeDep) -> DestinationPolicy:
    return DestinationPolicy.from_settings(runtime.settings, resolver=runtime.webhook_resolver)


PolicyDep = Annotated[DestinationPolicy, Depends(destination_policy)]


def _deliveries_page(rows: Any, total: int, limit: int, offset: int, principal: Principal) -> Page[DeliveryRead]:
    show_target = principal.has_scope(ADMIN)  # a URL may carry a token; e-mail addresses are personal data
    return Page[DeliveryRead](
        items=[DeliveryRead.from_row(r, show_target=show_target) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    WEBHOOKS,
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookRead,
    summary="Create a webhook subscription",
    description=(
        "Events of the chosen types are POSTed to `target` as JSON, signed with `X-SM-Signature: "
        't=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (see docs/architecture/notifications.md). '
        "The target must pass the destination policy (https in production, no credentials, every address it "
        "resolves to public unless allowed by `SM_WEBHOOK_ALLOW_PRIVATE` / `SM_WEBHOOK_ALLOWED_HOSTS`): 422 "
        "naming the rule otherwise."
    ),
    responses=problem_responses(409, 422),
)
async def create_webhook(
    body: WebhookCreate, principal: AdminPrincipal, session: SessionDep, policy: PolicyDep
) -> WebhookRead:
    row = await WebhookService(session, policy=policy).create(body)
    principal.audit(
        "webhook.create",
        target=f"webhook:{row.id}",
        target_name=row.name,
    )
    return WebhookRead.model_validate(row)


@router.get(
    WEBHOOKS,
    response_model=Page[WebhookRead],
    summary="List webhook subscriptions",
    responses=problem_responses(422),
)
async def list_webhooks(
    principal: AdminPrincipal, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> Page[WebhookRead]:
    rows, total = await WebhookService(session).page(limit=limit, offset=offset)
    return Page[WebhookRead].of(rows, total=total, limit=limit, offset=offset)


@router.get(
    WEBHOOKS + "/{webhook_id}",
    response_model=WebhookRead,
    summary="Get a webhook subscription",
    responses=problem_responses(404, 422),
)
async def get_webhook(webhook_id: WebhookId, principal: AdminPrincipal, session: SessionDep) -> WebhookRead:
    return WebhookRead.model_validate(await WebhookService(session).get(webhook_id))


@router.patch(
    WEBHOOKS + "/{webhook_id}",
    response_model=WebhookRead,
    summary="Update a webhook subscription",
    description=(
        "Change the target, the event types or the active flag (an inactive subscription gets nothing). "
        "A new target must pass the destination policy (as on create)."
    ),
    responses=problem_responses(404, 422),
)
async def update_webhook(
    webhook_id: WebhookId,
    body: WebhookUpdate,
    principal: AdminPrincipal,
    session: SessionDep,
    policy: PolicyDep,
) -> WebhookRead:
    row = await WebhookService(session, policy=policy).update(webhook_id, body)
    principal.audit(
        "webhook.update",
        target=f"webhook:{row.id}",
        target_name=row.name,
    )
    return WebhookRead.model_validate(row)


@router.delete(
    WEBHOOKS + "/{webhook_id}",
    response_model=WebhookRead,
    summary="Delete a webhook subscription",
    description="Returns the deleted subscription. Its delivery records are deleted with it.",
    responses=problem_responses(404, 422),
)
async def delete_webhook(
    webhook_id: WebhookId, principal: AdminPrincipal, session: SessionDep
) -> WebhookRead:
    row = await WebhookService(session).delete(webhook_id)
    principal.audit(
        "webhook.delete",
        target=f"webhook:{row.id}",
        target_name=row.name,
    )
    return WebhookRead.model_validate(row)


@router.get(
    WEBHOOKS + "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    summary="Deliveries of a webhook subscription",
    description=(
        "Newest first: every delivery with its status, attempts, last HTTP status and last error "
        "(a classification, never the reply). `target` is shown to admin keys only."
    ),
    responses=problem_responses(404, 422),
)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    principal: ReadPrincipal,
    session: SessionDep,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event: Annotated[str | None, text_query("Event type, e.g. `AlertRaised`.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DeliveryRead]:
    where = DeliveryFilter(webhook_id=webhook_id, status=status_, event=event)
    rows, total = await WebhookService(session).deliveries(where, limit=limit, offset=offset)
    return _deliveries_page(rows, total, limit, offset, principal)


@router.get(
    "/api/v1/notifications/deliveries",
    response_model=Page[DeliveryRead],
    summary="All notification deliveries",
    description=(
        "Webhook and e-mail deliveries, newest first, filtered by status, event type and channel. "
        "`target` is shown to admin keys only."
    ),
    responses=problem_responses(422),
)
async def list_deliveries(
    principal: ReadPrincipal,
    session: SessionDep,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event: Annotated[str | None, text_query("Event type, e.g. `AlertRaised`.")] = None,
    channel: DeliveryChannel | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DeliveryRead]:
    where = DeliveryFilter(status=status_, event=event, channel=channel)
    rows, total = await WebhookService(session).deliveries(where, limit=limit, offset=offset)
    return _deliveries_page(rows, total, limit, offset, principal)
