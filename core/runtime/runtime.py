"""The typed state of one process: ``Runtime`` (built by ``core.runtime.bootstrap.bootstrap``).

It holds the settings, the database engine and session factory, the event bus with every handler of
``core.runtime.handlers.HANDLERS`` subscribed, the outbox relay, the model registry, the agents that keep state
between deliveries (anomaly detection, notification enqueueing) and the background workers (no-data checker, drift
checker, notification delivery worker). ``start()`` / ``stop()`` run them in order (``core.runtime.bootstrap``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.alerts.agent import NoDataChecker
from core.anomaly.agent import AnomalyAgent
from core.config import Settings
from core.events.bus import EventBus, Subscription
from core.events.consumer import BusConsumer
from core.events.jetstream import JetStreamBus
from core.events.relay import OutboxRelay
from core.ml.drift.agent import DriftChecker
from core.ml.registry.port import ModelRegistry
from core.ml.serving.loader import ModelServer
from core.notifications.agent import NotificationEnqueuer
from core.notifications.destinations import Resolver
from core.notifications.worker import DeliveryWorker
from core.runtime.ingest import IngestRuntime


@dataclass(eq=False)
class Runtime:
    """Everything one process runs, built by :func:`bootstrap` (module docstring)."""

    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    #: The engine the runtime created and disposes at ``stop()``; None when the caller passed a session factory.
    engine: AsyncEngine | None
    #: Where events are published (the relay, dead-letter replays): the in-process bus, or the JetStream stream
    #: when SM_BUS_URL is a NATS URL.
    bus: EventBus | JetStreamBus
    #: None when built with ``relay=False`` (the CLI: outbox rows are the API's to publish).
    relay: OutboxRelay | None
    #: The model registry (MLflow at SM_MLFLOW_TRACKING_URI unless bootstrap was given another): one for the
    #: anomaly agent and the ML serving of the API.
    registry: ModelRegistry
    #: Registered models served behind /api/v1/ml, cached (core.ml.serving.loader).
    models: ModelServer
    #: The ingest service, its group committer, the idempotency-key purge and the ingest log summary.
    ingest: IngestRuntime
    #: None when this process runs no anomaly agent (the API when the bus is NATS, a worker without it).
    anomaly_agent: AnomalyAgent | None
    #: None when this process runs no notification agent.
    notifications: NotificationEnqueuer | None
    #: Delivers pending webhooks/e-mails (core/notifications); None with ``deliver_notifications=False``.
    notification_worker: DeliveryWorker | None
    #: No-data alert rules (core/alerts) every ``SM_ALERT_NO_DATA_CHECK_INTERVAL_S``; None with ``workers=False``.
    no_data_checker: NoDataChecker | None
    #: Drift of every sensor (core/ml/drift) every ``SM_DRIFT_CHECK_INTERVAL_S``; None with ``workers=False``.
    drift_checker: DriftChecker | None
    #: How webhook target names resolve in destination checks (None: the system resolver; tests simulate DNS).
    webhook_resolver: Resolver | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    #: The bus that runs this process's handlers: ``bus`` itself in the in-process mode, a local one fed by
    #: ``consumer`` in a worker, None in an API process whose agents run in workers.
    handlers_bus: EventBus | None = None
    #: A worker's JetStream consumer (core.events.consumer); None elsewhere.
    consumer: BusConsumer | None = None
    #: The agents this process runs (core.runtime.handlers.AGENTS).
    agents: tuple[str, ...] = ()
    #: False in a worker: no group committer, no idempotency purge (it ingests nothing).
    run_ingest: bool = True

    def require_anomaly_agent(self) -> AnomalyAgent:
        if self.anomaly_agent is None:
            raise RuntimeError("this process runs no anomaly agent")
        return self.anomaly_agent

    def require_notifications(self) -> NotificationEnqueuer:
        if self.notifications is None:
            raise RuntimeError("this process runs no notification agent")
        return self.notifications

    async def start(self) -> None:
        """Start the bus, the relay, the workers, then the ingest pieces (committer, purge, log summary)."""
        if self.handlers_bus is not None and self.handlers_bus is not self.bus:
            self.handlers_bus.start()
        await self.bus.open()
        if self.relay is not None:
            self.relay.start()  # its first pass publishes what earlier runs left in the outbox
        if self.no_data_checker is not None:
            self.no_data_checker.start()
        if self.drift_checker is not None:
            self.drift_checker.start()
        if self.notification_worker is not None:
            self.notification_worker.start()
        if self.consumer is not None:
            await self.consumer.start()
        if self.run_ingest:
            await self.ingest.start()

    async def stop(self) -> None:
        """Stop the ingest pieces (the committer drains), the periodic checkers, the relay, drain the bus, cancel the
        anomaly agent's background model refresh, stop the delivery worker, dispose the engine."""
        timeout = self.settings.bus_stop_timeout_s
        try:
            if self.run_ingest:
                await self.ingest.stop()
        finally:
            await self._stop_events(timeout)

    async def _stop_events(self, timeout: float) -> None:
        try:
            if self.consumer is not None:
                await self.consumer.stop(timeout)  # no new message; the batches in flight finish first
            if self.no_data_checker is not None:
                await self.no_data_checker.stop()
            if self.drift_checker is not None:
                await self.drift_checker.stop()
            try:
                if self.relay is not None:
                    await self.relay.stop(timeout=timeout)
            finally:
                await self.bus.stop(timeout=timeout)
                if self.handlers_bus is not None and self.handlers_bus is not self.bus:
                    await self.handlers_bus.stop(timeout=timeout)
                if self.anomaly_agent is not None:
                    await self.anomaly_agent.aclose()  # an in-flight background model refresh, once no handler runs
                if self.notification_worker is not None:
                    await self.notification_worker.stop()
        finally:
            if self.engine is not None:
                await self.engine.dispose()


__all__ = ["Runtime"]
