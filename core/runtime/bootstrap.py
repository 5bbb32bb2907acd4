"""The composition root: ``bootstrap(settings) -> Runtime`` builds what one process runs, typed.

A ``Runtime`` holds the settings, the database engine and session factory, the event bus with every handler of
``core.runtime.handlers.HANDLERS`` subscribed, the outbox relay, the agents that keep state between deliveries
(anomaly detection, notification enqueueing) and the background workers (no-data checker, drift checker,
notification delivery worker). The API builds one in its lifespan (``app.state.runtime``, reached through
``apps.api.deps.get_runtime``), the CLI builds one to replay dead letters, tests build them with overrides.

Nothing runs until ``await runtime.start()``: the bus, then the relay (its first pass publishes what earlier runs
left in the outbox), then the workers, then the ingest pieces (``core.runtime.ingest``). ``await runtime.stop()``
stops the ingest pieces (the group committer drains), the periodic checkers, then the relay (in-flight batches
finish or roll back), then drains the bus (bounded by ``SM_BUS_STOP_TIMEOUT_S``), stops the delivery worker and
finally disposes the engine the runtime created (a session factory passed in stays its owner's).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.alerts.agent import NoDataChecker
from core.anomaly.agent import AnomalyAgent
from core.config import Settings
from core.db.session import create_engine, create_session_factory
from core.events.bus import EventBus
from core.events.relay import OutboxRelay
from core.ml.drift.agent import DriftChecker
from core.ml.registry.mlflow_registry import MlflowRegistry
from core.ml.registry.port import ModelRegistry
from core.ml.serving.loader import ModelServer
from core.notifications.agent import NotificationEnqueuer
from core.notifications.destinations import Resolver
from core.notifications.worker import DeliveryWorker
from core.runtime.handlers import register_handlers
from core.runtime.ingest import IngestRuntime
from core.runtime.runtime import Runtime


def bootstrap(
    settings: Settings,
    *,
    session_factory: async_sessionmaker[AsyncSession] | None = None,
    engine: AsyncEngine | None = None,
    registry: ModelRegistry | None = None,
    webhook_resolver: Resolver | None = None,
    relay: bool = True,
    workers: bool = True,
    deliver_notifications: bool = True,
) -> Runtime:
    """Build (not start) the runtime of ``settings``.

    ``session_factory``: run on this factory (its engine stays the caller's); else on ``engine`` (the runtime
    disposes it at ``stop()``), else on a new engine of ``settings``. ``registry``: the model registry of the
    anomaly agent (default: MLflow at ``SM_MLFLOW_TRACKING_URI``). ``relay=False``: no outbox relay.
    ``workers=False``: no no-data or drift checker and no delivery worker; ``deliver_notifications=False``: no
    delivery worker (deliveries are still enqueued).
    """
    if session_factory is None:
        engine = engine if engine is not None else create_engine(settings)
        session_factory = create_session_factory(engine)
    else:
        engine = None
    bus = EventBus.from_settings(settings, session_factory)
    if registry is None:  # probed with at most min(SM_READY_TIMEOUT_S, 2) seconds before each lookup batch
        registry = MlflowRegistry(settings.mlflow_tracking_uri, probe_timeout_s=min(settings.ready_timeout_s, 2.0))
    worker = (
        DeliveryWorker(settings, session_factory, resolver=webhook_resolver)
        if workers and deliver_notifications
        else None
    )
    runtime = Runtime(
        settings=settings,
        session_factory=session_factory,
        engine=engine,
        bus=bus,
        relay=OutboxRelay.from_settings(settings, session_factory, bus) if relay else None,
        registry=registry,
        models=ModelServer(
            registry, alias_ttl_s=settings.ml_alias_ttl_s, cache_size=settings.ml_model_cache_size
        ),
        ingest=IngestRuntime(settings, session_factory, background=workers),
        anomaly_agent=AnomalyAgent(settings, session_factory, registry=registry),
        notifications=NotificationEnqueuer(settings, session_factory, worker=worker),
        notification_worker=worker,
        no_data_checker=NoDataChecker(session_factory, settings.alert_no_data_check_interval_s, settings=settings)
        if workers
        else None,
        drift_checker=DriftChecker(session_factory, settings) if workers else None,
        webhook_resolver=webhook_resolver,
    )
    runtime.subscriptions = register_handlers(bus, runtime)
    return runtime


__all__ = ["Runtime", "bootstrap"]
