"""The runtime of the tests of the handler table and the agents (``core.runtime.bootstrap``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.runtime.bootstrap import bootstrap
from core.runtime.runtime import Runtime


def runtime_for(settings: Settings, session_factory: async_sessionmaker[AsyncSession] | None = None) -> Runtime:
    """What the API bootstraps, without the outbox relay and the background workers (nothing is started).

    Without ``session_factory`` the runtime has an engine of ``settings`` that never connects unless a handler
    runs (enough to check what the table subscribes)."""
    return bootstrap(settings, session_factory=session_factory, relay=False, workers=False)
