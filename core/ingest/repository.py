"""Ingest storage and idempotency records (SQL only here).

Readings are written set-based, never row by row:

* up to ``UNNEST_MAX_ROWS`` rows: one ``INSERT … SELECT FROM unnest($1::timestamptz[], …)``;
* larger batches: asyncpg ``copy_records_to_table`` into a session-local temporary table
  (``ON COMMIT DELETE ROWS``, created once per pooled connection), then one
  ``INSERT INTO sensor_readings SELECT … FROM tmp ON CONFLICT (timestamp, sensor_id) DO NOTHING``;
* optionally (``optimistic=True``, the batch endpoint and the backfill), first a direct COPY into
  ``sensor_readings`` inside a SAVEPOINT: new readings — the normal case — then cost what a raw COPY costs
  (the temporary-table path runs at ~0.54× of it, FIELD_NOTES). If any row already exists the COPY fails with a
  unique violation, the savepoint is rolled back (its rows become dead tuples for VACUUM) and the batch takes
  the temporary-table path, which counts the duplicates. A concurrent writer of the same keys makes the COPY wait
  for it like any insert, then fall back.

Both run on the caller's session and transaction and report which rows were actually inserted.

Idempotency (DESIGN.md §4 ``idempotency_keys``): the first request with a key takes
``pg_try_advisory_xact_lock(hashtextextended('idempotency:<api_key_id>:<key>', 0))`` in its transaction and
writes a ``completed`` row with its response in that same transaction, so the record exists exactly when the
readings do. A concurrent request with the same key fails to take the lock (→ 409) — the lock lives in
PostgreSQL, so this holds across API processes — and a later one finds the row (→ replay or 422). The lock is
released by the commit or rollback; nothing stale survives a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.readings.repository import UNNEST_SOURCE, insert_readings_sql

#: Batches up to this size use ``unnest`` (one round trip); larger ones COPY into a temporary table.
UNNEST_MAX_ROWS = 500
TMP_TABLE = "ingest_readings_tmp"
UNKNOWN_SENSOR_TYPE = "unknown"


class ReadingRecord(NamedTuple):
    """Column order of ``sensor_readings`` writes (and of the temporary table); plain tuples in this order are
    accepted too (the hot paths build those)."""

    timestamp: datetime
    sensor_id: str
    value: float
    unit: str | None
    quality: float | None


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    inserted: int
    sensor_ids: list[str]
    first_timestamp: datetime | None
    last_timestamp: datetime | None
    keys: set[tuple[str, datetime]] | None = None
    """``(sensor_id, timestamp)`` of the inserted rows, when asked for."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: dict[str, Any]


#: A no-op that makes SQLAlchemy's asyncpg adapter begin the transaction on the driver connection.
_BEGIN_MARK_SQL = text("SELECT 1")

_CREATE_TMP_SQL = text(
    f"""
    CREATE TEMPORARY TABLE IF NOT EXISTS {TMP_TABLE} (
        timestamp timestamptz NOT NULL,
        sensor_id text NOT NULL,
        value double precision NOT NULL,
        unit text,
        quality double precision
    ) ON COMMIT DELETE ROWS
    """
)


_FROM_TMP = f"SELECT timestamp, sensor_id, value, unit, quality FROM {TMP_TABLE}"
_INSERT_UNNEST = insert_readings_sql(UNNEST_SOURCE, keys=False)
_INSERT_UNNEST_KEYS = insert_readings_sql(UNNEST_SOURCE, keys=True)
_INSERT_TMP = insert_readings_sql(_FROM_TMP, keys=False)
_INSERT_TMP_KEYS = insert_readings_sql(_FROM_TMP, keys=True)

_EXISTING_SENSORS_SQL = text(
    "SELECT sensor_id, unit FROM sensors WHERE sensor_id = ANY(CAST(:ids AS text[]))"
)
_REGISTER_SENSORS_SQL = text(
    """
    INSERT INTO sensors (sensor_id, type, unit)
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[]), CAST(:units AS text[]))
    ON CONFLICT (sensor_id) DO NOTHING
    RETURNING sensor_id
    """
)
_ADOPT_UNITS_SQL = text(
    """
    UPDATE sensors SET unit = v.unit
    FROM unnest(CAST(:ids AS text[]), CAST(:units AS text[])) AS v(sensor_id, unit)
    WHERE sensors.sensor_id = v.sensor_id AND sensors.unit IS NULL
    RETURNING sensors.sensor_id
    """
)

