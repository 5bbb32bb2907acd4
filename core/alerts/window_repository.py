"""The rule-window read of the alerting agent: per sensor, its last ``n`` readings before a batch and the batch's
readings (SQL only here). A mixin of ``AlertingRepository``; bounded in time on TimescaleDB (issue 12)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.capabilities import capabilities


@dataclass(slots=True, unsafe_hash=True)
class Point:
    """One reading (or anomalous reading) of a sensor. Compared and hashed by value like a frozen dataclass but
    not frozen: an evaluation builds one per reading of its window, and a frozen dataclass's ``__init__`` costs
    ~0.7 µs against ~0.1 µs. Nothing changes a point after it is read."""

    timestamp: datetime
    value: float


#: Where the rule-window read looks for the sensors' last ``n`` readings before a batch: in the day before the
#: batch's earliest start (with the batch, in :data:`_READINGS_SQL`), then, for the sensors that found fewer, in
#: the week before that, then before that (:data:`_EARLIER_READINGS_SQL`). A day is a chunk of the hypertable;
#: a sensor reporting at least ``n`` readings a day never needs more.
READINGS_LOOKBACK_WINDOWS = (timedelta(days=1), timedelta(days=7))
#: The lower bound of the last step: older than any reading.
_BEGINNING = datetime(1, 1, 1, tzinfo=UTC)

#: Plain PostgreSQL: per sensor, its readings in ``[first, until]`` and its last ``:n`` readings before its
#: ``first``, one index range scan each, oldest first. Also the reference the bounded TimescaleDB statements must
#: answer the same as (``tests/integration/test_alert_window_query.py``, ``scripts/bench_alert_window.py``).
UNBOUNDED_READINGS_SQL = text(
    """
    SELECT s.sensor_id, r.timestamp, r.value
    FROM unnest(CAST(:ids AS text[]), CAST(:firsts AS timestamptz[])) AS s(sensor_id, first)
    CROSS JOIN LATERAL (
        (SELECT x.timestamp, x.value FROM sensor_readings x
         WHERE x.sensor_id = s.sensor_id AND x.timestamp < s.first
         ORDER BY x.timestamp DESC LIMIT :n)
        UNION ALL
        (SELECT x.timestamp, x.value FROM sensor_readings x
         WHERE x.sensor_id = s.sensor_id AND x.timestamp >= s.first AND x.timestamp <= :until)
    ) r
    ORDER BY 1, 2
    """
)

#: Per sensor: its last ``:n`` readings in ``[:since, first)`` (``before``) and its readings in ``[first, until]``
#: (the batch; ``first`` per sensor), one index range scan each, oldest first.
#:
#: Every branch carries constant time bounds (``:since``, ``:last_first`` = the latest first, ``:earliest`` =
#: the earliest first, ``:until``), so that the planner, and TimescaleDB's chunk exclusion, keep only the chunks
#: of that time range. Bounded by ``s.first`` only (issue 12), "the last n before first" planned every chunk, and
#: PostgreSQL locks every relation of a plan before running it: a call waited whenever a compression,
#: decompression or retention job held or awaited ACCESS EXCLUSIVE on any chunk, and the calls queued behind it.
#:
#: The "last n" branches are ordered by ``(sensor_id, timestamp DESC)`` so that
#: ``ix_sensor_readings_sensor_id_timestamp`` serves them rather than a backward walk of the primary key
#: (timestamp, sensor_id) through every sensor's readings of the window.
#:
#: TimescaleDB only (``readings_for``): on plain PostgreSQL there are no chunks to exclude, and the constant
#: window made the planner's choices worse there (``scripts/bench_alert_window.py`` with sparse sensors: p50
#: 309 ms against 54 ms). Measured with ``make bench-loop``'s live load (5,000 readings/s, 50 sensors), mean
#: time of the alerting handler per call: plain PostgreSQL 15, unbounded 37 ms; TimescaleDB, unbounded 47 ms,
#: this statement 61 ms, and 605 ms when the sensor equality was written as a range (``>= AND <=``, which gave
#: the planner a range's selectivity).
_READINGS_SQL = text(
    """
    SELECT s.sensor_id, r.timestamp, r.value, r.before
    FROM unnest(CAST(:ids AS text[]), CAST(:firsts AS timestamptz[])) AS s(sensor_id, first)
    CROSS JOIN LATERAL (
        (SELECT x.timestamp, x.value, true AS before FROM sensor_readings x
         WHERE x.sensor_id = s.sensor_id AND x.timestamp < s.first
           AND x.timestamp >= :since AND x.timestamp < :last_first
         ORDER BY x.sensor_id, x.timestamp DESC LIMIT :n)
        UNION ALL
        (SELECT x.timestamp, x.value, false AS before FROM sensor_readings x
         WHERE x.sensor_id = s.sensor_id AND x.timestamp >= s.first
           AND x.timestamp >= :earliest AND x.timestamp <= :until)
    ) r
    ORDER BY 1, 2
    """
)

#: Per sensor short of readings: its last ``need`` readings in ``[:since, :before)``, oldest first (the same
#: bounds and index as the first branch of :data:`_READINGS_SQL`).
_EARLIER_READINGS_SQL = text(
    """
    SELECT s.sensor_id, r.timestamp, r.value
    FROM unnest(CAST(:ids AS text[]), CAST(:needs AS integer[])) AS s(sensor_id, need)
    CROSS JOIN LATERAL (
        SELECT x.timestamp, x.value FROM sensor_readings x
        WHERE x.sensor_id = s.sensor_id
          AND x.timestamp >= :since AND x.timestamp < :before
        ORDER BY x.sensor_id, x.timestamp DESC LIMIT s.need
    ) r
    ORDER BY 1, 2
    """
)

#: TimescaleDB: plan the transaction's next statements for their parameters' values and without JIT compilation;
#: answers the settings before, which :data:`_RESTORE_PLAN_SETTINGS_SQL` puts back. After five executions of a
#: prepared statement (asyncpg prepares every statement) PostgreSQL may switch to a generic plan, which knows no
#: bounds, so on a hypertable plans and locks every chunk again. JIT: the estimated cost of these statements (an
#: index scan per sensor and branch) passes ``jit_above_cost`` with some 60 sensors, and compiling then takes
#: longer than running.
_PLAN_FOR_BOUNDS_SQL = text(
    "SELECT current_setting('plan_cache_mode'), current_setting('jit'), "
    "set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true)"
)
_RESTORE_PLAN_SETTINGS_SQL = text(
    "SELECT set_config('plan_cache_mode', :plan_cache_mode, true), set_config('jit', :jit, true)"
)


class ReadingsWindowQueries:
    _session: AsyncSession

    async def readings_for(
        self,
        firsts: Mapping[str, datetime],
        until: datetime,
        lookback: int,
        *,
        windows: Sequence[timedelta] = READINGS_LOOKBACK_WINDOWS,
        bounded: bool | None = None,
    ) -> dict[str, list[Point]]:
        """Per sensor, oldest first: its last ``lookback`` readings before ``firsts[sensor]`` and its readings in
        ``[firsts[sensor], until]``.

        Plain PostgreSQL: one statement (:data:`UNBOUNDED_READINGS_SQL`). TimescaleDB: every statement bounded
        in time and planned for its bounds: the batch with the readings in ``windows[0]`` before the earliest
        first, then, for the sensors that found fewer than ``lookback`` readings, the next window further back,
        and so on, then everything older. The same answer either way. ``bounded`` overrides the choice (tests run
        the bounded statements on plain PostgreSQL too)."""
        out: dict[str, list[Point]] = {s: [] for s in firsts}
        if not firsts:
            return out
        ids = list(firsts)
        params = {"ids": ids, "firsts": [firsts[s] for s in ids], "until": until, "n": lookback}
        if bounded is None:
            bounded = (await capabilities(self._session)).timescale  # plain: no chunks to exclude (_READINGS_SQL)
        if not bounded:
            for sensor_id, timestamp, value in await self._session.execute(UNBOUNDED_READINGS_SQL, params):
                out[sensor_id].append(Point(timestamp, value))
            return out
        plan_cache_mode, jit, *_ = (await self._session.execute(_PLAN_FOR_BOUNDS_SQL)).one()
        await self._bounded(out, params, lookback, windows)
        await self._session.execute(
            _RESTORE_PLAN_SETTINGS_SQL, {"plan_cache_mode": plan_cache_mode, "jit": jit}
        )
        return out

    async def _bounded(
        self,
        out: dict[str, list[Point]],
        params: dict[str, Any],
        lookback: int,
        windows: Sequence[timedelta],
    ) -> None:
        """Fill ``out`` with the bounded statements (TimescaleDB; see ``readings_for``)."""
        ids, firsts = params["ids"], params["firsts"]
        earliest, last_first = min(firsts), max(firsts)
        since = earliest - windows[0] if windows else _BEGINNING
        params = params | {"since": since, "last_first": last_first, "earliest": earliest}
        found = dict.fromkeys(ids, 0)
        for sensor_id, timestamp, value, before in await self._session.execute(_READINGS_SQL, params):
            out[sensor_id].append(Point(timestamp, value))
            found[sensor_id] += before
        for window in [*windows[1:], None]:
            short = [s for s in ids if found[s] < lookback]
            if not short or since == _BEGINNING:
                return
            upper, since = since, since - window if window is not None else _BEGINNING
            needs = [lookback - found[s] for s in short]
            rows = await self._session.execute(
                _EARLIER_READINGS_SQL, {"ids": short, "needs": needs, "since": since, "before": upper}
            )
            earlier: dict[str, list[Point]] = {s: [] for s in short}
            for sensor_id, timestamp, value in rows:
                earlier[sensor_id].append(Point(timestamp, value))
            for sensor_id, points in earlier.items():
                out[sensor_id] = points + out[sensor_id]
                found[sensor_id] += len(points)

__all__ = ["READINGS_LOOKBACK_WINDOWS", "Point", "ReadingsWindowQueries"]
