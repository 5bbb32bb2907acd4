"""API schemas of webhook subscriptions and notification deliveries (separate from the ORM models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from core.notifications.envelope import NOTIFIED_EVENT_TYPES
from core.notifications.outcomes import public_error
from core.schemas_common import NO_CONTROL, Bool

DeliveryStatus = Literal["pending", "delivered", "failed"]
DeliveryChannel = Literal["webhook", "email"]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL)]
EventTypes = Annotated[list[EventType], Field(max_length=len(NOTIFIED_EVENT_TYPES) * 2)]


def _check_event_types(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    if any(v not in NOTIFIED_EVENT_TYPES for v in values):  # the values are not echoed
        raise ValueError(f"unknown event type; allowed: {', '.join(NOTIFIED_EVENT_TYPES)}")
    return list(dict.fromkeys(values))  # de-duplicated, order kept


_WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "name": "ops-pager",
    "target": "https://hooks.example.com/smart-maintenance",
    "event_types": ["AlertRaised", "MaintenanceTaskCreated"],
    "is_active": True,
    "created_at": "2026-11-26T07:00:00Z",
}



@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which notification deliveries a list shows (None: any)."""

    webhook_id: int | None = None
    status: str | None = None
    event: str | None = None
    channel: str | None = None

class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "ops-pager",
                    "target": "https://hooks.example.com/smart-maintenance",
                    "event_types": ["AlertRaised", "MaintenanceTaskCreated"],
                }
            ]
        },
    )

    name: str = Field(
        min_length=1, max_length=100, pattern=NO_CONTROL, description="Unique name of the subscription."
    )
    target: HttpUrl = Field(description="http(s) URL the signed JSON body is POSTed to.")
    event_types: EventTypes = Field(
        default_factory=list,
        description=f"Events to receive, any of {', '.join(NOTIFIED_EVENT_TYPES)}; empty = all of them.",
    )
    is_active: Bool = True

    @field_validator("event_types")
    @classmethod
    def _known(cls, values: list[str]) -> list[str]:
        return _check_event_types(values) or []


class WebhookUpdate(BaseModel):
    """Fields to change; omitted fields keep their value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"is_active": False}, {"event_types": ["AlertRaised"]}]},
    )

    # NOT NULL columns: they may be left out, not set to null (422).
    target: HttpUrl | SkipJsonSchema[None] = None
    event_types: EventTypes | SkipJsonSchema[None] = None
    is_active: Bool | SkipJsonSchema[None] = None

    @field_validator("target", "event_types", "is_active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    @field_validator("event_types")
    @classmethod
    def _known(cls, values: list[str] | None) -> list[str] | None:
        return _check_event_types(values)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_WEBHOOK_EXAMPLE]})

    id: int
    name: str
    target: str
    event_types: list[str] = Field(description="Empty: every notified event type.")
    is_active: bool
    created_at: datetime


_DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 17,
    "webhook_id": 3,
    "channel": "webhook",
    "target": "https://hooks.example.com/smart-maintenance",
    "event": "AlertRaised",
    "event_id": "0f8e3c1e-6f1d-4c55-9d0e-2f5b3a9c7d11",
    "status": "pending",
    "attempts": 2,
    "last_status": 503,
    "last_error": "http_503",
    "next_attempt_at": "2026-11-26T07:00:25Z",
    "created_at": "2026-11-26T07:00:05Z",
    "delivered_at": None,
    "body": {
        "event_type": "AlertRaised",
        "event_id": "0f8e3c1e-6f1d-4c55-9d0e-2f5b3a9c7d11",
        "occurred_at": "2026-11-26T07:00:04Z",
        "correlation_id": "6f1c2b9a0d3e4f5a8b7c6d5e4f3a2b1c",
        "data": {"alert_id": 9, "sensor_id": "pump-7-vib", "rule": "anomaly_score", "severity": "high"},
    },
}


class DeliveryRead(BaseModel):
    """One notification of one event to one target, with its attempts and last error (a classification)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_DELIVERY_EXAMPLE]})

    id: int = Field(description="Also sent as `X-SM-Delivery` (stable across retries).")
    webhook_id: int | None
    channel: DeliveryChannel
    target: str | None = Field(
        description="URL (webhook) or e-mail address; shown to admin keys only (null for other keys: a URL may "
        "carry a token)."
    )
    event: str = Field(description="Event type.")
    event_id: str | None
    status: DeliveryStatus
    attempts: int
    last_status: int | None = Field(
        default=None, description="HTTP status of the last webhook attempt that got an answer."
    )
    last_error: str | None = Field(
        description="Classification of the last failed attempt, never the reply: `http_<status>`, `timeout`, "
        "`connect_error`, `tls_error`, `dns_error`, `protocol_error`, `refused_destination:<reason>`, "
        "`smtp_<code>`, `smtp_error`, `smtp_not_configured`, `error`."
    )
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")
    created_at: datetime
    delivered_at: datetime | None
    body: dict[str, Any] = Field(description="The JSON body that is (or was) sent.")

    @classmethod
    def from_row(cls, row: Any, *, show_target: bool = False) -> DeliveryRead:
        """The API view of a row; ``show_target`` only for admin keys. ``last_error`` is reduced to a
        classification whatever the row holds (rows written before classifications may hold reply text)."""
        payload: dict[str, Any] = row.payload or {}
        last_status = payload.get("last_status")
        return cls(
            id=row.id,
            webhook_id=row.webhook_id,
            channel=row.channel,
            target=row.target if show_target else None,
            event=row.event,
            event_id=payload.get("event_id"),
            status=row.status,
            attempts=row.attempts,
            last_status=last_status if isinstance(last_status, int) else None,
            last_error=public_error(row.last_error),
            next_attempt_at=payload.get("next_attempt_at") if row.status == "pending" else None,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            body=payload.get("body", {}),
        )


__all__ = [
    "DeliveryChannel",
    "DeliveryRead",
    "DeliveryStatus",
    "WebhookCreate",
    "WebhookRead",
    "WebhookUpdate",
]
