"""Webhook subscriptions (scope ``admin``) and notification deliveries (scope ``read``).

Nothing is sent from these endpoints: the notification agent enqueues deliveries for events and the delivery
worker sends them (core/notifications).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.security import AdminPrincipal, ReadPrincipal
from core.notifications.schemas import (
    DeliveryChannel,
    DeliveryPage,
    DeliveryRead,
    DeliveryStatus,
    WebhookCreate,
    WebhookPage,
    WebhookRead,
    WebhookUpdate,
)
from core.notifications.service import WebhookService

router = APIRouter(tags=["notifications"], responses=problem_responses(401, 403, 429))

WEBHOOKS = "/api/v1/webhooks"
WebhookId = Annotated[int, Path(ge=1, description="Webhook subscription id.")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


@router.post(
    WEBHOOKS,
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookRead,
    summary="Create a webhook subscription",
    description=(
        "Events of the chosen types are POSTed to `target` as JSON, signed with `X-SM-Signature: "
        't=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (see docs/architecture/notifications.md).'
    ),
    responses=problem_responses(409, 422),
)
async def create_webhook(body: WebhookCreate, principal: AdminPrincipal, session: SessionDep) -> WebhookRead:
    row = await WebhookService(session).create(body)
    principal.audit(
        "webhook.create",
        target=f"webhook:{row.id}",
        target_name=row.name,
    )
    return WebhookRead.model_validate(row)


@router.get(
    WEBHOOKS,
    response_model=WebhookPage,
    summary="List webhook subscriptions",
    responses=problem_responses(422),
)
async def list_webhooks(
    principal: AdminPrincipal, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> WebhookPage:
    rows, total = await WebhookService(session).page(limit=limit, offset=offset)
    return WebhookPage(
        items=[WebhookRead.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


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
    description="Change the target, the event types or the active flag (an inactive subscription gets nothing).",
    responses=problem_responses(404, 422),
)
async def update_webhook(
    webhook_id: WebhookId, body: WebhookUpdate, principal: AdminPrincipal, session: SessionDep
) -> WebhookRead:
    row = await WebhookService(session).update(webhook_id, body)
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
    response_model=DeliveryPage,
    summary="Deliveries of a webhook subscription",
    description="Newest first: every delivery with its status, attempts and last error.",
    responses=problem_responses(404, 422),
)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    principal: ReadPrincipal,
    session: SessionDep,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event: Annotated[str | None, Query(description="Event type, e.g. `AlertRaised`.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeliveryPage:
    rows, total = await WebhookService(session).deliveries(
        webhook_id=webhook_id, status=status_, event=event, limit=limit, offset=offset
    )
    return DeliveryPage(
        items=[DeliveryRead.from_row(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/api/v1/notifications/deliveries",
    response_model=DeliveryPage,
    summary="All notification deliveries",
    description="Webhook and e-mail deliveries, newest first, filtered by status, event type and channel.",
    responses=problem_responses(422),
)
async def list_deliveries(
    principal: ReadPrincipal,
    session: SessionDep,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event: Annotated[str | None, Query(description="Event type, e.g. `AlertRaised`.")] = None,
    channel: DeliveryChannel | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeliveryPage:
    rows, total = await WebhookService(session).deliveries(
        status=status_, event=event, channel=channel, limit=limit, offset=offset
    )
    return DeliveryPage(
        items=[DeliveryRead.from_row(r) for r in rows], total=total, limit=limit, offset=offset
    )
