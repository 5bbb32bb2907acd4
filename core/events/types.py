"""Typed, immutable domain events (DESIGN.md §5.3), named in the past tense.

Every event is a frozen pydantic model with an ``event_id`` (uuid4), ``occurred_at`` (timezone-aware UTC) and
the ``correlation_id`` of the unit of work that produced it (defaults to the current request's id, so the
agents' log lines carry it too). The class-level ``event_type`` is the stable name stored in ``outbox.event_type``
and ``dead_letters.event_type``; ``EVENT_TYPES`` maps it back to the class (``event_from_row``).

Delivery is *at least once*: a handler may see the same ``event_id`` twice and must be idempotent.

Evolution: stored rows are decoded with the current class, so add fields with defaults and never remove or
rename one while outbox or dead-letter rows written with it may exist (docs/architecture/events.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from core.observability.logging import get_correlation_id

#: event_type name → class, filled by ``Event.__init_subclass__``.
EVENT_TYPES: dict[str, type[Event]] = {}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class UnknownEventType(LookupError):
    """An outbox or dead-letter row names an event type no class is registered for."""


class Event(BaseModel):
    """Base of every event. Subclasses set ``event_type`` (defaults to the class name) and add fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = "Event"

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=_utcnow)
    correlation_id: str | None = Field(default_factory=get_correlation_id)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:
            cls.event_type = cls.__name__
        existing = EVENT_TYPES.get(cls.event_type)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise TypeError(f"event type {cls.event_type!r} is already registered by {existing!r}")
        EVENT_TYPES[cls.event_type] = cls

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_payload(self) -> dict[str, Any]:
        """JSON-compatible dict stored in ``outbox.payload`` / ``dead_letters.payload``."""
        return self.model_dump(mode="json")


def event_class(event_type: str) -> type[Event]:
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventType(f"no event class is registered for event type {event_type!r}") from None


def event_from_row(event_type: str, payload: dict[str, Any]) -> Event:
    """Rebuild an event from an outbox or dead-letter row."""
    return event_class(event_type).model_validate(payload)


# --- events ------------------------------------------------------------------------------------------------------
class ReadingsIngested(Event):
    """Readings were stored (committed) by one ingest request or backfill batch."""

    sensor_ids: list[str]
    count: int = Field(ge=0)
    first_timestamp: AwareDatetime
    last_timestamp: AwareDatetime
    api_key_id: int | None = None
    ingest_event_id: UUID
    """The ``event_id`` returned to the client in the ingest response."""
    backfill: bool = False
    """History (``?backfill=true``, ``ingest-csv``, or every reading older than ``SM_BACKFILL_AGE_MINUTES``):
    scored and alerted like live data, but no-data rules and due dates follow event time."""


class ReadingsScored(Event):
    """The anomaly agent scored (and committed the anomalies of) a batch of readings: the readings of these
    sensors in ``[first_timestamp, last_timestamp]`` without an anomaly row are normal. Anomaly-score alert rules
    are evaluated on it, so that a replay gives the same alerts as the live stream."""

    sensor_ids: list[str]
    count: int = Field(ge=0)
    first_timestamp: AwareDatetime
    last_timestamp: AwareDatetime
    backfill: bool = False


class AnomalyDetected(Event):
    """The anomaly agent scored a reading as anomalous (row ``anomalies.id``)."""

    anomaly_id: int
    sensor_id: str
    timestamp: AwareDatetime
    value: float
    score: float
    method: str
    model_name: str | None = None
    model_version: str | None = None


class AlertRaised(Event):
    """An alert was opened for a sensor and rule; it joined ``incident_id`` (and, when that incident's work order
    is active, is attached to ``task_id``)."""

    alert_id: int
    sensor_id: str
    rule: str
    severity: Literal["info", "low", "medium", "high", "critical"]
    incident_id: int | None = None
    task_id: int | None = None
    asset_id: int | None = None
    event_opened_at: AwareDatetime | None = None
    """Event time (the reading's timestamp) at which the alert opened."""
    backfill: bool = False


class MaintenanceTaskCreated(Event):
    """A maintenance work order was opened."""

    task_id: int
    asset_id: int | None = None
    sensor_id: str | None = None
    alert_id: int | None = None
    priority: str


class MaintenanceTaskEscalated(Event):
    """New evidence (a more severe alert joining its incident) raised a work order's priority."""

    task_id: int
    incident_id: int | None = None
    alert_id: int | None = None
    from_priority: str
    to_priority: str


class MaintenanceTaskCompleted(Event):
    """A work order was closed with an outcome; the outcome is a label for retraining."""

    task_id: int
    log_id: int
    outcome: Literal["fault_confirmed", "no_fault_found"]
    completed_at: AwareDatetime


class DriftDetected(Event):
    """A sensor's recent readings drifted from its reference window (row ``drift_checks.id``); emitted once per
    drift episode (the sensor's previous check was not drifted). ``retrain_requested`` asks for the sensor type's
    models (``model_names``) to be retrained (docs/architecture/ml_serving.md says who consumes it)."""

    check_id: int
    sensor_id: str
    sensor_type: str
    ks_statistic: float
    ks_pvalue: float
    psi: float
    reasons: list[str]
    recent_start: AwareDatetime
    recent_end: AwareDatetime
    retrain_requested: bool = True
    model_names: list[str] = Field(default_factory=list)


class WaveformIngested(Event):
    """A vibration snapshot (row ``waveform_snapshots.id``) was stored (committed); the diagnosis agent diagnoses
    it. Its RMS and kurtosis readings come with their own ``ReadingsIngested``."""

    snapshot_id: int
    sensor_id: str
    asset_id: int | None = None
    timestamp: AwareDatetime
    sample_count: int = Field(ge=0)


__all__ = [
    "EVENT_TYPES",
    "AlertRaised",
    "AnomalyDetected",
    "DriftDetected",
    "Event",
    "MaintenanceTaskCompleted",
    "MaintenanceTaskCreated",
    "MaintenanceTaskEscalated",
    "ReadingsIngested",
    "ReadingsScored",
    "UnknownEventType",
    "WaveformIngested",
    "event_class",
    "event_from_row",
]
