"""The one insert-and-outbox step of every ingest path: single readings (``core.ingest.group_commit``), batches
(``core.ingest.service``) and the CSV back-fill (``core.ingest.backfill``).

``store_readings`` inserts rows set-based (``IngestRepository.insert_readings``: rows whose ``(sensor_id,
timestamp)`` exists are skipped) and, when any row was inserted, puts one ``ReadingsIngested`` in the outbox — both
in the caller's transaction (it flushes, never commits; DESIGN.md §5.2). The commit of that transaction wakes the
outbox relays of the process by itself (``core.events.outbox``); callers do nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from core.events.outbox import add_to_outbox
from core.events.types import ReadingsIngested
from core.ingest.repository import IngestRepository, InsertOutcome, ReadingRecord
from core.ingest.schemas import ValidReading
from core.observability.metrics import INGEST_READINGS_TOTAL

ReadingKey = tuple[str, datetime]
"""``(sensor_id, timestamp)``: what makes a reading unique."""


async def store_readings(
    session: AsyncSession,
    rows: Sequence[ReadingRecord],
    *,
    event_id: UUID,
    api_key_id: int | None = None,
    backfill: bool = False,
    backfill_age: timedelta | None = None,
    with_keys: bool = False,
    force_copy: bool = False,
    optimistic: bool = False,
) -> InsertOutcome:
    """Insert ``rows`` and announce what was inserted with one ``ReadingsIngested`` (nothing when nothing was).

    The sensors must exist and ``rows`` must not repeat a key (``first_occurrences``). The event is history when
    ``backfill``, or when its newest inserted reading is older than ``backfill_age``. ``with_keys``,
    ``force_copy`` and ``optimistic`` choose the insert (``IngestRepository.insert_readings``).
    """
    outcome = await IngestRepository(session).insert_readings(
        rows, with_keys=with_keys, force_copy=force_copy, optimistic=optimistic
    )
    if not outcome.inserted:
        return outcome
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
    return outcome


def first_occurrences(
    readings: list[ValidReading], seen: set[ReadingKey] | None = None
) -> tuple[list[ReadingRecord], set[ReadingKey]]:
    """Rows of the first occurrence of each ``(sensor_id, timestamp)`` not already in ``seen`` (which is not
    changed), and their keys; ``len(readings) - len(rows)`` repeats were dropped.

    Plain tuples in ``ReadingRecord`` column order (hot path: no per-row NamedTuple construction).
    """
    keys: set[ReadingKey] = set()
    add = keys.add
    rows: list[ReadingRecord] = []
    append = rows.append
    for r in readings:
        key = (r.sensor_id, r.timestamp)
        if key in keys or (seen is not None and key in seen):
            continue
        add(key)
        append((r.timestamp, r.sensor_id, r.value, r.unit, r.quality))  # type: ignore[arg-type]
    return rows, keys


def to_record(reading: ValidReading) -> ReadingRecord:
    return ReadingRecord(reading.timestamp, reading.sensor_id, reading.value, reading.unit, reading.quality)


def count_readings(accepted: int, duplicates: int, rejected: int) -> None:
    """``sm_ingest_readings_total`` by result, for every path."""
    if accepted:
        INGEST_READINGS_TOTAL.labels(result="accepted").inc(accepted)
    if duplicates:
        INGEST_READINGS_TOTAL.labels(result="duplicate").inc(duplicates)
    if rejected:
        INGEST_READINGS_TOTAL.labels(result="rejected").inc(rejected)


__all__ = ["ReadingKey", "count_readings", "first_occurrences", "store_readings", "to_record"]