_LOCK_KEY = (
    "hashtextextended('idempotency:' || CAST(CAST(:api_key_id AS bigint) AS text)"
    " || ':' || CAST(:key AS text), 0)"
)
_TRY_LOCK_SQL = text(f"SELECT pg_try_advisory_xact_lock({_LOCK_KEY})")
_DELETE_EXPIRED_ONE_SQL = text(
    "DELETE FROM idempotency_keys WHERE api_key_id = :api_key_id AND key = :key AND expires_at <= now()"
)
_GET_SQL = text(
    """
    SELECT request_hash, status, response, response_status_code FROM idempotency_keys
    WHERE api_key_id = :api_key_id AND key = :key AND expires_at > now()
    """
)
_SAVE_SQL = text(
    """
    INSERT INTO idempotency_keys (api_key_id, key, request_hash, status, response, response_status_code,
                                  created_at, expires_at)
    VALUES (:api_key_id, :key, :request_hash, 'completed', CAST(:response AS jsonb), :status_code,
            now(), now() + make_interval(secs => :ttl_s))
    """
)
_PURGE_SQL = text(
    """
    WITH purged AS (DELETE FROM idempotency_keys WHERE expires_at <= now() RETURNING 1)
    SELECT count(*) FROM purged
    """
)


def idempotency_lock_sql() -> str:
    """SQL expression of the advisory-lock key (parameters ``:api_key_id`` and ``:key``); for tools and tests."""
    return _LOCK_KEY


class IngestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- sensors -------------------------------------------------------------------------------------------------
    async def existing_sensors(self, sensor_ids: Sequence[str]) -> dict[str, str | None]:
        """``{sensor_id: registered unit (None when the sensor has none)}`` of the ids that exist (one query)."""
        if not sensor_ids:
            return {}
        rows = await self._session.execute(_EXISTING_SENSORS_SQL, {"ids": list(sensor_ids)})
        return dict(rows.all())

    async def register_sensors(self, sensors: Sequence[tuple[str, str | None, str | None]]) -> set[str]:
        """Create ``(sensor_id, type, unit)`` sensors that do not exist; the ids this call created.

        A concurrent creator of the same id wins or waits harmlessly (``ON CONFLICT DO NOTHING``); its id is then
        missing from the result.
        """
        if not sensors:
            return set()
        rows = await self._session.execute(
            _REGISTER_SENSORS_SQL,
            {
                "ids": [s[0] for s in sensors],
                "types": [s[1] or UNKNOWN_SENSOR_TYPE for s in sensors],
                "units": [s[2] for s in sensors],
            },
        )
        return {row[0] for row in rows}

    async def adopt_units(self, units: Mapping[str, str]) -> set[str]:
        """Give sensors registered without a unit (``unit IS NULL``) these units; the ids actually updated.

        A sensor whose unit was set meanwhile (by a concurrent transaction) keeps it and is missing from the result.
        """
        if not units:
            return set()
        rows = await self._session.execute(
            _ADOPT_UNITS_SQL, {"ids": list(units), "units": list(units.values())}
        )
        return {row[0] for row in rows}

    # --- readings ------------------------------------------------------------------------------------------------
    async def insert_readings(
        self,
        rows: Sequence[ReadingRecord],
        *,
        with_keys: bool = False,
        force_copy: bool = False,
        optimistic: bool = False,
    ) -> InsertOutcome:
        """Insert readings set-based; rows whose ``(timestamp, sensor_id)`` exists are skipped.

        The sensors must exist and ``rows`` must not repeat a key. Returns what was inserted (with
        ``with_keys``, the key of every inserted row). ``force_copy`` takes a COPY path whatever the size
        (backfills); ``optimistic`` tries a direct COPY first (module docstring).
        """
        if not rows:
            return InsertOutcome(0, [], None, None, set() if with_keys else None)
        large = len(rows) > UNNEST_MAX_ROWS or force_copy
        if optimistic and large and not with_keys and await self._copy_direct(rows):
            stamps = [r[0] for r in rows]
            return InsertOutcome(len(rows), sorted({r[1] for r in rows}), min(stamps), max(stamps))
        if not large:
            timestamps, sensor_ids, values, units, qualities = (list(c) for c in zip(*rows, strict=True))
            params = {
                "timestamps": timestamps,
                "sensor_ids": sensor_ids,
                "values": values,
                "units": units,
                "qualities": qualities,
            }
            result = await self._session.execute(_INSERT_UNNEST_KEYS if with_keys else _INSERT_UNNEST, params)
        else:
            await self.copy_to_temp(rows)
            result = await self._session.execute(_INSERT_TMP_KEYS if with_keys else _INSERT_TMP)
        if with_keys:
            keys = {(sensor_id, ts) for sensor_id, ts in result}
            if not keys:
                return InsertOutcome(0, [], None, None, keys)
            stamps = [ts for _, ts in keys]
            return InsertOutcome(len(keys), sorted({k[0] for k in keys}), min(stamps), max(stamps), keys)
        count, first, last, sensor_ids = result.one()
        return InsertOutcome(int(count), sorted(sensor_ids or []), first, last)

    async def _copy_direct(self, rows: Sequence[ReadingRecord]) -> bool:
        """COPY straight into ``sensor_readings`` in a savepoint; False (rolled back) on a duplicate key.

        The savepoint is managed on the driver connection itself (SQLAlchemy does not see the COPY), and the
        transaction is begun through SQLAlchemy first so that everything stays inside it — unless an earlier
        statement of the transaction began it already (the sensor lookup of a request: one round trip less).
        """
        connection = await self._session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        if not driver.is_in_transaction():
            await self._session.execute(_BEGIN_MARK_SQL)
        await driver.execute("SAVEPOINT ingest_direct_copy")
        try:
            await driver.copy_records_to_table(
                "sensor_readings", records=rows, columns=list(ReadingRecord._fields)
            )
        except asyncpg.UniqueViolationError:
            await driver.execute("ROLLBACK TO SAVEPOINT ingest_direct_copy")
            await driver.execute("RELEASE SAVEPOINT ingest_direct_copy")
            return False
        await driver.execute("RELEASE SAVEPOINT ingest_direct_copy")
        return True

    async def copy_to_temp(self, rows: Sequence[ReadingRecord]) -> None:
        """COPY ``rows`` into the temporary table on the session's own connection and transaction.

        The ``CREATE … IF NOT EXISTS`` goes through SQLAlchemy first: it also makes sure the transaction has
        begun on the driver connection (SQLAlchemy's asyncpg adapter begins lazily), so the COPY is part of it.
        """
        await self._session.execute(_CREATE_TMP_SQL)
        connection = await self._session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(TMP_TABLE, records=rows, columns=list(ReadingRecord._fields))

    # --- idempotency ---------------------------------------------------------------------------------------------
    async def try_lock_idempotency_key(self, api_key_id: int, key: str) -> bool:
        """Take the key's transaction-scoped advisory lock; False when another transaction holds it."""
        result = await self._session.execute(_TRY_LOCK_SQL, {"api_key_id": api_key_id, "key": key})
        return bool(result.scalar_one())

    async def get_idempotency_record(self, api_key_id: int, key: str) -> StoredResponse | None:
        """The stored response of an unexpired key (an expired row is deleted first)."""
        params = {"api_key_id": api_key_id, "key": key}
        await self._session.execute(_DELETE_EXPIRED_ONE_SQL, params)
        row = (await self._session.execute(_GET_SQL, params)).one_or_none()
        if row is None or row.status != "completed":
            return None
        return StoredResponse(row.request_hash, int(row.response_status_code), dict(row.response or {}))

    async def save_idempotency_record(
        self,
        api_key_id: int,
        key: str,
        *,
        request_hash: str,
        status_code: int,
        response_json: str,
        ttl_s: float,
    ) -> None:
        await self._session.execute(
            _SAVE_SQL,
            {
                "api_key_id": api_key_id,
                "key": key,
                "request_hash": request_hash,
                "response": response_json,
                "status_code": status_code,
                "ttl_s": float(ttl_s),
            },
        )

    async def purge_expired_idempotency_keys(self) -> int:
        return int((await self._session.execute(_PURGE_SQL)).scalar_one())


__all__ = [
    "TMP_TABLE",
    "UNKNOWN_SENSOR_TYPE",
    "UNNEST_MAX_ROWS",
    "IngestRepository",
    "InsertOutcome",
    "ReadingRecord",
    "StoredResponse",
    "idempotency_lock_sql",
]
