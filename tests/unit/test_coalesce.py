"""Coalescer: runs never overlap, events arriving during a run share the next one, failures reach their own
delivery only, a cancelled run leaves nobody waiting; merge_readings unites events within the span."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.events.coalesce import Coalescer, merge_readings
from core.events.types import ReadingsIngested

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class Recorder:
    def __init__(self, fail: set[int] | None = None) -> None:
        self.runs: list[list[int]] = []
        self.active = 0
        self.max_active = 0
        self.fail = fail or set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, events: list[int]) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self.gate.wait()
            self.runs.append(list(events))
            if self.fail & set(events):
                raise ValueError(f"bad event in {events}")
        finally:
            self.active -= 1


async def test_events_submitted_during_a_run_share_the_next_run() -> None:
    work = Recorder()
    work.gate.clear()
    coalescer: Coalescer[int] = Coalescer(work)
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0)  # the first run started and waits at the gate
    others = [asyncio.create_task(coalescer.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    work.gate.set()
    await asyncio.gather(first, *others)
    assert work.runs == [[0], [1, 2, 3, 4, 5]]
    assert work.max_active == 1
    assert (coalescer.runs, coalescer.largest_run) == (2, 5)


async def test_a_failing_event_fails_only_its_own_delivery() -> None:
    work = Recorder(fail={3})
    work.gate.clear()
    coalescer: Coalescer[int] = Coalescer(work)
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0)
    others = [asyncio.create_task(coalescer.submit(i)) for i in range(1, 5)]
    await asyncio.sleep(0)
    work.gate.set()
    results = await asyncio.gather(first, *others, return_exceptions=True)
    assert [type(r).__name__ if r else None for r in results] == [None, None, None, "ValueError", None]
    assert work.runs == [[0], [1, 2, 3, 4], [1], [2], [3], [4]]  # the failed run retried event by event


async def test_max_events_caps_a_run() -> None:
    work = Recorder()
    work.gate.clear()
    coalescer: Coalescer[int] = Coalescer(work, max_events=2)
    tasks = [asyncio.create_task(coalescer.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    work.gate.set()
    await asyncio.gather(*tasks)
    assert work.runs == [[0], [1, 2], [3, 4]]


async def test_a_cancelled_run_leaves_no_delivery_waiting() -> None:
    work = Recorder()
    work.gate.clear()
    coalescer: Coalescer[int] = Coalescer(work)
    leader = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0)
    follower = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0)
    leader.cancel()
    work.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await leader
    await asyncio.wait_for(follower, 1)  # ran in the next run instead of hanging
    assert work.runs == [[1]]


def _event(first_s: float, last_s: float, sensors: list[str], count: int = 1) -> ReadingsIngested:
    return ReadingsIngested(
        sensor_ids=sensors,
        count=count,
        first_timestamp=T0 + timedelta(seconds=first_s),
        last_timestamp=T0 + timedelta(seconds=last_s),
        ingest_event_id=uuid.uuid4(),
    )


def test_merge_readings_unites_events_within_the_span() -> None:
    events = [_event(0.2, 0.3, ["b"], 2), _event(0, 0.1, ["a", "b"], 3), _event(200, 201, ["c"])]
    merged = merge_readings(events, timedelta(minutes=1))
    assert len(merged) == 2
    assert merged[0].sensor_ids == ["a", "b"] and merged[0].count == 5
    assert (merged[0].first_timestamp, merged[0].last_timestamp) == (
        T0,
        T0 + timedelta(seconds=0.3),
    )
    assert merged[1] is events[2]
    assert merge_readings(events[:1]) == events[:1]
