"""API schemas of the event machinery: dead letters (separate from the ORM model) and the activity status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

_EXAMPLE: JsonDict = {
    "id": 42,
    "event_type": "ReadingsIngested",
    "handler": "telemetry.readings_ingested",
    "error": "ConnectionError: MLflow registry unreachable",
    "attempts": 5,
    "payload": {
        "event_id": "0f8e3c1e-6f1d-4c55-9d0e-2f5b3a9c7d11",
        "occurred_at": "2026-11-26T07:00:00Z",
        "correlation_id": "6f1c2b9a0d3e4f5a8b7c6d5e4f3a2b1c",
        "sensor_ids": ["pump-7-vib"],
        "count": 1000,
        "first_timestamp": "2026-11-26T06:59:00Z",
        "last_timestamp": "2026-11-26T07:00:00Z",
        "api_key_id": 3,
        "ingest_event_id": "9a2b7c44-1d2e-4f60-8a1b-3c4d5e6f7a8b",
    },
    "created_at": "2026-11-26T07:00:05Z",
    "replayed_at": None,
}



@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters a list shows (None: any). ``replayed``: True replayed only, False pending only."""

    handler: str | None = None
    event_type: str | None = None
    replayed: bool | None = None

class DeadLetterRead(BaseModel):
    """One failed delivery: the event, the handler that failed, its last error and how often it was tried."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: int
    event_type: str
    handler: str = Field(description="Name of the handler that failed (the replay target).")
    error: str = Field(description="Type and message of the last error.")
    attempts: int = Field(description="Attempts made before the delivery was dead-lettered.")
    payload: dict[str, Any] = Field(description="The event as it was published.")
    created_at: datetime
    replayed_at: datetime | None = Field(description="When it was replayed; null while pending.")


class DeadLetterReplayed(BaseModel):
    """The dead letter (now with ``replayed_at``) and the handlers its event was queued for."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dead_letter": {**_EXAMPLE, "replayed_at": "2026-11-26T08:00:00Z"},
                    "handlers": ["telemetry.readings_ingested"],
                }
            ]
        }
    )

    dead_letter: DeadLetterRead
    handlers: list[str] = Field(description="Handlers the event was re-published to.")


class BusActivityRead(BaseModel):
    queued: int = Field(description="Events waiting in the in-process bus's queue.")
    running: int = Field(
        description="Deliveries taken off the queue whose handlers have not finished (retries and coalesced "
        "deliveries waiting for their run included)."
    )


class EventsStatusRead(BaseModel):
    """What the event machinery of this API process still has to do; ``idle`` when nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"outbox_pending": 0, "bus": {"queued": 0, "running": 0}, "idle": True},
                {"outbox_pending": 3, "bus": {"queued": 12, "running": 4}, "idle": False},
            ]
        }
    )

    outbox_pending: int = Field(
        description="Outbox rows not published yet (committed events still to deliver)."
    )
    bus: BusActivityRead
    idle: bool = Field(description="True when all three counts are zero.")


__all__ = ["BusActivityRead", "DeadLetterRead", "DeadLetterReplayed", "EventsStatusRead"]
