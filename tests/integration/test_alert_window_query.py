"""The alerting rule-window read (``AlertingRepository.readings_for``) is bounded in time for the planner (issue 12)
and answers exactly what the unbounded query it replaced answered: per sensor, its last n readings before its
batch start and its readings in the batch. Sensors with dense data, sparse data (fewer than n readings in the first
window: only the wider windows, or the last unbounded step, find the rest), readings exactly on the windows'
bounds, no data before the batch, no data at all, and a batch start of their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.alerts.repository import READINGS_LOOKBACK_WINDOWS, AlertingRepository, Point
from core.alerts.window_repository import UNBOUNDED_READINGS_SQL
from core.config import Settings
from tests.support.db import session_factory_for

#: The reference: one statement, no lower time bound on "the last n before first" (the query before issue 12, which
#: the plain-PostgreSQL path still runs); the bounded TimescaleDB statements must answer the same.
REFERENCE_SQL = UNBOUNDED_READINGS_SQL

N = 5
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
Answer = dict[str, list[tuple[datetime, float]]]


@pytest.fixture
async def session_factory(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with session_factory_for(settings) as factory:
        yield factory


def _series(start: datetime, stop: datetime, step: timedelta) -> list[datetime]:
    out, at = [], start
    while at <= stop:
        out.append(at)
        at += step
    return out


def _fleet(tag: str, w: timedelta) -> tuple[dict[str, list[datetime]], dict[str, datetime], datetime]:
    """Readings per sensor, each sensor's batch start and the batch's end, for windows (w, 7 w). Most sensors
    start at T0, one at E = T0 - w / 2 (the earliest): the read looks in [E - w, first), then [E - 8 w, E - w),
    then before E - 8 w."""
    e = T0 - w / 2
    until = T0 + w / 6
    dense = _series(T0 - 3 * w, until + w / 10, w / 100)
    readings = {
        f"dense-{tag}": dense,
        # two readings per window for six windows: the second window has the rest
        f"sparse-{tag}": _series(T0 - 6 * w, until, w / 2),
        # one reading every 5 w: one in the second window, the rest only before it
        f"rare-{tag}": _series(T0 - 40 * w, T0, 5 * w),
        # on the first window's lower bound, just inside it, then nothing until far before the second window
        f"edge-{tag}": [T0 - 40 * w, T0 - 30 * w, e - w, e - w / 3, T0],
        # on the second window's lower bound, just before it, and in the first window just after its lower bound
        f"edge2-{tag}": [
            e - 9 * w,
            e - 8 * w - timedelta(microseconds=1),
            e - 8 * w,
            e - w - timedelta(microseconds=1),
            T0,
        ],
        # nothing before the batch
        f"new-{tag}": _series(T0, until, w / 20),
        # nothing at all
        f"silent-{tag}": [],
        # a batch start of its own, later than the batch's (dense) and earlier (sparse readings before it)
        f"late-{tag}": dense,
        f"early-{tag}": _series(T0 - 8 * w, until, w / 3),
        # exactly N readings before the batch, all in the first window
        f"exact-{tag}": [T0 - w / (k + 2) for k in range(N)] + [until],
    }
    firsts = dict.fromkeys(readings, T0)
    firsts[f"late-{tag}"] = T0 + w / 12 + timedelta(microseconds=1)
    firsts[f"early-{tag}"] = e
    return readings, firsts, until


async def _store(session: AsyncSession, readings: dict[str, list[datetime]]) -> None:
    for sensor_id, timestamps in readings.items():
        await session.execute(
            text("INSERT INTO sensors (sensor_id, type, status) VALUES (:s, 'temperature', 'active')"),
            {"s": sensor_id},
        )
        if timestamps:
            await session.execute(
                text(
                    "INSERT INTO sensor_readings (timestamp, sensor_id, value) "
                    "SELECT t, :s, extract(epoch FROM t) / 1000 FROM unnest(CAST(:ts AS timestamptz[])) AS t"
                ),
                {"s": sensor_id, "ts": timestamps},
            )


async def _reference(session: AsyncSession, firsts: dict[str, datetime], until: datetime) -> Answer:
    ids = list(firsts)
    rows = await session.execute(
        REFERENCE_SQL, {"ids": ids, "firsts": [firsts[s] for s in ids], "until": until, "n": N}
    )
    out: Answer = {s: [] for s in ids}
    for sensor_id, timestamp, value in rows:
        out[sensor_id].append((timestamp, value))
    return out


def _answer(got: dict[str, list[Point]]) -> Answer:
    return {s: [(p.timestamp, p.value) for p in points] for s, points in got.items()}


@pytest.mark.parametrize(
    "windows",
    [(timedelta(hours=1), timedelta(hours=7)), READINGS_LOOKBACK_WINDOWS],
    ids=["1h-7h", "default"],
)
async def test_bounded_windows_answer_like_the_unbounded_query(
    session_factory: async_sessionmaker[AsyncSession], windows: tuple[timedelta, timedelta]
) -> None:
    w = windows[0]
    assert windows[1] == 7 * w  # what _fleet lays its scenarios out for
    tag = uuid.uuid4().hex[:8]
    readings, firsts, until = _fleet(tag, w)
    async with session_factory() as session, session.begin():
        await _store(session, readings)
    async with session_factory() as session, session.begin():
        expected = await _reference(session, firsts, until)
        got = await AlertingRepository(session).readings_for(firsts, until, N, windows=windows, bounded=True)

    assert _answer(got) == expected

    def before(sensor_id: str) -> list[datetime]:
        return [p.timestamp for p in got[sensor_id] if p.timestamp < firsts[sensor_id]]

    # the scenarios are what they claim: which window each sensor's last N readings come from
    first_window, second_window = T0 - 1.5 * w, T0 - 8.5 * w
    assert len(before(f"dense-{tag}")) == N and min(before(f"dense-{tag}")) >= first_window
    assert len(before(f"exact-{tag}")) == N and min(before(f"exact-{tag}")) >= first_window
    assert len(before(f"late-{tag}")) == N and min(before(f"late-{tag}")) >= T0
    assert len(before(f"sparse-{tag}")) == N and first_window > min(before(f"sparse-{tag}")) >= second_window
    assert len(before(f"early-{tag}")) == N and min(before(f"early-{tag}")) < first_window
    assert before(f"rare-{tag}") == [T0 - k * w for k in (25, 20, 15, 10, 5)]
    assert before(f"edge-{tag}") == readings[f"edge-{tag}"][:4]
    assert before(f"edge2-{tag}") == readings[f"edge2-{tag}"][:4]
    assert before(f"new-{tag}") == [] and got[f"new-{tag}"]
    assert got[f"silent-{tag}"] == []
    assert got[f"late-{tag}"][-1].timestamp <= until < readings[f"late-{tag}"][-1]


async def test_a_batch_of_new_sensors_only(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """A back-fill's first batch: no sensor has a reading before it (every sensor takes every step)."""
    tag = uuid.uuid4().hex[:8]
    readings = {
        f"first-{tag}-{i}": _series(T0, T0 + timedelta(minutes=5), timedelta(seconds=10)) for i in range(3)
    }
    firsts = dict.fromkeys(readings, T0)
    until = T0 + timedelta(minutes=4)
    async with session_factory() as session, session.begin():
        await _store(session, readings)
    async with session_factory() as session, session.begin():
        expected = await _reference(session, firsts, until)
        got = await AlertingRepository(session).readings_for(firsts, until, N, bounded=True)
        assert await AlertingRepository(session).readings_for({}, until, N) == {}
    assert _answer(got) == expected
    assert all(len(points) == 25 for points in got.values())


async def test_the_plan_settings_of_the_transaction_are_put_back(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The statements are planned for their bounds (custom plans, no JIT); the rest of the caller's transaction
    keeps its own settings, here a generic plan cache mode, and the answer does not depend on them."""
    tag = uuid.uuid4().hex[:8]
    windows = (timedelta(hours=1), timedelta(hours=7))
    readings, firsts, until = _fleet(tag, windows[0])
    async with session_factory() as session, session.begin():
        await _store(session, readings)
    async with session_factory() as session, session.begin():
        await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        jit = (await session.execute(text("SHOW jit"))).scalar_one()
        expected = await _reference(session, firsts, until)
        for _ in range(7):  # past the five custom plans after which PostgreSQL may choose a generic one
            got = await AlertingRepository(session).readings_for(firsts, until, N, windows=windows, bounded=True)
            assert _answer(got) == expected
        assert (await session.execute(text("SHOW plan_cache_mode"))).scalar_one() == "force_generic_plan"
        assert (await session.execute(text("SHOW jit"))).scalar_one() == jit
