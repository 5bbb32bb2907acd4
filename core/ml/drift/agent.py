"""Drift agent: every ``SM_DRIFT_CHECK_INTERVAL_S`` checks every sensor for data drift
(core/ml/drift/statistics.py), stores each result in ``drift_checks`` and emits
``DriftDetected`` through the outbox when a drift episode starts.

Scheduled like the no-data checker (a ``core.periodic.PeriodicWorker`` built by ``core.runtime.bootstrap``,
started and stopped by the runtime, ``core.runtime.runtime``).
One transaction per sensor and pass. Idempotent:

* a check whose windows end at the same reading as a stored one (``(sensor_id, recent_end)`` unique) inserts
  nothing and emits nothing — a pass without new data, or two processes running the same pass, emit once;
* ``DriftDetected`` is emitted only when the sensor's previous stored check was not drifted (or there was none):
  one event per drift episode, not one per pass while the drift lasts. That check gets ``retrain_requested``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.session import unit_of_work
from core.events.outbox import add_to_outbox
from core.events.types import DriftDetected
from core.ml.drift.repository import DriftCheckRepository
from core.ml.drift.statistics import DriftThresholds, SensorDrift, check_sensor
from core.ml.serving.repository import MlReadingsRepository
from core.periodic import PeriodicWorker

logger = logging.getLogger("core.ml.drift.agent")

TASK_NAME = "ml-drift-check"


def retrain_targets(sensor_type: str) -> list[str]:
    """Registered models of a sensor type that a drift of its data calls into question."""
    return [f"anomaly_{sensor_type}", f"forecast_{sensor_type}"]


@dataclass
class DriftPass:
    """What one pass did."""

    checked: list[SensorDrift] = field(default_factory=list)
    stored: int = 0
    skipped: int = 0
    emitted: list[DriftDetected] = field(default_factory=list)


class DriftChecker(PeriodicWorker):
    """Runs :meth:`run_once` every ``settings.drift_check_interval_s`` seconds (first pass after one interval)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        super().__init__(settings.drift_check_interval_s, name=TASK_NAME, logger=logger, what="drift check")
        self._factory = session_factory
        self._settings = settings
        self._thresholds = DriftThresholds.from_settings(settings)

    async def run_pass(self) -> None:
        outcome = await self.run_once()
        logger.info(
            "drift check: %d sensors checked, %d stored, %d drift episodes started",
            len(outcome.checked),
            outcome.stored,
            len(outcome.emitted),
        )

    async def run_once(self, *, end: datetime | None = None) -> DriftPass:
        """Check every sensor once (windows ending at its latest reading, or at ``end``)."""
        outcome = DriftPass()
        async with unit_of_work(self._factory) as session:
            sensors = await MlReadingsRepository(session).sensors()
        for sensor_id, sensor_type in sensors:
            async with unit_of_work(self._factory) as session:
                result = await check_sensor(
                    session,
                    sensor_id,
                    sensor_type,
                    recent_h=self._settings.drift_recent_h,
                    reference_offset_h=self._settings.drift_reference_offset_h,
                    thresholds=self._thresholds,
                    end=end,
                )
                if result is None:
                    continue
                outcome.checked.append(result)
                if result.stats is None:
                    outcome.skipped += 1
                    continue
                stored, event = await self._store(session, result)
                outcome.stored += stored
                if event is not None:
                    outcome.emitted.append(event)
        return outcome

    async def _store(self, session: AsyncSession, result: SensorDrift) -> tuple[bool, DriftDetected | None]:
        """Insert the check (False: it was stored already) and the DriftDetected it emits, if any."""
        stats, windows = result.stats, result.windows
        assert stats is not None
        repo = DriftCheckRepository(session)
        check_id = await repo.insert(
            sensor_id=result.sensor_id,
            sensor_type=result.sensor_type,
            checked_at=datetime.now(UTC),
            reference_start=windows.reference_start,
            reference_end=windows.reference_end,
            recent_start=windows.recent_start,
            recent_end=windows.recent_end,
            reference_count=stats.reference_count,
            recent_count=stats.recent_count,
            ks_statistic=stats.ks_statistic,
            ks_pvalue=stats.ks_pvalue,
            psi=stats.psi,
            ks_pvalue_threshold=self._thresholds.ks_pvalue,
            psi_threshold=self._thresholds.psi,
            drifted=stats.drifted,
        )
        if check_id is None:
            return False, None
        if not stats.drifted:
            return True, None
        previous = await repo.previous(result.sensor_id, windows.recent_end)
        if previous is not None and previous.drifted:
            return True, None  # the episode is already reported
        await repo.mark_retrain_requested(check_id)
        event = DriftDetected(
            check_id=check_id,
            sensor_id=result.sensor_id,
            sensor_type=result.sensor_type,
            ks_statistic=stats.ks_statistic,
            ks_pvalue=stats.ks_pvalue,
            psi=stats.psi,
            reasons=list(stats.reasons),
            recent_start=windows.recent_start,
            recent_end=windows.recent_end,
            retrain_requested=True,
            model_names=retrain_targets(result.sensor_type),
        )
        await add_to_outbox(session, event)
        logger.warning(
            "drift detected on %s (%s): %s", result.sensor_id, result.sensor_type, "; ".join(stats.reasons)
        )
        return True, event


__all__ = ["TASK_NAME", "DriftChecker", "DriftPass", "retrain_targets"]
