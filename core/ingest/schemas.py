"""Ingest request/response schemas and per-item validation of the raw body.

Validation runs in pydantic-core's JSON mode, strictly: ``value``/``quality`` must be JSON numbers (not strings
or booleans) and finite — a ``NaN``/``Infinity`` literal or ``1e400`` is rejected as "not finite" for that item
only — and ``timestamp`` must be an RFC 3339 string with a timezone (no epoch numbers, no naive times).

* Fast path: the whole body in one ``validate_json`` call (all items valid: the normal case).
* When some items fail, pydantic reports every error with the item's index; the body is then decoded once
  (orjson, or the standard library when it holds NaN/Infinity literals), the valid items are validated again
  on their own and the invalid ones become ``RejectedItem(index, reason)``. One bad item never rejects the batch.
* Then the time window: not more than 5 minutes in the future, not older than the retention window.

Items are a ``TypedDict`` (validated into plain dicts), which validates ~3× faster than a model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NotRequired
from uuid import UUID

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictStr,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from core.fleet.types import MAX_SENSOR_ID_CHARS, MAX_UNIT_CHARS

#: Rows per COPY batch of the CSV back-fill (``core.ingest.backfill``, ``ingest-csv --batch-size``).
DEFAULT_BACKFILL_BATCH_SIZE = 50_000
#: Most readings one request may carry (more → 413).
MAX_BATCH_ITEMS = 10_000
#: How far in the future a timestamp may lie (clock skew of devices).
MAX_FUTURE = timedelta(minutes=5)
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_REASON_CHARS = 500

EXAMPLE_READING: dict[str, JsonValue] = {
    "sensor_id": "sensor-001",
    "value": 55.35,
    "timestamp": "2026-10-29T22:05:00Z",
    "unit": "°C",
    "quality": 1.0,
}

#: A finite JSON number (int or float; strings, booleans, NaN and Infinity are rejected).
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


@with_config(ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_READING]}))
class ReadingIn(TypedDict):
    """One reading as a device sends it."""

    sensor_id: Annotated[
        StrictStr, Field(min_length=1, max_length=MAX_SENSOR_ID_CHARS, pattern=r"^[^\s\x00]+$")
    ]
    value: Annotated[Number, Field(description="Finite number.")]
    timestamp: Annotated[
        AwareDatetime,
        Field(strict=True, description="RFC 3339 / ISO 8601 string with a timezone (Z or offset)."),
    ]
    unit: NotRequired[
        Annotated[
            StrictStr,
            Field(
                max_length=MAX_UNIT_CHARS,
                pattern=r"^[^\x00]*$",
                description="Unit of `value`; absent, null or empty: the sensor's unit. Another unit is converted "
                "into the sensor's registered unit when a conversion exists (`in/s` → `mm/s`, `°F` → `°C`), else "
                "the item is rejected. `g` is standard gravity.",
            ),
        ]
        | None
    ]
    quality: NotRequired[Annotated[Number, Field(ge=0.0, le=1.0)] | None]
    metadata: NotRequired[
        Annotated[dict[str, Any], Field(description="Free-form; `sensor_type` is used on auto-registration.")]
        | None
    ]


_ITEM: TypeAdapter[ReadingIn] = TypeAdapter(ReadingIn)
_LIST: TypeAdapter[list[ReadingIn]] = TypeAdapter(list[ReadingIn])


def reading_json_schema() -> dict[str, Any]:
    """JSON schema of one reading (for the OpenAPI request body)."""
    return _ITEM.json_schema()


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

    event_id: UUID = Field(
        description="Id of this ingest (the `ingest_event_id` of its ReadingsIngested event)."
    )
    accepted: int = Field(description="Readings stored by this request.")
    duplicates: int = Field(
        description="Readings whose (sensor_id, timestamp) was already stored or repeated."
    )
    rejected: list[RejectedItem] = Field(default_factory=list)


@dataclass(slots=True, unsafe_hash=True)
class ValidReading:
    """One valid item of a request; compared and hashed by value like a frozen dataclass, but not frozen: built
    once per reading on the hottest path, and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field)
    cost 2 µs of the ~4 µs a reading took to parse. Nothing changes one after it is built."""

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
    """JSON, but neither an object nor an array, or an empty array (→ 422)."""


class TooManyItems(ValueError):
    """More than MAX_BATCH_ITEMS items (→ 413)."""


def _reason(errors: list[Any]) -> str:
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"]) or "item"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in {"dict_type", "model_type", "typed_dict_type"} and not err["loc"]:
            parts.append("item: must be a JSON object")
        else:
            parts.append(f"{loc}: {msg}")
    return "; ".join(parts)[:MAX_REASON_CHARS]


def _is_json_error(exc: ValidationError) -> bool:
    return any(err["type"] == "json_invalid" for err in exc.errors(include_url=False, include_input=False))


def _stdlib_dumps(value: Any) -> bytes:
    """JSON of a value the standard library decoded (it may hold NaN/Infinity, which orjson cannot write)."""
    return json.dumps(value).encode()


def _loads(body: bytes) -> tuple[Any, bool]:
    """Decode the body; the flag says the standard library was needed (NaN/Infinity literals)."""
    try:
        return orjson.loads(body), False
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(body), True
        except (ValueError, RecursionError):
            raise MalformedBody(f"malformed JSON: {exc}") from None


def _sensor_type(metadata: dict[str, Any]) -> str | None:
    candidate = metadata.get("sensor_type")
    if isinstance(candidate, str) and candidate.strip() and "\x00" not in candidate:
        return candidate.strip()[:64]
    return None


def _split(
    items: list[tuple[int, ReadingIn]], now: datetime, oldest: datetime
) -> tuple[list[ValidReading], list[RejectedItem]]:
    latest_utc = now + MAX_FUTURE
    readings: list[ValidReading] = []
    rejected: list[RejectedItem] = []
    append = readings.append
    # The bounds expressed in each timestamp's own time zone object (pydantic shares one per offset): two aware
    # datetimes with the same tzinfo compare by their fields, with different ones Python asks both for their UTC
    # offset (~1 µs each with pydantic's TzInfo). The same instants are compared either way.
    bounds: dict[int, tuple[datetime, datetime]] = {}
    for index, item in items:
        ts = item["timestamp"]
        zone = ts.tzinfo
        bound = bounds.get(id(zone))
        if bound is None:
            bound = bounds[id(zone)] = (latest_utc.astimezone(zone), oldest.astimezone(zone))
        latest, earliest = bound
        if ts > latest:
            rejected.append(RejectedItem(index=index, reason="timestamp: more than 5 minutes in the future"))
        elif ts < earliest:
            rejected.append(RejectedItem(index=index, reason="timestamp: older than the retention window"))
        else:
            metadata = item.get("metadata")
            append(
                ValidReading(
                    index,
                    item["sensor_id"],
                    item["value"],
                    ts,  # aware datetimes compare and hash by their UTC instant
                    item.get("unit"),
                    item.get("quality"),
                    None if metadata is None else _sensor_type(metadata),
                )
            )
    return readings, rejected


def _array(body: bytes) -> tuple[list[tuple[int, ReadingIn]], list[RejectedItem], int]:
    try:
        models = _LIST.validate_json(body)
    except ValidationError as exc:
        if _is_json_error(exc):
            _loads(body)  # raises MalformedBody unless only NaN/Infinity literals upset the parser
        errors = exc.errors(include_url=False, include_input=False)
        if any(not err["loc"] for err in errors):
            raise NotReadings("the body must be one reading object or an array of readings") from None
        by_index: dict[int, list[Any]] = defaultdict(list)
        for err in errors:
            by_index[int(err["loc"][0])].append({**err, "loc": err["loc"][1:]})
        raw, needed_stdlib = _loads(body)
        if not isinstance(raw, list):
            raise NotReadings("the body must be one reading object or an array of readings") from None
        if len(raw) > MAX_BATCH_ITEMS:
            raise TooManyItems(f"{len(raw)} readings in one request; at most {MAX_BATCH_ITEMS}") from None
        good = [i for i in range(len(raw)) if i not in by_index]
        dumps = _stdlib_dumps if needed_stdlib else orjson.dumps
        validated = _LIST.validate_json(dumps([raw[i] for i in good])) if good else []
        rejected = [RejectedItem(index=i, reason=_reason(errs)) for i, errs in sorted(by_index.items())]
        return list(zip(good, validated, strict=True)), rejected, len(raw)
    if len(models) > MAX_BATCH_ITEMS:
        raise TooManyItems(f"{len(models)} readings in one request; at most {MAX_BATCH_ITEMS}")
    return list(enumerate(models)), [], len(models)


def parse_readings(body: bytes, *, retention_days: int, now: datetime | None = None) -> ParsedBatch:
    """Parse and validate a raw ingest body item by item.

    Raises ``MalformedBody`` (not JSON), ``NotReadings`` (not an object or array, or an empty array) and
    ``TooManyItems``. Everything else becomes a ``RejectedItem`` with the item's index.
    """
    now = now or datetime.now(UTC)
    oldest = now - timedelta(days=retention_days)
    first = body.lstrip()[:1]
    if first == b"{":
        try:
            items: list[tuple[int, ReadingIn]] = [(0, _ITEM.validate_json(body))]
            rejected: list[RejectedItem] = []
        except ValidationError as exc:
            if _is_json_error(exc):
                _loads(body)  # MalformedBody unless only NaN/Infinity literals upset the parser
            items, rejected = [], [RejectedItem(index=0, reason=_reason(exc.errors(include_url=False)))]
        readings, late = _split(items, now, oldest)
        return ParsedBatch(readings, rejected + late, True, 1)
    if first == b"[":
        items, rejected, total = _array(body)
        if total == 0:
            raise NotReadings("the array is empty: send at least one reading")
        readings, late = _split(items, now, oldest)
        return ParsedBatch(readings, sorted(rejected + late, key=lambda r: r.index), False, total)
    _loads(body)  # MalformedBody when it is not JSON at all
    raise NotReadings("the body must be one reading object or an array of readings")


__all__ = [
    "EXAMPLE_READING",
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
    "reading_json_schema",
]
