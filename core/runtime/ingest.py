"""The ingest pieces of a serving process: the ingest service, its group committer, the periodic purge of expired
idempotency keys and the ingest log summary (built by ``core.runtime.bootstrap``, run by ``Runtime``).

``service`` (:class:`core.ingest.service.IngestService`) is the one entry point of ``POST /api/v1/data/ingest``;
it hands single readings to ``committer`` while the committer runs (``SM_INGEST_GROUP_COMMIT``). Commits that
wrote an event wake the outbox relay by themselves (``core.events.outbox``).

The access lines of the ingest route are written at DEBUG (``apps.api.middleware``); instead ``log``
(:class:`core.observability.ingest_log.IngestLogSummary`) writes one INFO line with the counts every
``SM_INGEST_LOG_INTERVAL_S`` and a last one at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import units
from core.config import Settings
from core.ingest.group_commit import GroupCommitter
from core.ingest.idempotency import purge_expired_keys
from core.ingest.service import IngestService
from core.observability.ingest_log import SUMMARY_LOGGER, IngestLogSummary
from core.periodic import PeriodicWorker

logger = logging.getLogger(SUMMARY_LOGGER)  # the API's ingest log (what operators filter on)


class IngestRuntime:
    """Ingest service, group committer (None when ``SM_INGEST_GROUP_COMMIT`` is off or ``background`` is False),
    idempotency-key purge and log summary; ``start()`` / ``stop()`` run the background parts."""

    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        background: bool = True,
    ) -> None:
        self.settings = settings
        self._background = background
        self.committer: GroupCommitter | None = (
            GroupCommitter(
                session_factory,
                auto_register=bool(settings.auto_register_sensors),
                max_size=settings.ingest_group_commit_max_size,
                max_wait_s=settings.ingest_group_commit_max_wait_ms / 1000.0,
                backfill_age=timedelta(minutes=settings.backfill_age_minutes),
            )
            if background and settings.ingest_group_commit
            else None
        )
        self.service = IngestService(session_factory, settings, self.committer)
        self.log = IngestLogSummary()  # fed by apps.api.middleware (requests) and the ingest counters (readings)
        self.purge = IdempotencyPurge(session_factory, settings.idempotency_purge_interval_s)
        self._log_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Warm the unit registry, start the committer, the purge loop and the log summary (with ``background``)."""
        if not self._background:
            return
        # pint's registry takes ~0.5 s to build: do it now (once per process), not in the first request that converts
        await asyncio.to_thread(units.warm_up)
        if self.committer is not None:
            self.committer.start()
        self.purge.start()
        summary = self.log.run(self.settings.ingest_log_interval_s)
        self._log_task = asyncio.create_task(summary, name="ingest-log-summary")

    async def stop(self) -> None:
        """Stop the purge loop and the log task, drain the committer, then write the last summary line."""
        await self.purge.stop()
        task, self._log_task = self._log_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.committer is not None:
            await self.committer.stop()
        if self._background:  # after the committer: what it wrote last is counted
            self.log.flush()


class IdempotencyPurge(PeriodicWorker):
    """Deletes expired idempotency keys at start and then every ``SM_IDEMPOTENCY_PURGE_INTERVAL_S``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        super().__init__(
            interval_s, name="idempotency-purge", logger=logger, what="idempotency purge", first_pass_at_start=True
        )
        self._factory = session_factory

    async def run_pass(self) -> None:
        purged = await purge_expired_keys(self._factory)
        if purged:
            logger.info("purged %d expired idempotency keys", purged)


__all__ = ["IdempotencyPurge", "IngestRuntime"]
