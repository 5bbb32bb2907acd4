"""Coalescing deliveries: events that arrive while a handler is busy are handled together in its next run.

A handler whose cost is mostly per *run* rather than per event (the alerting agent reads the rules' window of
readings for every evaluation; the anomaly agent loads and scores its readings in one go) falls behind a steady
stream of small events if it handles them one by one: every event waits for all those queued before it. With a
``Coalescer`` the first delivery runs ``work([event])``; deliveries that arrive meanwhile wait, and the next one
to get the turn runs ``work`` for *all* events waiting by then (at most ``max_events``). Under load runs grow, so
the backlog — and the latency of an event queued behind it — stays bounded by about two runs.

Guarantees (the bus's at-least-once contract is unchanged):

* ``submit(event)`` returns only after a run that included ``event`` succeeded (committed), and raises if that
  run failed, so the bus retries or dead-letters the event as before. A failed run of several events is retried
  event by event at once, so one bad event fails only its own delivery.
* Runs never overlap (one lock), so a handler keeping in-memory state (the anomaly agent's baseline windows)
  sees them in turn.

``merge_readings(events)`` turns the ``ReadingsIngested`` events of a run into as few as possible: events whose
combined time range spans at most ``max_span`` become one (sensors united, first/last timestamps widened). The
handlers already treat an event as "the stored readings of these sensors between these instants" and are
idempotent for readings they see twice, so a merged event is handled like its parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Generic, TypeVar

from core.events.types import ReadingsIngested, ReadingsScored

E = TypeVar("E")
_Ranged = TypeVar("_Ranged", ReadingsIngested, ReadingsScored)

#: Default widest time range of one merged ``ReadingsIngested`` (live batches span a fraction of a second).
MAX_SPAN = timedelta(minutes=1)


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class Coalescer(Generic[E]):
    """Runs ``work(events)`` one run at a time, each run taking every event submitted meanwhile."""

    def __init__(self, work: Callable[[list[E]], Awaitable[None]], *, max_events: int = 256) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self._work = work
        self.max_events = max_events
        self._pending: list[tuple[E, asyncio.Future[None]]] = []
        self._lock = asyncio.Lock()
        self.runs = 0
        self.largest_run = 0

    async def submit(self, event: E) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        self._pending.append((event, future))
        async with self._lock:
            if not future.done():
                batch = self._pending[: self.max_events]
                del self._pending[: self.max_events]
                await self._run(batch)
        await future

    async def _run(self, batch: list[tuple[E, asyncio.Future[None]]]) -> None:
        self.runs += 1
        self.largest_run = max(self.largest_run, len(batch))
        try:
            try:
                await self._work([event for event, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to the waiting deliveries
                if len(batch) == 1:
                    batch[0][1].set_exception(exc)
                    return
                for event, future in batch:  # isolate the failing event(s)
                    try:
                        await self._work([event])
                    except Exception as single:  # noqa: BLE001 - handed to its delivery
                        future.set_exception(single)
                    else:
                        future.set_result(None)
                return
            for _, future in batch:
                future.set_result(None)
        finally:
            for _, future in batch:  # cancelled mid-run (bus stopping): nobody may wait forever
                if not future.done():
                    future.cancel()


def _groups(events: Sequence[_Ranged], max_span: timedelta) -> list[list[_Ranged]]:
    """Events in time order, cut into groups whose ranges together span at most ``max_span``."""
    groups: list[list[_Ranged]] = []
    group: list[_Ranged] = []
    group_last = None
    for event in sorted(events, key=lambda e: (e.first_timestamp, e.last_timestamp)):
        if (
            group_last is not None
            and max(group_last, event.last_timestamp) - group[0].first_timestamp > max_span
        ):
            groups.append(group)
            group, group_last = [], None
        group.append(event)
        group_last = event.last_timestamp if group_last is None else max(group_last, event.last_timestamp)
    if group:
        groups.append(group)
    return groups


def merge_readings(
    events: Sequence[ReadingsIngested], max_span: timedelta = MAX_SPAN
) -> list[ReadingsIngested]:
    """Merge events whose time ranges, taken together, span at most ``max_span`` (module docstring)."""
    if len(events) <= 1:
        return list(events)
    return [_merge(group) for group in _groups(events, max_span)]


def _merge(group: list[ReadingsIngested]) -> ReadingsIngested:
    if len(group) == 1:
        return group[0]
    first = group[0]
    return ReadingsIngested(
        sensor_ids=sorted({s for e in group for s in e.sensor_ids}),
        count=sum(e.count for e in group),
        first_timestamp=min(e.first_timestamp for e in group),
        last_timestamp=max(e.last_timestamp for e in group),
        api_key_id=first.api_key_id if all(e.api_key_id == first.api_key_id for e in group) else None,
        ingest_event_id=first.ingest_event_id,
        correlation_id=first.correlation_id,
        backfill=all(e.backfill for e in group),
    )


def merge_scored(events: Sequence[ReadingsScored], max_span: timedelta = MAX_SPAN) -> list[ReadingsScored]:
    """``merge_readings`` for ``ReadingsScored``."""
    if len(events) <= 1:
        return list(events)
    out: list[ReadingsScored] = []
    for group in _groups(events, max_span):
        if len(group) == 1:
            out.append(group[0])
            continue
        out.append(
            ReadingsScored(
                sensor_ids=sorted({s for e in group for s in e.sensor_ids}),
                count=sum(e.count for e in group),
                first_timestamp=min(e.first_timestamp for e in group),
                last_timestamp=max(e.last_timestamp for e in group),
                correlation_id=group[0].correlation_id,
                backfill=all(e.backfill for e in group),
            )
        )
    return out


__all__ = ["MAX_SPAN", "Coalescer", "merge_readings", "merge_scored"]
