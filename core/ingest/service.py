"""Ingest service: ``IngestService`` is the one entry point of ingestion. ``ingest`` takes a raw request body
(the HTTP router only reads it and maps the ``IngestReply`` to a response) and picks the path:

* an ``Idempotency-Key`` → one unit of work holding the key's lock, the readings and the key's record (a stored
  response is replayed; DESIGN.md §4 ``idempotency_keys``);
* else one reading, not back-fill, with the ``GroupCommitter`` running → queued to it, answered after the shared
  transaction committed (``core.ingest.group_commit``);
* else one unit of work for the batch.

``backfill_csv`` loads a CSV file (``core.ingest.backfill``). Every path writes its readings and its
``ReadingsIngested`` outbox event through one step, ``core.ingest.store.store_readings``, in the transaction of
the path; the commit wakes the outbox relay (``core.events.outbox``). When a batch needs sensors registered (or
units adopted) first, the readings' transaction raises ``RegistrationNeeded`` before writing anything and is run
again by ``with_sensors_registered`` (``core.ingest.sensors``) after the registration committed in its own.

Modes: ``partial`` (default) stores the good items and lists the bad ones; ``atomic`` stores nothing when any
item is bad and answers 422 listing every bad item. A request in which no item can be stored is a 422 in both
modes. ``duplicates`` counts items whose ``(sensor_id, timestamp)`` is already stored or repeated within the
request (the first occurrence wins). Sensors and units (``core.ingest.sensors``): readings of unknown sensors are
registered or rejected, readings in another unit than their sensor's are converted into it or rejected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal
from uuid import uuid4

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.session import unit_of_work
from core.errors import PayloadTooLarge, ValidationFailed
from core.ingest.backfill import BackfillReport, backfill_csv
from core.ingest.errors import IdempotencyKeyInFlight, IdempotencyKeyMismatch, MalformedJSON
from core.ingest.group_commit import GroupCommitter
from core.ingest.repository import IngestRepository, StoredResponse
from core.ingest.schemas import (
    DEFAULT_BACKFILL_BATCH_SIZE,
    MAX_IDEMPOTENCY_KEY_CHARS,
    IngestResponse,
    MalformedBody,
    NotReadings,
    ParsedBatch,
    RejectedItem,
    TooManyItems,
    parse_readings,
)
from core.ingest.sensors import resolve_sensors, with_sensors_registered
from core.ingest.store import count_readings, first_occurrences, store_readings
from core.observability.metrics import INGEST_BATCH_SIZE, INGEST_REQUESTS_TOTAL

Mode = Literal["partial", "atomic", "group_commit", "replay"]
"""The ``mode`` label of ``sm_ingest_requests_total``."""
_REQUESTS = {mode: INGEST_REQUESTS_TOTAL.labels(mode=mode) for mode in ("partial", "atomic", "group_commit", "replay")}
_ONE_REJECTED = "the reading is invalid; nothing stored"


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


def _none_stored(rejected: list[RejectedItem], total: int) -> ValidationFailed:
    """The 422 of a batch of which nothing is stored (its rejected readings counted)."""
    count_readings(0, 0, len(rejected))
    return rejection_error(rejected, f"{len(rejected)} of {total} readings are invalid; none stored")


@dataclass(frozen=True, slots=True)
class IngestReply:
    """What an ingest request is answered with: status code, JSON body, and whether it replays the stored answer
    of an earlier request with the same ``Idempotency-Key``."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


