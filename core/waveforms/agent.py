"""The diagnosis agent: on ``WaveformIngested``, diagnose the snapshot and attach the result to the asset's alert.

Per delivery: load the snapshot and its sensor's configuration (one short transaction), run
``core.ml.vibration.diagnosis.diagnose`` in a bounded thread pool (``SM_WAVEFORM_DIAGNOSIS_THREADS`` threads
shared by the process; at most ``SM_WAVEFORM_DIAGNOSIS_IN_FLIGHT`` snapshots of one handler decoded or diagnosed
at once, so a burst of events never holds more than that many waveforms in memory), then record it in one transaction
(``core.waveforms.diagnosis.DiagnosisService.record``: diagnosis row, alert, ``AlertRaised`` in the outbox).

Idempotent: a snapshot that has a diagnosis is skipped before any work, and the diagnosis is unique per snapshot,
so a concurrent or later redelivery writes nothing. A snapshot that no longer exists (sensor deleted) is logged
and skipped. Database errors propagate: the bus retries, then dead-letters the event (``diagnosis.diagnose``).
Registered in ``core.runtime.handlers`` as agent ``diagnosis`` (in the API process, or a worker on NATS).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.alerts.service import DEFAULT_INCIDENT_WINDOW
from core.config import Settings
from core.db.session import unit_of_work
from core.events.types import Event, WaveformIngested
from core.waveforms.diagnosis import RESOLVE_AFTER, SEVERITY, DiagnosisService, Recorded, run_diagnosis, snapshot_inputs
from core.waveforms.repository import WaveformRepository

logger = logging.getLogger("core.waveforms.agent")

AGENT = "diagnosis"
HANDLER_NAME = "diagnosis.diagnose"
#: Threads of the process's diagnosis pool (numpy/scipy release the GIL in the FFTs and filters).
DIAGNOSIS_THREADS = 2
#: Snapshots one handler decodes or diagnoses at once.
MAX_IN_FLIGHT = 4

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def diagnosis_pool(threads: int = DIAGNOSIS_THREADS) -> ThreadPoolExecutor:
    """The process's diagnosis threads (created on first use with ``threads``, SM_WAVEFORM_DIAGNOSIS_THREADS;
    shared by every handler of the process)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sm-diagnosis")
        return _pool


class DiagnoseSnapshot:
    """The handler of ``WaveformIngested`` (module docstring)."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        incident_window: timedelta = DEFAULT_INCIDENT_WINDOW,
        in_flight: int = MAX_IN_FLIGHT,
        threads: int = DIAGNOSIS_THREADS,
        severity: str = SEVERITY,
        resolve_after: int = RESOLVE_AFTER,
    ) -> None:
        self._factory = session_factory
        self._window = incident_window
        self._slots = asyncio.Semaphore(in_flight)
        self._threads = threads
        self._severity = severity
        self._resolve_after = resolve_after

    @classmethod
    def from_settings(cls, settings: Settings, session_factory: async_sessionmaker[AsyncSession]) -> DiagnoseSnapshot:
        """The handler with the incident window (``SM_INCIDENT_WINDOW_MINUTES``) and the ``SM_WAVEFORM_*``
        settings of ``settings``."""
        return cls(
            session_factory,
            incident_window=timedelta(minutes=settings.incident_window_minutes),
            in_flight=settings.waveform_diagnosis_in_flight,
            threads=settings.waveform_diagnosis_threads,
            severity=settings.waveform_alert_severity,
            resolve_after=settings.waveform_resolve_after,
        )

    async def __call__(self, event: Event) -> None:
        assert isinstance(event, WaveformIngested)
        await self.handle(event)

    async def handle(self, event: WaveformIngested) -> Recorded | None:
        """Diagnose the event's snapshot; None when there was nothing to do (done already, or gone)."""
        async with self._slots:
            async with unit_of_work(self._factory) as session:
                repo = WaveformRepository(session)
                if await repo.diagnosis_of_snapshot(event.snapshot_id) is not None:
                    return None  # redelivered: done already
                stored = await repo.stored_snapshot(event.snapshot_id)
            if stored is None:
                logger.warning(
                    "snapshot %s of sensor %s no longer exists; not diagnosed",
                    event.snapshot_id,
                    event.sensor_id,
                    extra={"event_id": str(event.event_id)},
                )
                return None
            rpm, band = snapshot_inputs(stored)
            snapshot = stored.snapshot
            result = await asyncio.get_running_loop().run_in_executor(
                diagnosis_pool(self._threads),
                run_diagnosis,
                snapshot.samples,
                snapshot.sample_rate_hz,
                rpm,
                stored.sensor.config.bearing,
                band,
            )
        async with unit_of_work(self._factory) as session:
            recorded = await DiagnosisService(
                session, incident_window=self._window, severity=self._severity, resolve_after=self._resolve_after
            ).record(stored, result)
        if recorded.diagnosis_id is not None:
            logger.info(
                "snapshot %s of sensor %s diagnosed: %s%s",
                snapshot.id,
                snapshot.sensor_id,
                result.fault,
                f" (alert {recorded.alert_id}{', opened' if recorded.alert_opened else ''})"
                if recorded.alert_id is not None
                else "",
                extra={
                    "event_id": str(event.event_id),
                    "sensor_id": snapshot.sensor_id,
                    "fault": result.fault,
                    "score_db": result.score_db,
                    "error": result.error,
                },
            )
        return recorded


__all__ = ["AGENT", "DIAGNOSIS_THREADS", "HANDLER_NAME", "MAX_IN_FLIGHT", "DiagnoseSnapshot", "diagnosis_pool"]
