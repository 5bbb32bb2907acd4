"""Anomaly detection agent: scores the readings of every ``ReadingsIngested`` and emits ``AnomalyDetected``.

Handler ``anomaly.detect``. Each delivery is one unit of work: load the event's readings, score them (champion
model of the sensor type from the MLflow registry, else the ``robust_z`` baseline), insert the anomalies
(``ON CONFLICT DO NOTHING``) and write one ``AnomalyDetected`` per new row to the outbox, plus one
``ReadingsScored`` for the batch, then commit. Idempotent: a redelivered event inserts nothing and emits no
``AnomalyDetected`` (only ``ReadingsScored`` again, whose handler — the anomaly-score alert rules — is idempotent).
The logic lives in ``core/anomaly``; this module wires it
to settings, the session factory and the model registry (built by ``core.runtime.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.anomaly.baseline import BaselineConfig
from core.anomaly.champion import ChampionModels, ModelRegistry
from core.anomaly.detector import AnomalyDetector, Detection, TrendConfig
from core.anomaly.references import ReferenceConfig
from core.config import Settings
from core.db.session import unit_of_work
from core.events.coalesce import Coalescer, merge_readings
from core.events.types import Event, ReadingsIngested

HANDLER_NAME = "anomaly.detect"
REFERENCES_HANDLER_NAME = "anomaly.references_reload"


class AnomalyAgent:
    """The handler object; holds the per-process state (baseline windows, cached champion models)."""

    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        registry: ModelRegistry,
    ) -> None:
        self.session_factory = session_factory
        self.champions = ChampionModels(
            registry,
            refresh_s=settings.anomaly_model_refresh_s,
            timeout_s=settings.anomaly_model_timeout_s,
        )
        self.detector = AnomalyDetector(
            BaselineConfig.from_settings(settings),
            self.champions,
            model_context=settings.anomaly_model_context,
            references=ReferenceConfig.from_settings(settings),
            trend=TrendConfig(lam=settings.trend_ewma_lambda, threshold=settings.trend_threshold),
        )
        self.coalescer: Coalescer[ReadingsIngested] = Coalescer(self._detect_all)

    async def __call__(self, event: Event) -> None:
        """The bus's entry: deliveries arriving while a detection runs are merged into the next one
        (``core.events.coalesce``), and detections never overlap, so the baseline windows see them in turn."""
        assert isinstance(event, ReadingsIngested)
        await self.coalescer.submit(event)

    async def _detect_all(self, events: list[ReadingsIngested]) -> None:
        for merged in merge_readings(events):
            await self.handle(merged)

    async def handle(self, event: Event) -> Detection:
        """One event in one unit of work (no coalescing)."""
        assert isinstance(event, ReadingsIngested)
        async with unit_of_work(self.session_factory) as session:
            detection = await self.detector.detect(session, event)
        self.detector.commit_states(detection.states)  # only once the anomalies and events are committed
        return detection

    def forget_sensors(self, drop: Callable[[str], bool]) -> int:
        """Drop the baseline windows of the sensors ``drop`` picks (a worker gained their partition: another one
        moved them on since; rebuilt from the database on their next batch); the number dropped."""
        states = self.detector.states
        gone = [sensor_id for sensor_id in states.sensor_ids() if drop(sensor_id)]
        for sensor_id in gone:
            states.pop(sensor_id)
        return len(gone)

    async def on_task_completed(self, event: Event) -> None:
        """A completed work order may have started re-learning references (repair): reload them."""
        self.detector.references.invalidate()

    async def refresh_models(self) -> None:
        """Re-check the champion aliases now (what the periodic background refresh does)."""
        await self.champions.refresh()

    async def aclose(self) -> None:
        await self.champions.aclose()


__all__ = ["HANDLER_NAME", "REFERENCES_HANDLER_NAME", "AnomalyAgent"]