class IngestService:
    """The one entry point of ingestion (module docstring). Cheap to build: one per request is fine."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        committer: GroupCommitter | None = None,
    ) -> None:
        self._factory = session_factory
        self.settings = settings
        self._committer = committer

    async def ingest(
        self,
        body: bytes,
        *,
        api_key_id: int,
        atomic: bool = False,
        backfill: bool = False,
        idempotency_key: str | None = None,
    ) -> IngestReply:
        """Store the readings of a raw JSON body (one reading or an array); raise an ``AppError`` (422 when
        nothing, or with ``atomic`` not everything, can be stored). ``backfill``: the readings are history (also
        when all of them are older than ``SM_BACKFILL_AGE_MINUTES``)."""
        mode: Mode = "atomic" if atomic else "partial"
        if idempotency_key is not None:
            key = check_idempotency_key(idempotency_key)
            return await self._idempotent(body, key, api_key_id=api_key_id, atomic=atomic, backfill=backfill)
        batch = parse_body(body, self.settings)
        committer = self._committer
        if batch.single and not backfill and committer is not None and committer.running:
            return await self._group_commit(batch, committer, api_key_id)
        _REQUESTS[mode].inc()
        store = partial(self._store, batch, atomic=atomic, api_key_id=api_key_id, backfill=backfill)
        result = await with_sensors_registered(self._factory, store)
        return IngestReply(202, result.model_dump(mode="json"))

    async def backfill_csv(
        self,
        path: Path,
        *,
        batch_size: int = DEFAULT_BACKFILL_BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> BackfillReport:
        """Load a CSV file as history, one transaction per batch (``core.ingest.backfill``)."""
        return await backfill_csv(
            self._factory,
            path,
            retention_days=self.settings.retention_days,
            batch_size=batch_size,
            progress=progress,
        )

    # --- paths -----------------------------------------------------------------------------------------------
    async def _group_commit(self, batch: ParsedBatch, committer: GroupCommitter, api_key_id: int) -> IngestReply:
        _REQUESTS["group_commit"].inc()
        INGEST_BATCH_SIZE.observe(1)
        if batch.rejected:
            count_readings(0, 0, 1)
            raise rejection_error(batch.rejected, _ONE_REJECTED)
        result = await committer.submit(batch.readings[0], api_key_id)  # counts its readings itself
        if result.outcome == "rejected":
            raise rejection_error([RejectedItem(index=0, reason=result.reason or "rejected")], _ONE_REJECTED)
        accepted = result.outcome == "accepted"
        body = {"event_id": str(result.event_id), "accepted": int(accepted), "duplicates": int(not accepted),
                "rejected": []}  # fmt: skip
        return IngestReply(202, body)

    async def _store(self, batch: ParsedBatch, *, atomic: bool, api_key_id: int, backfill: bool) -> IngestResponse:
        async with unit_of_work(self._factory) as session:
            return await self._write(session, batch, atomic=atomic, api_key_id=api_key_id, backfill=backfill)

    async def _idempotent(
        self, body: bytes, key: str, *, api_key_id: int, atomic: bool, backfill: bool
    ) -> IngestReply:
        """The key's lock, the readings and the key's record in one transaction; the body is parsed (and the
        request counted) only when there is no stored answer, and once across registration retries."""
        fingerprint = request_hash(body, atomic=atomic, backfill=backfill)
        parsed: list[ParsedBatch] = []

        async def attempt() -> IngestReply:
            async with unit_of_work(self._factory) as session:
                repo = IngestRepository(session)
                stored = await self._claim(repo, api_key_id, key, fingerprint)
                if stored is not None:
                    return IngestReply(stored.status_code, stored.body, replayed=True)
                if not parsed:
                    parsed.append(parse_body(body, self.settings))
                    _REQUESTS["atomic" if atomic else "partial"].inc()
                result = await self._write(session, parsed[0], atomic=atomic, api_key_id=api_key_id, backfill=backfill)
                payload = result.model_dump(mode="json")
                await repo.save_idempotency_record(
                    api_key_id,
                    key,
                    request_hash=fingerprint,
                    status_code=202,
                    response_json=orjson.dumps(payload).decode(),
                    ttl_s=self.settings.idempotency_ttl_hours * 3600.0,
                )
            return IngestReply(202, payload)

        reply = await with_sensors_registered(self._factory, attempt)
        if reply.replayed:
            _REQUESTS["replay"].inc()
        return reply

    # --- in the path's transaction ---------------------------------------------------------------------------
    @staticmethod
    async def _claim(repo: IngestRepository, api_key_id: int, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim ``key`` for this transaction; the stored response when it was already answered.

        Raises 409 while another transaction (in any API process) holds the key, 422 when the key was used
        with a different request.
        """
        if not await repo.try_lock_idempotency_key(api_key_id, key):
            raise IdempotencyKeyInFlight(
                "a request with this Idempotency-Key is still being processed; retry later",
                headers={"Retry-After": "1"},
            )
        stored = await repo.get_idempotency_record(api_key_id, key)
        if stored is not None and stored.request_hash != fingerprint:
            raise IdempotencyKeyMismatch(
                "this Idempotency-Key was already used with a different request body"
            )
        return stored

    async def _write(
        self, session: AsyncSession, batch: ParsedBatch, *, atomic: bool, api_key_id: int, backfill: bool
    ) -> IngestResponse:
        """Store the valid readings of ``batch`` in ``session``'s transaction; 422 when nothing (or, atomic, not
        everything) can be stored."""
        INGEST_BATCH_SIZE.observe(batch.total)
        rejected = list(batch.rejected)
        if atomic and rejected:
            raise _none_stored(rejected, batch.total)
        resolved = await resolve_sensors(
            IngestRepository(session), batch.readings, auto_register=bool(self.settings.auto_register_sensors)
        )
        rejected += resolved.rejected
        kept, _keys = first_occurrences(resolved.readings)
        if rejected and (atomic or not kept):
            raise _none_stored(rejected, batch.total)
        resolved.require_registered()  # new sensors or units: committed first, then this runs again
        event_id = uuid4()
        outcome = await store_readings(
            session,
            kept,
            event_id=event_id,
            api_key_id=api_key_id,
            backfill=backfill,
            backfill_age=timedelta(minutes=self.settings.backfill_age_minutes),
            optimistic=True,
        )
        duplicates = len(resolved.readings) - outcome.inserted
        count_readings(outcome.inserted, duplicates, len(rejected))
        return IngestResponse(
            event_id=event_id,
            accepted=outcome.inserted,
            duplicates=duplicates,
            rejected=sorted(rejected, key=lambda r: r.index),
        )


__all__ = [
    "IngestReply",
    "IngestService",
    "check_idempotency_key",
    "parse_body",
    "rejection_error",
    "request_hash",
]
