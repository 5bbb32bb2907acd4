"""What a notification carries: the event types that are notified and the JSON body built from an event.

Stored row (``notification_deliveries.payload``)::

    {"event_id": "<uuid>", "body": {<the JSON body sent>}, "next_attempt_at": "<ISO time>" | null}

``event_id`` is the idempotency key of enqueueing (see ``core.notifications.repository``);
``next_attempt_at`` is the retry schedule of the worker (the table has no column for it; a migration could add
one). The body sent to receivers::

    {"event_type": "AlertRaised", "event_id": "...", "occurred_at": "...", "correlation_id": "...",
     "data": {<the event's own fields>}}
"""

from __future__ import annotations

import json
from typing import Any

from core.events.types import (
    AlertRaised,
    AnomalyDetected,
    Event,
    MaintenanceTaskCompleted,
    MaintenanceTaskCreated,
)

#: Event classes the notification agent subscribes to.
NOTIFIED_EVENTS: tuple[type[Event], ...] = (
    AlertRaised,
    MaintenanceTaskCreated,
    MaintenanceTaskCompleted,
    AnomalyDetected,
)
#: Their names: what a subscription's ``event_types`` may contain.
NOTIFIED_EVENT_TYPES: tuple[str, ...] = tuple(cls.event_type for cls in NOTIFIED_EVENTS)

_BASE_FIELDS = ("event_id", "occurred_at", "correlation_id")


def event_body(event: Event) -> dict[str, Any]:
    data = event.to_payload()
    envelope = {key: data.pop(key, None) for key in _BASE_FIELDS}
    return {"event_type": event.event_type, **envelope, "data": data}


def stored_payload(event: Event) -> dict[str, Any]:
    return {"event_id": str(event.event_id), "body": event_body(event), "next_attempt_at": None}


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed) for a stored payload: compact JSON with sorted keys."""
    return json.dumps(payload.get("body", {}), separators=(",", ":"), sort_keys=True).encode("utf-8")


__all__ = ["NOTIFIED_EVENTS", "NOTIFIED_EVENT_TYPES", "body_bytes", "event_body", "stored_payload"]
