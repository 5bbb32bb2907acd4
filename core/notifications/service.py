"""Services of notifications: webhook subscriptions, delivery queries and enqueueing (they flush, never commit)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db.models import NotificationDelivery, Webhook
from core.db.repositories.notifications import DeliveryRepository, WebhookRepository
from core.errors import Conflict, NotFound
from core.events.types import Event
from core.notifications.envelope import stored_payload
from core.notifications.schemas import WebhookCreate, WebhookUpdate


class WebhookService:
    def __init__(self, session: AsyncSession) -> None:
        self._webhooks = WebhookRepository(session)
        self._deliveries = DeliveryRepository(session)

    async def create(self, body: WebhookCreate) -> Webhook:
        if await self._webhooks.get_by_name(body.name) is not None:
            raise Conflict(f"a webhook named {body.name!r} already exists")
        return await self._webhooks.add(
            name=body.name, target=str(body.target), event_types=body.event_types, is_active=body.is_active
        )

    async def get(self, webhook_id: int) -> Webhook:
        row = await self._webhooks.get(webhook_id)
        if row is None:
            raise NotFound(f"webhook {webhook_id} does not exist")
        return row

    async def page(self, *, limit: int, offset: int) -> tuple[Sequence[Webhook], int]:
        return await self._webhooks.list(limit=limit, offset=offset)

    async def update(self, webhook_id: int, body: WebhookUpdate) -> Webhook:
        row = await self.get(webhook_id)
        if body.target is not None:
            row.target = str(body.target)
        if body.event_types is not None:
            row.event_types = body.event_types
        if body.is_active is not None:
            row.is_active = body.is_active
        await self._webhooks.flush()
        return row

    async def delete(self, webhook_id: int) -> Webhook:
        """Delete the subscription (its deliveries go with it: ON DELETE CASCADE)."""
        row = await self.get(webhook_id)
        await self._webhooks.delete(webhook_id)
        return row

    async def deliveries(
        self,
        *,
        webhook_id: int | None = None,
        status: str | None = None,
        event: str | None = None,
        channel: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[Sequence[NotificationDelivery], int]:
        if webhook_id is not None:
            await self.get(webhook_id)  # 404 for an unknown subscription
        return await self._deliveries.list(
            webhook_id=webhook_id, status=status, event=event, channel=channel, limit=limit, offset=offset
        )


class NotificationService:
    """Turns an event into pending deliveries (idempotent on the event id)."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self._deliveries = DeliveryRepository(session)
        self._settings = settings

    def email_recipients(self) -> list[str]:
        if not self._settings.smtp_host:
            return []
        return list(dict.fromkeys(self._settings.notification_email_to))

    async def enqueue(self, event: Event) -> list[int]:
        """Ids of the deliveries created for ``event`` (none for a duplicate delivery of the same event)."""
        event_id = str(event.event_id)
        payload = stored_payload(event)
        await self._deliveries.lock_event(event_id)
        ids = await self._deliveries.enqueue_webhooks(
            event=event.event_type, event_id=event_id, payload=payload
        )
        ids += await self._deliveries.enqueue_emails(
            addresses=self.email_recipients(), event=event.event_type, event_id=event_id, payload=payload
        )
        return ids


__all__ = ["NotificationService", "WebhookService"]
