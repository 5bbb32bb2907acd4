"""Ingest request/response schemas and per-item validation of the raw body.

The body is parsed once (orjson, falling back to the standard library only to recognise ``NaN``/``Infinity``
literals so that such items are rejected one by one instead of failing the whole batch) and each item is
validated on its own, so one bad item never rejects the batch in ``partial`` mode. A batch whose items are all
valid is validated in one ``validate_json`` call (the fast path).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

#: Most readings one request may carry (more → 413).
MAX_BATCH_ITEMS = 10_000
#: How far in the future a timestamp may lie (clock skew of devices).
MAX_FUTURE = timedelta(minutes=5)
MAX_SENSOR_ID_CHARS = 128
MAX_UNIT_CHARS = 32
MAX_IDEMPOTENCY_KEY_CHARS = 255

#: A JSON number (int or float; strings and booleans are rejected).
Number = Annotated[float, Field(strict=True)]


class ReadingIn(BaseModel):
    """One reading as a device sends it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "sensor-001",
                    "value": 55.35,
                    "timestamp": "2026-10-29T22:05:00Z",
                    "unit": "°C",
                    "quality": 1.0,
                }
            ]
        },
    )

    sensor_id: Annotated[
        StrictStr, Field(min_length=1, max_length=MAX_SENSOR_ID_CHARS, pattern=r"^[^\s\x00]+$")
    ]
    value: Annotated[Number, Field(allow_inf_nan=False, description="Finite number.")]
    timestamp: Annotated[AwareDatetime, Field(description="ISO 8601 with a timezone (UTC offset or Z).")]
    unit: Annotated[StrictStr, Field(max_length=MAX_UNIT_CHARS, pattern=r"^[^\x00]*$")] | None = None
    quality: Annotated[Number, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    metadata: dict[str, Any] | None = Field(None, description="Free-form; `sensor_type` is used on auto-registration.")

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp_is_text(cls, value: Any) -> Any:
        if not isinstance(value, str | datetime):
            raise ValueError("timestamp must be an ISO 8601 string with a timezone")
        return value


_ITEM = TypeAdapter(ReadingIn)
_LIST = TypeAdapter(list[ReadingIn])


class RejectedItem(BaseModel):
    index: int = Field(description="Position of the item in the request (0 for a single object).")
    reason: str


class IngestResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "0b7a4c62-3f0e-4a57-9a43-1f0d8e0c2b11",
                    "accepted": 998,
                    "duplicates": 1,
                    "rejected": [{"index": 17, "reason": "quality: Input should be less than or equal to 1"}],
                }
            ]
        }
    )

    event_id: UUID = Field(description="Id of this ingest (the `ingest_event_id` of its ReadingsIngested event).")
    accepted: int = Field(description="Readings stored by this request.")
    duplicates: int = Field(description="Readings whose (sensor_id, timestamp) was already stored or repeated.")
    rejected: list[RejectedItem] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ValidReading:
    index: int
    sensor_id: str
    value: float
    timestamp: datetime
    unit: str | None
    quality: float | None
    sensor_type: str | None


@dataclass(slots=True)
class ParsedBatch:
    """Result of parsing a body: the valid readings, the rejected items, and whether it was one object."""

    readings: list[ValidReading]
    rejected: list[RejectedItem]
    single: bool
    total: int


class MalformedBody(ValueError):
    """The body is not JSON (→ 400)."""


class NotReadings(ValueError):
    """JSON, but neither an object nor an array (→ 422)."""


class TooManyItems(ValueError):
    """More than MAX_BATCH_ITEMS items (→ 413)."""


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "item"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)[:500]


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # NaN/Infinity literals (Python's json.dumps writes them) are not JSON; accept them here so that the
        # items carrying them are rejected one by one. Anything else is malformed.
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedBody(f"malformed JSON: {exc}") from None


