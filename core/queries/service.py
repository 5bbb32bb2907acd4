"""The query service: defaults, limits and cursors of the read-side API (the cursor codec and ``Page`` are in
``core.paging``); SQL is in ``core.queries.repository``. Raises ``NotFound``/``ValidationFailed``
(core.errors), never HTTP errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound, ValidationFailed
from core.paging import Page, PageRequest, decode_cursor, encode_cursor
from core.queries.repository import (
    BUCKET_WIDTH,
    Agg,
    Bucket,
    QueryRepository,
    SensorRow,
    choose_bucket_source,
)
from core.queries.schemas import (
    AlertFilter,
    AlertRead,
    AnomalyFilter,
    AnomalyRead,
    AssetFilter,
    AssetRead,
    ReadingPoint,
    ReadingSeries,
    SensorFilter,
    SensorRead,
)

#: Range of a readings query without ``start``/``end``: the last 24 hours.
DEFAULT_RANGE = timedelta(hours=24)
#: Smallest step of ``timestamptz``: a raw-readings cursor resumes just after its timestamp.
MICROSECOND = timedelta(microseconds=1)


def _resume_after(after: datetime, step: timedelta, end: datetime) -> datetime:
    """The first instant after a cursor's ``after`` (``end`` when that lies beyond what a datetime can hold)."""
    try:
        return after + step
    except OverflowError:
        return end


def _sensor_read(row: SensorRow) -> SensorRead:
    return SensorRead.model_validate(row.sensor).model_copy(
        update={"last_reading_at": row.last_reading_at, "last_reading_value": row.last_reading_value}
    )


class QueryService:
    def __init__(self, session: AsyncSession, *, max_points: int) -> None:
        self._repo = QueryRepository(session)
        self._max_points = max_points

    async def assets(self, where: AssetFilter, page: PageRequest) -> Page[AssetRead]:
        rows, total = await self._repo.list_assets(where, page)
        return Page[AssetRead].of(rows, total=total, limit=page.limit, offset=page.offset)

    async def sensors(self, where: SensorFilter, page: PageRequest) -> Page[SensorRead]:
        rows, total = await self._repo.list_sensors(where, page)
        items = [_sensor_read(r) for r in rows]
        return Page[SensorRead](items=items, total=total, limit=page.limit, offset=page.offset)

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
            raise ValidationFailed.at(
                ["query", "limit"], f"limit must be at most {self._max_points} (SM_QUERY_MAX_POINTS)"
            )
        if agg is not None and bucket is None:
            raise ValidationFailed.at(["query", "agg"], "agg needs a bucket")
        if end is None:
            end = now or datetime.now(UTC)
            if start is not None and start >= end:
                raise ValidationFailed.at(["query", "start"], "start must be before end (default end: now)")
        if start is None:
            try:
                start = end - DEFAULT_RANGE
            except OverflowError:
                raise ValidationFailed.at(
                    ["query", "end"], "end is too early to default start to 24 hours before it"
                ) from None
        if start >= end:
            raise ValidationFailed.at(["query", "end"], "end must be after start")
        after = decode_cursor(cursor) if cursor is not None else None

        if not await self._repo.sensor_exists(sensor_id):
            raise NotFound(f"sensor {sensor_id!r} does not exist")

        if bucket is None:
            lower = start if after is None else max(start, _resume_after(after, MICROSECOND, end))
            points = (
                await self._repo.raw_readings(sensor_id, start=lower, end=end, limit=limit + 1) if lower < end else []
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
                ReadingPoint(timestamp=p.timestamp, value=p.value, count=p.count, quality=p.quality) for p in points
            ],
            next_cursor=encode_cursor(points[-1].timestamp) if more and points else None,
        )

    async def anomalies(self, where: AnomalyFilter, page: PageRequest) -> Page[AnomalyRead]:
        if where.start is not None and where.end is not None and where.start >= where.end:
            raise ValidationFailed.at(["query", "end"], "end must be after start")
        rows, total = await self._repo.list_anomalies(where, page)
        return Page[AnomalyRead].of(rows, total=total, limit=page.limit, offset=page.offset)

    async def alerts(self, where: AlertFilter, page: PageRequest) -> Page[AlertRead]:
        rows, total = await self._repo.list_alerts(where, page)
        return Page[AlertRead].of(rows, total=total, limit=page.limit, offset=page.offset)
