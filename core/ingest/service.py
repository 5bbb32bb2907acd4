"""Ingest service: validated readings → set-based insert, outbox event and idempotency record, in the caller's
transaction (it flushes, never commits; DESIGN.md §5.2). When the batch needs sensors registered (or units
adopted) first, ``ingest`` raises ``RegistrationNeeded`` before writing anything: the caller runs its unit of
work through ``with_sensors_registered`` (``core.ingest.sensors``), which commits the registration in its own
transaction and runs it again.

Modes: ``partial`` (default) stores the good items and lists the bad ones; ``atomic`` stores nothing when any
item is bad and answers 422 listing every bad item. A request in which no item can be stored is a 422 in both
modes. ``duplicates`` counts items whose ``(sensor_id, timestamp)`` is already stored or repeated within the
request (the first occurrence wins). Sensors and units (``core.ingest.sensors``): readings of unknown sensors are
registered or rejected, readings in another unit than their sensor's are converted into it or rejected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.errors import PayloadTooLarge, ValidationFailed
from core.events.outbox import add_to_outbox
from core.events.types import ReadingsIngested
from core.ingest.errors import IdempotencyKeyInFlight, IdempotencyKeyMismatch, MalformedJSON
from core.ingest.repository import IngestRepository, InsertOutcome, ReadingRecord, StoredResponse
from core.ingest.schemas import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    IngestResponse,
    MalformedBody,
    NotReadings,
    ParsedBatch,
    RejectedItem,
    TooManyItems,
    ValidReading,
    parse_readings,
)
from core.ingest.sensors import UNKNOWN_SENSOR, resolve_sensors, with_sensors_registered
from core.observability.metrics import INGEST_BATCH_SIZE, INGEST_READINGS_TOTAL


def parse_body(body: bytes, settings: Settings) -> ParsedBatch:
    """Parse a raw body into valid readings and rejected items, or raise the matching AppError."""
    try:
        return parse_readings(body, retention_days=settings.retention_days)
    except MalformedBody as exc:
        raise MalformedJSON(str(exc)) from None
    except TooManyItems as exc:
        raise PayloadTooLarge(str(exc)) from None
    except NotReadings as exc:
        raise ValidationFailed(
            str(exc), errors=[{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
        ) from None


def request_hash(body: bytes, *, atomic: bool, backfill: bool = False) -> str:
    """Fingerprint of a request for idempotency: the mode, the back-fill flag and the exact raw body."""
    digest = hashlib.sha256(b"atomic=1\n" if atomic else b"atomic=0\n")
    if backfill:
        digest.update(b"backfill=1\n")
    digest.update(body)
    return digest.hexdigest()


async def announce_ingested(
    session: AsyncSession,
    outcome: InsertOutcome,
    *,
    event_id: UUID,
    api_key_id: int | None = None,
    backfill: bool = False,
    backfill_age: timedelta | None = None,
) -> None:
    """``ReadingsIngested`` of what ``outcome`` inserted to the outbox, in the caller's transaction (nothing when
    nothing was inserted). History when ``backfill``, or when its newest reading is older than ``backfill_age``."""
    if not outcome.inserted:
        return
    assert outcome.first_timestamp is not None and outcome.last_timestamp is not None
    if backfill_age is not None:
        backfill = backfill or outcome.last_timestamp < datetime.now(UTC) - backfill_age
    await add_to_outbox(
        session,
        ReadingsIngested(
            sensor_ids=outcome.sensor_ids,
            count=outcome.inserted,
            first_timestamp=outcome.first_timestamp,
            last_timestamp=outcome.last_timestamp,
            api_key_id=api_key_id,
            ingest_event_id=event_id,
            backfill=backfill,
        ),
    )


def check_idempotency_key(key: str) -> str:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable():
        msg = f"Idempotency-Key must be 1–{MAX_IDEMPOTENCY_KEY_CHARS} printable characters"
        raise ValidationFailed(
            msg, errors=[{"loc": ["header", "Idempotency-Key"], "msg": msg, "type": "value_error"}]
        )
    return key


def rejection_error(rejected: list[RejectedItem], detail: str) -> ValidationFailed:
    """422 listing every rejected item (``errors`` in the problem's usual shape, plus ``rejected``)."""
    ordered = sorted(rejected, key=lambda r: r.index)
    errors = [{"loc": ["body", r.index], "msg": r.reason, "type": "rejected"} for r in ordered]
    return ValidationFailed(detail, errors=errors, extra={"rejected": [r.model_dump() for r in ordered]})


@dataclass(slots=True)
class _Plan:
    rows: list[ReadingRecord]
    in_batch_duplicates: int
    rejected: list[RejectedItem]


def dedupe(readings: list[ValidReading]) -> tuple[list[ReadingRecord], int]:
    """Rows of the first occurrence of each ``(sensor_id, timestamp)``, and the number of repeats dropped.

    Plain tuples in ``ReadingRecord`` column order (hot path: no per-row NamedTuple construction).
    """
    seen: set[tuple[str, Any]] = set()
    add = seen.add
    rows: list[ReadingRecord] = []
    append = rows.append
    for r in readings:
        key = (r.sensor_id, r.timestamp)
        if key in seen:
            continue
        add(key)
        append((r.timestamp, r.sensor_id, r.value, r.unit, r.quality))  # type: ignore[arg-type]
    return rows, len(readings) - len(rows)


def to_record(reading: ValidReading) -> ReadingRecord:
    return ReadingRecord(reading.timestamp, reading.sensor_id, reading.value, reading.unit, reading.quality)


class IngestService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self._session = session
        self._settings = settings
        self._repo = IngestRepository(session)

    # --- idempotency -----------------------------------------------------------------------------------------
    async def begin_idempotent(self, api_key_id: int, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim ``key`` for this transaction; the stored response when it was already answered.

        Raises 409 while another transaction (in any API process) holds the key, 422 when the key was used
        with a different request.
        """
        if not await self._repo.try_lock_idempotency_key(api_key_id, key):
            raise IdempotencyKeyInFlight(
                "a request with this Idempotency-Key is still being processed; retry later",
                headers={"Retry-After": "1"},
            )
        stored = await self._repo.get_idempotency_record(api_key_id, key)
        if stored is not None and stored.request_hash != fingerprint:
            raise IdempotencyKeyMismatch(
                "this Idempotency-Key was already used with a different request body"
            )
        return stored

    async def complete_idempotent(
        self, api_key_id: int, key: str, fingerprint: str, *, status_code: int, body: dict[str, Any]
    ) -> None:
        await self._repo.save_idempotency_record(
            api_key_id,
            key,
            request_hash=fingerprint,
            status_code=status_code,
            response_json=orjson.dumps(body).decode(),
            ttl_s=self._settings.idempotency_ttl_hours * 3600.0,
        )

    # --- readings --------------------------------------------------------------------------------------------
    async def ingest(
        self,
        batch: ParsedBatch,
        *,
        atomic: bool,
        api_key_id: int | None,
        event_id: UUID | None = None,
        backfill: bool = False,
    ) -> IngestResponse:
        """Store the valid readings of ``batch``; raise 422 when nothing (or, atomic, not everything) can be.
        ``backfill``: the readings are history (also when all of them are older than ``SM_BACKFILL_AGE_MINUTES``)."""
        event_id = event_id or uuid4()
        INGEST_BATCH_SIZE.observe(batch.total)
        rejected = list(batch.rejected)
        if atomic and rejected:
            self._count(0, 0, len(rejected))
            raise rejection_error(
                rejected, f"{len(rejected)} of {batch.total} readings are invalid; none stored"
            )
        resolved = await resolve_sensors(
            self._repo, batch.readings, auto_register=bool(self._settings.auto_register_sensors)
        )
        rejected += resolved.rejected
        kept, in_batch_duplicates = dedupe(resolved.readings)
        if rejected and (atomic or not kept):
            self._count(0, 0, len(rejected))
            raise rejection_error(
                rejected,
                f"{len(rejected)} of {batch.total} readings are invalid; none stored",
            )
        resolved.require_registered()  # new sensors or units: committed first, then this runs again
        outcome = await self._repo.insert_readings(kept, optimistic=True)
        duplicates = in_batch_duplicates + (len(kept) - outcome.inserted)
        await announce_ingested(
            self._session,
            outcome,
            event_id=event_id,
            api_key_id=api_key_id,
            backfill=backfill,
            backfill_age=timedelta(minutes=self._settings.backfill_age_minutes),
        )
        self._count(outcome.inserted, duplicates, len(rejected))
        return IngestResponse(
            event_id=event_id,
            accepted=outcome.inserted,
            duplicates=duplicates,
            rejected=sorted(rejected, key=lambda r: r.index),
        )

    @staticmethod
    def _count(accepted: int, duplicates: int, rejected: int) -> None:
        if accepted:
            INGEST_READINGS_TOTAL.labels(result="accepted").inc(accepted)
        if duplicates:
            INGEST_READINGS_TOTAL.labels(result="duplicate").inc(duplicates)
        if rejected:
            INGEST_READINGS_TOTAL.labels(result="rejected").inc(rejected)


__all__ = [
    "UNKNOWN_SENSOR",
    "IngestService",
    "announce_ingested",
    "check_idempotency_key",
    "dedupe",
    "parse_body",
    "rejection_error",
    "request_hash",
    "resolve_sensors",
    "to_record",
    "with_sensors_registered",
]
