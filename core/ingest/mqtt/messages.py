"""What one MQTT message carries and what the bridge answers about it.

* ``Message``: a received PUBLISH (topic, payload, packet id, QoS, the connection it arrived on).
* ``decode_message``: the checks that concern the message as a whole — its size, JSON, one reading object or a
  non-empty array of at most ``MAX_BATCH_ITEMS`` — with the HTTP API's wording, and the topic's sensor: an item
  without ``sensor_id`` gets the topic's, an item whose ``sensor_id`` differs from the topic's is rejected (one
  item, not the message). The items come back as JSON, ready to be joined with other messages' items into the one
  array body of a batch; everything else about a reading (types, ranges, time window, units, unknown sensors) is
  validated by the ingest service, exactly as for ``POST /api/v1/data/ingest``.
* ``RejectionNotice``: the JSON body published to ``<prefix>/<site>/<sensor_id>/rejected``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from core.ingest.mqtt.topics import ReadingsTopic
from core.ingest.schemas import MAX_BATCH_ITEMS, RejectedItem


@dataclass(frozen=True, slots=True)
class Message:
    """One received PUBLISH. ``generation`` counts the bridge's connections: a message may be acknowledged only on
    the connection it arrived on (after a reconnect the broker sends it again, with the same or another id)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_at: float
    """``time.monotonic()`` when it arrived (batch latency)."""


class Refusal(Exception):
    """The message as a whole cannot be ingested: ``status`` and ``detail`` are what the HTTP API answers for the
    same body (400 malformed JSON, 413 too large, 422 not readings)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(slots=True)
class Decoded:
    """The ingestible items of a message: ``items[k]`` (JSON) is item ``indices[k]`` of the message."""

    items: list[bytes]
    indices: list[int]
    rejected: list[RejectedItem] = field(default_factory=list)
    total: int = 0


def _loads(payload: bytes) -> tuple[Any, bool]:
    """Decode JSON; the flag says the standard library was needed (``NaN``/``Infinity`` literals, which the
    service then rejects per item as not finite, as on HTTP)."""
    try:
        return orjson.loads(payload), False
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(payload), True
        except (ValueError, RecursionError):
            raise Refusal(400, f"malformed JSON: {exc}") from None


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _not_readings() -> Refusal:
    return Refusal(422, "the body must be one reading object or an array of readings")


def decode_message(topic: ReadingsTopic, payload: bytes, *, max_bytes: int) -> Decoded:
    """The items of ``payload`` (module docstring), or raise ``Refusal``."""
    if len(payload) > max_bytes:
        raise Refusal(413, f"the body exceeds {max_bytes} bytes")
    raw, needed_stdlib = _loads(payload)
    if isinstance(raw, dict):
        items: list[Any] = [raw]
    elif isinstance(raw, list):
        if not raw:
            raise Refusal(422, "the array is empty: send at least one reading")
        if len(raw) > MAX_BATCH_ITEMS:
            raise Refusal(413, f"{len(raw)} readings in one request; at most {MAX_BATCH_ITEMS}")
        items = raw
    else:
        raise _not_readings()
    dumps = _stdlib_dumps if needed_stdlib else orjson.dumps
    decoded = Decoded([], [], total=len(items))
    for index, item in enumerate(items):
        if isinstance(item, dict):
            if "sensor_id" not in item:
                item["sensor_id"] = topic.sensor_id
            elif item["sensor_id"] != topic.sensor_id:
                reason = f"sensor_id: {item['sensor_id']!r} is not the topic's sensor {topic.sensor_id!r}"
                decoded.rejected.append(RejectedItem(index=index, reason=reason[:500]))
                continue
        decoded.items.append(dumps(item))  # not an object: the service rejects it with its own reason
        decoded.indices.append(index)
    return decoded


class RejectedReading(BaseModel):
    index: int = Field(description="Position of the reading in the message (0 for a single object).")
    reason: str


class RejectionNotice(BaseModel):
    """Published (QoS 1) to ``<prefix>/<site>/<sensor_id>/rejected`` for a message that was refused, or of which
    some readings were rejected; the message itself is acknowledged and not retried."""

    topic: str = Field(description="The topic the message was published to.")
    status: int = Field(
        description="What POST /api/v1/data/ingest answers for the same body: 202 (some readings stored), 400 "
        "(malformed JSON), 413 (too large), 422 (nothing stored), 500 (the bridge failed; see its log)."
    )
    detail: str
    rejected: list[RejectedReading] = Field(default_factory=list, description="The readings refused, with why.")
    readings: int = Field(description="Readings in the message (0 when it could not be read).")
    kept: int = Field(description="Readings of the message stored now or already stored before (duplicates).")
    received_at: datetime
    payload: str = Field(description="The original payload (UTF-8, undecodable bytes replaced), truncated.")
    payload_truncated: bool

    @classmethod
    def build(
        cls,
        topic: str,
        payload: bytes,
        *,
        status: int,
        detail: str,
        rejected: list[RejectedItem],
        readings: int,
        kept: int,
        received_at: datetime,
        max_chars: int,
    ) -> RejectionNotice:
        text = payload[: max_chars * 4].decode("utf-8", errors="replace")
        truncated = len(text) > max_chars or len(payload) > max_chars * 4
        return cls(
            topic=topic,
            status=status,
            detail=detail,
            rejected=[RejectedReading(index=r.index, reason=r.reason) for r in sorted(rejected, key=lambda r: r.index)],
            readings=readings,
            kept=kept,
            received_at=received_at,
            payload=text[:max_chars],
            payload_truncated=truncated,
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


def partial_detail(rejected: int, total: int, kept: int) -> tuple[int, str]:
    """Status and detail of a message of which ``rejected`` of ``total`` readings were refused."""
    if kept:
        return 202, f"{rejected} of {total} readings are invalid; the others were stored"
    return 422, f"{rejected} of {total} readings are invalid; none stored"


__all__ = [
    "Decoded",
    "Message",
    "Refusal",
    "RejectedReading",
    "RejectionNotice",
    "decode_message",
    "partial_detail",
]
