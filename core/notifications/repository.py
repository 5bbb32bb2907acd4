"""Webhook subscriptions and notification deliveries (SQL only here).

Idempotent enqueueing without a unique constraint: ``notification_deliveries`` has no unique key on
``(webhook_id, event id)`` (adding one needs a migration: a unique index on
``(webhook_id, channel, target, (payload->>'event_id'))``). The event id is stored in ``payload->>'event_id'``
and each INSERT … SELECT checks ``NOT EXISTS`` for it in the same statement; concurrent deliveries of the same
event are serialised by a transaction-scoped advisory lock on the event id taken first, so two transactions
cannot both pass the check.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, cast, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.pages import equal_to, fetch_page
from core.db.types import TZDateTime
from core.notifications.models import NotificationDelivery, Webhook
from core.notifications.schemas import DeliveryFilter

_LOCK_SQL = text("SELECT pg_advisory_xact_lock(hashtextextended('notification:' || :event_id, 0))")

_ENQUEUE_WEBHOOKS_SQL = text(
    """
    INSERT INTO notification_deliveries (webhook_id, channel, target, event, payload, status)
    SELECT w.id, 'webhook', w.target, :event, :payload, 'pending'
    FROM webhooks AS w
    WHERE w.is_active
      AND (cardinality(w.event_types) = 0 OR :event = ANY (w.event_types))
      AND NOT EXISTS (
          SELECT 1 FROM notification_deliveries AS d
          WHERE d.webhook_id = w.id AND d.channel = 'webhook' AND d.payload ->> 'event_id' = :event_id
      )
    ORDER BY w.id
    RETURNING id
    """
).bindparams(bindparam("payload", type_=JSONB))

_ENQUEUE_EMAILS_SQL = text(
    """
    INSERT INTO notification_deliveries (webhook_id, channel, target, event, payload, status)
    SELECT NULL, 'email', t.address, :event, :payload, 'pending'
    FROM unnest(CAST(:addresses AS text[])) AS t(address)
    WHERE NOT EXISTS (
        SELECT 1 FROM notification_deliveries AS d
        WHERE d.channel = 'email' AND d.target = t.address AND d.payload ->> 'event_id' = :event_id
    )
    RETURNING id
    """
).bindparams(bindparam("payload", type_=JSONB))

#: The batched forms (the notification agent's coalesced runs): ``:events`` is a JSON array of
#: ``{"ord", "event", "event_id", "payload"}``; one INSERT … SELECT for all of them, same NOT EXISTS check.
_LOCK_EVENTS_SQL = text(
    "SELECT pg_advisory_xact_lock(k) FROM ("
    "SELECT DISTINCT hashtextextended('notification:' || e, 0) AS k "
    "FROM unnest(CAST(:event_ids AS text[])) AS e ORDER BY k) AS ordered"
)

_ENQUEUE_WEBHOOKS_MANY_SQL = text(
    """
    INSERT INTO notification_deliveries (webhook_id, channel, target, event, payload, status)
    SELECT w.id, 'webhook', w.target, e.event, e.payload, 'pending'
    FROM jsonb_to_recordset(:events) AS e(ord int, event text, event_id text, payload jsonb)
    JOIN webhooks AS w
      ON w.is_active AND (cardinality(w.event_types) = 0 OR e.event = ANY (w.event_types))
    WHERE NOT EXISTS (
        SELECT 1 FROM notification_deliveries AS d
        WHERE d.webhook_id = w.id AND d.channel = 'webhook' AND d.payload ->> 'event_id' = e.event_id
    )
    ORDER BY e.ord, w.id
    RETURNING id
    """
).bindparams(bindparam("events", type_=JSONB))

_ENQUEUE_EMAILS_MANY_SQL = text(
    """
    INSERT INTO notification_deliveries (webhook_id, channel, target, event, payload, status)
    SELECT NULL, 'email', t.address, e.event, e.payload, 'pending'
    FROM jsonb_to_recordset(:events) AS e(ord int, event text, event_id text, payload jsonb)
    CROSS JOIN unnest(CAST(:addresses AS text[])) WITH ORDINALITY AS t(address, n)
    WHERE NOT EXISTS (
        SELECT 1 FROM notification_deliveries AS d
        WHERE d.channel = 'email' AND d.target = t.address AND d.payload ->> 'event_id' = e.event_id
    )
    ORDER BY e.ord, t.n
    RETURNING id
    """
).bindparams(bindparam("events", type_=JSONB))

_ACTIVE_EVENT_TYPES_SQL = text("SELECT event_types FROM webhooks WHERE is_active")

#: When a pending row is due: its ``next_attempt_at`` (in the payload); a new row (none yet) is due at once.
_NEXT_ATTEMPT_AT = cast(NotificationDelivery.payload["next_attempt_at"].astext, TZDateTime)


def _rows(events: Sequence[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {"ord": i, "event": event, "event_id": event_id, "payload": payload}
        for i, (event, event_id, payload) in enumerate(events)
    ]


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, *, name: str, target: str, event_types: list[str], is_active: bool) -> Webhook:
        row = Webhook(name=name, target=target, event_types=event_types, is_active=is_active)
        self._session.add(row)
        await self._session.flush()
        await self._session.refresh(row)
        return row

    async def get(self, webhook_id: int) -> Webhook | None:
        return await self._session.get(Webhook, webhook_id)

    async def active_event_types(self) -> list[list[str]]:
        """The ``event_types`` of every active subscription (an empty list means every event)."""
        return [list(r) for r in (await self._session.execute(_ACTIVE_EVENT_TYPES_SQL)).scalars()]

    async def get_by_name(self, name: str) -> Webhook | None:
        return (await self._session.scalars(select(Webhook).where(Webhook.name == name))).one_or_none()

    async def list(self, *, limit: int, offset: int) -> tuple[list[Webhook], int]:
        return await fetch_page(self._session, Webhook, (), (Webhook.id,), limit=limit, offset=offset)

    async def delete(self, webhook_id: int) -> None:
        await self._session.execute(delete(Webhook).where(Webhook.id == webhook_id))

    async def flush(self) -> None:
        await self._session.flush()


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- enqueueing (the notification agent) ----------------------------------------------------------------
    async def lock_event(self, event_id: str) -> None:
        """Serialise enqueueing of one event across transactions (released at commit/rollback)."""
        await self._session.execute(_LOCK_SQL, {"event_id": event_id})

    async def enqueue_webhooks(self, *, event: str, event_id: str, payload: dict[str, Any]) -> list[int]:
        """One pending row per active subscription matching ``event`` that has none for ``event_id`` yet."""
        result = await self._session.execute(
            _ENQUEUE_WEBHOOKS_SQL, {"event": event, "event_id": event_id, "payload": payload}
        )
        return [int(r) for r in result.scalars()]

    async def lock_events(self, event_ids: Sequence[str]) -> None:
        """``lock_event`` for several events in one statement, in a global order (no deadlock between runs)."""
        if event_ids:
            await self._session.execute(_LOCK_EVENTS_SQL, {"event_ids": sorted(set(event_ids))})

    async def enqueue_webhooks_many(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> list[int]:
        """``enqueue_webhooks`` for several ``(event type, event id, payload)`` in one statement; the ids in
        event order, then subscription order. Event ids must be distinct (the caller de-duplicates)."""
        if not events:
            return []
        result = await self._session.execute(_ENQUEUE_WEBHOOKS_MANY_SQL, {"events": _rows(events)})
        return [int(r) for r in result.scalars()]

    async def enqueue_emails_many(
        self, *, addresses: list[str], events: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> list[int]:
        if not addresses or not events:
            return []
        result = await self._session.execute(
            _ENQUEUE_EMAILS_MANY_SQL, {"events": _rows(events), "addresses": addresses}
        )
        return [int(r) for r in result.scalars()]

    async def enqueue_emails(
        self, *, addresses: list[str], event: str, event_id: str, payload: dict[str, Any]
    ) -> list[int]:
        if not addresses:
            return []
        result = await self._session.execute(
            _ENQUEUE_EMAILS_SQL,
            {"addresses": addresses, "event": event, "event_id": event_id, "payload": payload},
        )
        return [int(r) for r in result.scalars()]

    # --- the delivery worker --------------------------------------------------------------------------------
    async def claim_due(self, *, now: datetime, limit: int) -> Sequence[NotificationDelivery]:
        """Pending rows due at ``now``, locked (``FOR UPDATE SKIP LOCKED``) until the transaction ends."""
        stmt = (
            select(NotificationDelivery)
            .where(
                NotificationDelivery.status == "pending",
                or_(_NEXT_ATTEMPT_AT.is_(None), _NEXT_ATTEMPT_AT <= now),
            )
            .order_by(NotificationDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self._session.scalars(stmt)).all()

    async def get_pending_for_update(self, delivery_id: int) -> NotificationDelivery | None:
        stmt = (
            select(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id, NotificationDelivery.status == "pending")
            .with_for_update()
        )
        return (await self._session.scalars(stmt)).one_or_none()

    async def count_pending(self) -> int:
        stmt = (
            select(func.count())
            .select_from(NotificationDelivery)
            .where(NotificationDelivery.status == "pending")
        )
        return int((await self._session.execute(stmt)).scalar_one())

    async def flush(self) -> None:
        await self._session.flush()

    # --- queries (API) --------------------------------------------------------------------------------------
    async def get(self, delivery_id: int) -> NotificationDelivery | None:
        return await self._session.get(NotificationDelivery, delivery_id)

    async def list(self, where: DeliveryFilter, *, limit: int, offset: int) -> tuple[list[NotificationDelivery], int]:
        """A page of deliveries (newest first) and the total matching the filter."""
        conditions = equal_to(
            (NotificationDelivery.webhook_id, where.webhook_id),
            (NotificationDelivery.status, where.status),
            (NotificationDelivery.event, where.event),
            (NotificationDelivery.channel, where.channel),
        )
        newest_first = (NotificationDelivery.id.desc(),)
        return await fetch_page(
            self._session, NotificationDelivery, conditions, newest_first, limit=limit, offset=offset
        )


__all__ = ["DeliveryRepository", "WebhookRepository"]
