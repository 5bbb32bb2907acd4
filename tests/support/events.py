"""Helpers for event-bus tests: a database of their own, recording handlers, polling with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings, to_libpq_url
from core.events.bus import EventBus
from core.events.types import Event
from tests.support.db import private_database, session_factory_for


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is true or ``timeout`` passes (then fail). Yields to the loop between polls."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Recorder:
    """A handler that records the events it receives; ``fail_times`` makes its first calls raise."""

    fail_times: int = 0
    calls: int = 0
    events: list[Event] = field(default_factory=list)
    error: type[Exception] = RuntimeError

    async def __call__(self, event: Event) -> None:
        self.calls += 1
        await asyncio.sleep(0)  # let other tasks interleave, as real handlers doing I/O would
        if self.calls <= self.fail_times:
            raise self.error(f"planned failure {self.calls}")
        self.events.append(event)

    @property
    def ids(self) -> list[str]:
        return [str(e.event_id) for e in self.events]


@pytest.fixture(scope="module")
def events_database_url(admin_database_url: str) -> Iterator[str]:
    """A database of this module's own (migrated to head): no other test's relay sees its outbox rows."""
    with private_database(admin_database_url, "sm_events") as url:
        yield url


@pytest.fixture
def events_settings(settings: Settings, events_database_url: str) -> Settings:
    return settings.model_copy(
        update={
            "database_url": events_database_url,
            "bus_retry_base_s": 0.001,
            "bus_retry_max_s": 0.005,
            "bus_handler_attempts": 3,
            "bus_workers": 2,
            "bus_queue_size": 100,
            "outbox_poll_interval_s": 0.05,
            "outbox_batch_size": 10,
        }
    )


@pytest.fixture
async def events_db(events_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to the module's database; outbox and dead_letters start empty for every test."""
    conn = await asyncpg.connect(to_libpq_url(events_database_url))
    await conn.execute("TRUNCATE outbox, dead_letters RESTART IDENTITY")
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def session_factory(events_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with session_factory_for(events_settings) as factory:
        yield factory


def make_bus(factory: async_sessionmaker[AsyncSession] | None, **options: object) -> EventBus:
    defaults: dict[str, object] = {
        "queue_size": 100,
        "workers": 2,
        "handler_attempts": 3,
        "retry_base_s": 0.001,
        "retry_max_s": 0.005,
        "stop_timeout_s": 5.0,
    }
    defaults.update(options)
    return EventBus(factory, **defaults)  # type: ignore[arg-type]