def _semantic(reading: ReadingIn, now: datetime, oldest: datetime) -> str | None:
    ts = reading.timestamp
    if ts > now + MAX_FUTURE:
        return "timestamp: more than 5 minutes in the future"
    if ts < oldest:
        return "timestamp: older than the retention window"
    return None


def _sensor_type(metadata: dict[str, Any]) -> str | None:
    candidate = metadata.get("sensor_type")
    if isinstance(candidate, str) and candidate.strip() and "\x00" not in candidate:
        return candidate.strip()[:64]
    return None


def _valid(index: int, reading: ReadingIn) -> ValidReading:
    # Aware datetimes compare and hash by their UTC instant: no conversion needed (hot path).
    metadata = reading.metadata
    return ValidReading(
        index,
        reading.sensor_id,
        reading.value,
        reading.timestamp,
        reading.unit,
        reading.quality,
        None if metadata is None else _sensor_type(metadata),
    )


def _split(
    models: list[ReadingIn], now: datetime, oldest: datetime
) -> tuple[list[ValidReading], list[RejectedItem]]:
    latest = now + MAX_FUTURE
    readings: list[ValidReading] = []
    rejected: list[RejectedItem] = []
    for index, model in enumerate(models):
        ts = model.timestamp
        if ts > latest:
            rejected.append(RejectedItem(index=index, reason="timestamp: more than 5 minutes in the future"))
        elif ts < oldest:
            rejected.append(RejectedItem(index=index, reason="timestamp: older than the retention window"))
        else:
            readings.append(_valid(index, model))
    return readings, rejected


def parse_readings(body: bytes, *, retention_days: int, now: datetime | None = None) -> ParsedBatch:
    """Parse and validate a raw ingest body item by item.

    Raises ``MalformedBody`` (not JSON), ``NotReadings`` (not an object or array, or an empty array) and
    ``TooManyItems``. Everything else becomes a ``RejectedItem`` with the item's index.
    """
    now = now or datetime.now(UTC)
    oldest = now - timedelta(days=retention_days)
    stripped = body.lstrip()
    single = stripped[:1] == b"{"
    models: list[ReadingIn] | None = None
    if stripped[:1] == b"[" and stripped.count(b"{") <= MAX_BATCH_ITEMS:
        try:  # fast path: every item valid, one pass in pydantic-core
            models = _LIST.validate_json(body)
        except ValueError:
            models = None
    elif single:
        try:
            models = [_ITEM.validate_json(body)]
        except ValueError:
            models = None
    if models is not None:
        if not models:
            raise NotReadings("the array is empty: send at least one reading")
        if len(models) > MAX_BATCH_ITEMS:
            raise TooManyItems(f"{len(models)} readings in one request; at most {MAX_BATCH_ITEMS}")
        readings, rejected = _split(models, now, oldest)
        return ParsedBatch(readings, rejected, single, len(models))

    data = _loads(body)
    if isinstance(data, dict):
        items: list[Any] = [data]
        single = True
    elif isinstance(data, list):
        items = data
        single = False
    else:
        raise NotReadings("the body must be one reading object or an array of readings")
    if not items:
        raise NotReadings("the array is empty: send at least one reading")
    if len(items) > MAX_BATCH_ITEMS:
        raise TooManyItems(f"{len(items)} readings in one request; at most {MAX_BATCH_ITEMS}")
    readings = []
    rejected = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append(RejectedItem(index=index, reason="item: must be a JSON object"))
            continue
        try:
            model = _ITEM.validate_python(item)
        except ValidationError as exc:
            rejected.append(RejectedItem(index=index, reason=_reason(exc)))
            continue
        problem = _semantic(model, now, oldest)
        if problem is None:
            readings.append(_valid(index, model))
        else:
            rejected.append(RejectedItem(index=index, reason=problem))
    return ParsedBatch(readings, rejected, single, len(items))


__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_FUTURE",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "IngestResponse",
    "MalformedBody",
    "NotReadings",
    "ParsedBatch",
    "ReadingIn",
    "RejectedItem",
    "TooManyItems",
    "ValidReading",
    "parse_readings",
]
