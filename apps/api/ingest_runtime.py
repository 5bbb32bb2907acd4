"""Lifespan pieces of ingestion: the unit registry, the group committer, the periodic purge of expired
idempotency keys and the ingest log summary.

``start_ingest(app)`` / ``stop_ingest(app)`` are called by ``apps.api.main.lifespan``. The ingest router builds
its ``IngestService`` with ``app.state.group_committer`` (``apps.api.routers.ingest.ingest_service``). Commits that
wrote an event wake the outbox relay by themselves (``core.events.outbox``).

The access lines of the ingest route are written at DEBUG (``apps.api.middleware``); instead
``app.state.ingest_log`` (:class:`core.observability.ingest_log.IngestLogSummary`) writes one INFO line with the
counts every ``SM_INGEST_LOG_INTERVAL_S`` and a last one at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from fastapi import FastAPI

from core import units
from core.config import Settings
from core.ingest.group_commit import GroupCommitter
from core.ingest.idempotency import purge_expired_keys
from core.observability.ingest_log import IngestLogSummary

logger = logging.getLogger("apps.api.ingest")


async def _purge_loop(app: FastAPI, interval_s: float) -> None:
    while True:
        try:
            purged = await purge_expired_keys(app.state.session_factory)
            if purged:
                logger.info("purged %d expired idempotency keys", purged)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed purge is retried at the next interval
            logger.warning("idempotency purge failed: %s", type(exc).__name__)
        await asyncio.sleep(interval_s)


async def start_ingest(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    # pint's registry takes ~0.5 s to build: do it now (once per process), not in the first request that converts
    await asyncio.to_thread(units.warm_up)
    app.state.group_committer = None
    if settings.ingest_group_commit:
        committer = GroupCommitter(
            app.state.session_factory,
            auto_register=bool(settings.auto_register_sensors),
            max_size=settings.ingest_group_commit_max_size,
            max_wait_s=settings.ingest_group_commit_max_wait_ms / 1000.0,
            backfill_age=timedelta(minutes=settings.backfill_age_minutes),
        )
        committer.start()
        app.state.group_committer = committer
    app.state.idempotency_purge_task = asyncio.create_task(
        _purge_loop(app, settings.idempotency_purge_interval_s), name="idempotency-purge"
    )
    summary = IngestLogSummary()  # fed by apps.api.middleware (requests) and the ingest counters (readings)
    app.state.ingest_log = summary
    app.state.ingest_log_task = asyncio.create_task(
        summary.run(settings.ingest_log_interval_s), name="ingest-log-summary"
    )


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def stop_ingest(app: FastAPI) -> None:
    await _cancel(getattr(app.state, "idempotency_purge_task", None))
    app.state.idempotency_purge_task = None
    await _cancel(getattr(app.state, "ingest_log_task", None))
    app.state.ingest_log_task = None
    committer: GroupCommitter | None = getattr(app.state, "group_committer", None)
    if committer is not None:
        await committer.stop()
        app.state.group_committer = None
    summary: IngestLogSummary | None = getattr(app.state, "ingest_log", None)
    if summary is not None:  # after the committer: what it wrote last is counted
        summary.flush()
        app.state.ingest_log = None


__all__ = ["start_ingest", "stop_ingest"]
