"""The query service: defaults, limits and cursors of the read-side API; SQL is in
``core.readings.query_repository``. Raises ``NotFound``/``ValidationFailed`` (core.errors), never HTTP errors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound, ValidationFailed
from core.readings.query_repository import (
    BUCKET_WIDTH,
    Agg,
    Bucket,
    QueryRepository,
    SensorRow,
    choose_bucket_source,
)
from core.readings.schemas import (
    AlertPage,
    AlertRead,
    AnomalyPage,
    AnomalyRead,
    AssetPage,
    AssetRead,
    ReadingPoint,
    ReadingSeries,
    SensorPage,
    SensorRead,
)
from core.schemas_common import in_datetime_range

#: Range of a readings query without ``start``/``end``: the last 24 hours.
DEFAULT_RANGE = timedelta(hours=24)
#: Smallest step of ``timestamptz``: a raw-readings cursor resumes just after its timestamp.
MICROSECOND = timedelta(microseconds=1)
CURSOR_VERSION = 1


def encode_cursor(last: datetime) -> str:
    """Opaque keyset cursor: base64url of ``{"v": 1, "t": <ISO timestamp of the last item>}``."""
    raw = json.dumps({"v": CURSOR_VERSION, "t": last.astimezone(UTC).isoformat()}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> datetime:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        value = datetime.fromisoformat(data["t"])
        if value.tzinfo is None:
            raise ValueError("naive cursor timestamp")
        if not in_datetime_range(value):
            raise ValueError("cursor timestamp out of range")
        return value
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error) as exc:
        raise ValidationFailed(
            "cursor is not valid; pass the next_cursor of a previous response",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        ) from exc


def _resume_after(after: datetime, step: timedelta, end: datetime) -> datetime:
    """The first instant after a cursor's ``after`` (``end`` when that lies beyond what a datetime can hold)."""
    try:
        return after + step
    except OverflowError:
        return end


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": ["query", field], "msg": message, "type": "value_error"}]
    )


def _sensor_read(row: SensorRow) -> SensorRead:
    return SensorRead.model_validate(row.sensor).model_copy(
        update={"last_reading_at": row.last_reading_at, "last_reading_value": row.last_reading_value}
    )


class QueryService:
    def __init__(self, session: AsyncSession, *, max_points: int) -> None:
        self._repo = QueryRepository(session)
        self._max_points = max_points

    async def assets(
        self, *, site: str | None, kind: str | None, sort: str, limit: int, offset: int
    ) -> AssetPage:
        rows, total = await self._repo.list_assets(
            site=site, kind=kind, sort=sort, limit=limit, offset=offset
        )
        return AssetPage(
            items=[AssetRead.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
        )

    async def sensors(
        self,
        *,
        type: str | None,
        asset_id: int | None,
        status: str | None,
        sort: str,
        limit: int,
        offset: int,
    ) -> SensorPage:
        rows, total = await self._repo.list_sensors(
            type=type, asset_id=asset_id, status=status, sort=sort, limit=limit, offset=offset
        )
        return SensorPage(items=[_sensor_read(r) for r in rows], total=total, limit=limit, offset=offset)

    async def sensor(self, sensor_id: str) -> SensorRead:
        row = await self._repo.get_sensor(sensor_id)
        if row is None:
            raise NotFound(f"sensor {sensor_id!r} does not exist")
        return _sensor_read(row)

    async def readings(
        self,
        sensor_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        bucket: Bucket | None = None,
        agg: Agg | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        now: datetime | None = None,
    ) -> ReadingSeries:
        """Raw readings (no ``bucket``) or one aggregate per bucket, ascending, ``[start, end)``, keyset-paged."""
        if limit is None:
            limit = self._max_points
        if limit > self._max_points:
            raise _invalid("limit", f"limit must be at most {self._max_points} (SM_QUERY_MAX_POINTS)")
        if agg is not None and bucket is None:
            raise _invalid("agg", "agg needs a bucket")
        if end is None:
            end = now or datetime.now(UTC)
            if start is not None and start >= end:
                raise _invalid("start", "start must be before end (default end: now)")
        if start is None:
            try:
                start = end - DEFAULT_RANGE
            except OverflowError:
                raise _invalid("end", "end is too early to default start to 24 hours before it") from None
        if start >= end:
            raise _invalid("end", "end must be after start")
        after = decode_cursor(cursor) if cursor is not None else None

        if await self._repo.get_sensor(sensor_id) is None:
            raise NotFound(f"sensor {sensor_id!r} does not exist")

        if bucket is None:
            lower = start if after is None else max(start, _resume_after(after, MICROSECOND, end))
            points = (
                await self._repo.raw_readings(sensor_id, start=lower, end=end, limit=limit + 1)
                if lower < end
                else []
            )
            source: str = "raw"
        else:
            agg = agg or Agg.avg
            caps = await self._repo.capabilities()
            chosen = choose_bucket_source(
                bucket, timescale=caps.timescale, hourly_aggregate=caps.hourly_aggregate, start=start, end=end
            )
            lower = start if after is None else max(start, _resume_after(after, BUCKET_WIDTH[bucket], end))
            points = []
            if lower < end:
                chosen, points = await self._repo.bucketed_readings(
                    sensor_id, bucket=bucket, agg=agg, source=chosen, start=lower, end=end, limit=limit + 1
                )
            source = chosen.value
        more = len(points) > limit
        points = points[:limit]
        return ReadingSeries(
            sensor_id=sensor_id,
            start=start,
            end=end,
            bucket=bucket,
            agg=agg,
            source=source,  # type: ignore[arg-type]
            limit=limit,
            items=[
                ReadingPoint(timestamp=p.timestamp, value=p.value, count=p.count, quality=p.quality)
                for p in points
            ],
            next_cursor=encode_cursor(points[-1].timestamp) if more and points else None,
        )

    async def anomalies(
        self,
        *,
        sensor_id: str | None,
        start: datetime | None,
        end: datetime | None,
        method: str | None,
        min_score: float | None,
        sort: str,
        limit: int,
        offset: int,
    ) -> AnomalyPage:
        if start is not None and end is not None and start >= end:
            raise _invalid("end", "end must be after start")
        rows, total = await self._repo.list_anomalies(
            sensor_id=sensor_id,
            start=start,
            end=end,
            method=method,
            min_score=min_score,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        return AnomalyPage(
            items=[AnomalyRead.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
        )

    async def alerts(
        self,
        *,
        status: str | None,
        severity: str | None,
        sensor_id: str | None,
        rule: str | None,
        sort: str,
        limit: int,
        offset: int,
    ) -> AlertPage:
        rows, total = await self._repo.list_alerts(
            status=status,
            severity=severity,
            sensor_id=sensor_id,
            rule=rule,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        return AlertPage(
            items=[AlertRead.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
        )
