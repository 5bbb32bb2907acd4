"""Services of notifications: webhook subscriptions, delivery queries and enqueueing (they flush, never commit)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.errors import Conflict, NotFound
from core.events.types import Event
from core.notifications.destinations import DestinationPolicy
from core.notifications.envelope import stored_payload
from core.notifications.models import NotificationDelivery, Webhook
from core.notifications.repository import DeliveryRepository, WebhookRepository
from core.notifications.schemas import DeliveryFilter, WebhookCreate, WebhookUpdate
from core.notifications.subscriptions import mark_changed


class WebhookService:
    """Subscriptions and delivery queries. Creating or re-targeting a subscription needs the destination
    ``policy`` (``DestinationPolicy.from_settings``): the target is checked (and resolved) before anything is
    stored, and ``DestinationRefused`` (422) names the rule it breaks."""

    def __init__(self, session: AsyncSession, *, policy: DestinationPolicy | None = None) -> None:
        self._session = session
        self._policy = policy
        self._webhooks = WebhookRepository(session)
        self._deliveries = DeliveryRepository(session)

    async def _check_target(self, target: str) -> None:
        if self._policy is None:
            raise RuntimeError("WebhookService needs a destination policy to create or re-target a webhook")
        await self._policy.check(target)

    async def create(self, body: WebhookCreate) -> Webhook:
        await self._check_target(str(body.target))
        if await self._webhooks.get_by_name(body.name) is not None:
            raise Conflict(f"a webhook named {body.name!r} already exists")
        mark_changed(self._session)  # the agents' subscription caches reload after the commit
        return await self._webhooks.add(
            name=body.name, target=str(body.target), event_types=body.event_types, is_active=body.is_active
        )

    async def get(self, webhook_id: int) -> Webhook:
        row = await self._webhooks.get(webhook_id)
        if row is None:
            raise NotFound(f"webhook {webhook_id} does not exist")
        return row

    async def page(self, *, limit: int, offset: int) -> tuple[list[Webhook], int]:
        return await self._webhooks.list(limit=limit, offset=offset)

    async def update(self, webhook_id: int, body: WebhookUpdate) -> Webhook:
        row = await self.get(webhook_id)
        if body.target is not None:
            await self._check_target(str(body.target))
            row.target = str(body.target)
        if body.event_types is not None:
            row.event_types = body.event_types
        if body.is_active is not None:
            row.is_active = body.is_active
        mark_changed(self._session)
        await self._webhooks.flush()
        return row

    async def delete(self, webhook_id: int) -> Webhook:
        """Delete the subscription (its deliveries go with it: ON DELETE CASCADE)."""
        row = await self.get(webhook_id)
        mark_changed(self._session)
        await self._webhooks.delete(webhook_id)
        return row

    async def deliveries(
        self, where: DeliveryFilter, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[NotificationDelivery], int]:
        if where.webhook_id is not None:
            await self.get(where.webhook_id)  # 404 for an unknown subscription
        return await self._deliveries.list(where, limit=limit, offset=offset)


class NotificationService:
    """Turns events into pending deliveries (idempotent on the event id)."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self._deliveries = DeliveryRepository(session)
        self._settings = settings

    def email_recipients(self) -> list[str]:
        if not self._settings.smtp_host:
            return []
        return list(dict.fromkeys(self._settings.notification_email_to))

    async def enqueue(self, event: Event) -> list[int]:
        """Ids of the deliveries created for ``event`` (none for a duplicate delivery of the same event)."""
        return await self.enqueue_many([event])

    async def enqueue_many(self, events: Sequence[Event]) -> list[int]:
        """``enqueue`` for several events in one transaction and two statements (the agent's coalesced runs).

        The same rows as one ``enqueue`` per event: the events are de-duplicated by id (an event delivered twice
        in one run enqueues once), their advisory locks are taken in one statement (sorted, so concurrent runs
        cannot deadlock) before the ``NOT EXISTS`` checks. Ids: webhooks in event then subscription order, then
        e-mails in event then address order.
        """
        unique: dict[str, Event] = {}
        for event in events:
            unique.setdefault(str(event.event_id), event)
        if not unique:
            return []
        rows = [(e.event_type, event_id, stored_payload(e)) for event_id, e in unique.items()]
        await self._deliveries.lock_events(list(unique))
        ids = await self._deliveries.enqueue_webhooks_many(rows)
        ids += await self._deliveries.enqueue_emails_many(addresses=self.email_recipients(), events=rows)
        return ids


__all__ = ["NotificationService", "WebhookService"]
