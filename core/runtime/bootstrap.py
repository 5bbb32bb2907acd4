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

from collections.abc import Callable, Collection
from functools import partial
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.alerts.agent import NoDataChecker
from core.anomaly.agent import AnomalyAgent
from core.config import Settings
from core.db.session import create_engine, create_session_factory
from core.events.bus import EventBus
from core.events.consumer import BusConsumer
from core.events.jetstream import JetStreamBus
from core.events.partitions import sensor_partition
from core.events.relay import OutboxRelay
from core.ml.drift.agent import DriftChecker
from core.ml.registry.mlflow_registry import MlflowRegistry
from core.ml.registry.port import ModelRegistry
from core.ml.serving.loader import ModelServer
from core.notifications.agent import NotificationEnqueuer
from core.notifications.destinations import Resolver
from core.notifications.worker import DeliveryWorker
from core.runtime.handlers import AGENTS, event_types, handler_names, register_handlers, remote_handlers
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
    agents: Collection[str] | None = None,
) -> Runtime:
    """Build (not start) the runtime of ``settings``.

    ``session_factory``: run on this factory (its engine stays the caller's); else on ``engine`` (the runtime
    disposes it at ``stop()``), else on a new engine of ``settings``. ``registry``: the model registry of the
    anomaly agent (default: MLflow at ``SM_MLFLOW_TRACKING_URI``). ``relay=False``: no outbox relay.
    ``workers=False``: no no-data or drift checker and no delivery worker; ``deliver_notifications=False``: no
    delivery worker (deliveries are still enqueued).

    ``agents``: the agents this process runs (``core.runtime.handlers.AGENTS``). Default: all of them on the
    in-process bus (SM_BUS_URL unset), none when the bus is NATS (the API process; ``bootstrap_worker`` builds a
    worker's runtime). The periodic workers follow their agent: the no-data checker runs with ``alerting``, the
    drift checker with ``anomaly``, the delivery worker with ``notification``.
    """
    nats = bool(settings.bus_servers)
    chosen: tuple[str, ...] = (
        tuple(a for a in AGENTS if a in agents) if agents is not None else (() if nats else AGENTS)
    )
    if session_factory is None:
        engine = engine if engine is not None else create_engine(settings)
        session_factory = create_session_factory(engine)
    else:
        engine = None
    # In a worker, deliveries come from up to SM_BUS_MAX_IN_FLIGHT messages per agent: as many bus tasks, so that a
    # coalescing handler merges all the messages waiting for it (with 16, runs merged a few partition parts).
    tasks = max(settings.bus_workers, settings.bus_max_in_flight * len(chosen)) if nats else settings.bus_workers
    handlers_bus = EventBus.from_settings(settings, session_factory, workers=tasks) if chosen or not nats else None
    bus: EventBus | JetStreamBus
    if nats:
        bus = JetStreamBus(settings, remote_handlers(), name="sm-worker" if chosen else "sm-api")
    else:
        assert handlers_bus is not None
        bus = handlers_bus
    if registry is None:  # probed with at most min(SM_READY_TIMEOUT_S, 2) seconds before each lookup batch
        registry = MlflowRegistry(settings.mlflow_tracking_uri, probe_timeout_s=min(settings.ready_timeout_s, 2.0))
    worker = (
        DeliveryWorker(settings, session_factory, resolver=webhook_resolver)
        if workers and deliver_notifications and "notification" in chosen
        else None
    )
    runtime = Runtime(
        settings=settings,
        session_factory=session_factory,
        engine=engine,
        bus=bus,
        relay=OutboxRelay.from_settings(settings, session_factory, bus) if relay else None,
        registry=registry,
        models=ModelServer(registry, alias_ttl_s=settings.ml_alias_ttl_s, cache_size=settings.ml_model_cache_size),
        ingest=IngestRuntime(settings, session_factory, background=workers),
        anomaly_agent=AnomalyAgent(settings, session_factory, registry=registry) if "anomaly" in chosen else None,
        notifications=NotificationEnqueuer(settings, session_factory, worker=worker)
        if "notification" in chosen
        else None,
        notification_worker=worker,
        no_data_checker=NoDataChecker(session_factory, settings.alert_no_data_check_interval_s, settings=settings)
        if workers and "alerting" in chosen
        else None,
        drift_checker=DriftChecker(session_factory, settings) if workers and "anomaly" in chosen else None,
        webhook_resolver=webhook_resolver,
        handlers_bus=handlers_bus,
        agents=chosen,
    )
    if handlers_bus is not None:
        runtime.subscriptions = register_handlers(handlers_bus, runtime, chosen)
    return runtime


def bootstrap_worker(
    settings: Settings,
    agents: Collection[str] = AGENTS,
    *,
    session_factory: async_sessionmaker[AsyncSession] | None = None,
    registry: ModelRegistry | None = None,
    webhook_resolver: Resolver | None = None,
    name: str | None = None,
) -> Runtime:
    """The runtime of ``apps.cli worker``: ``agents`` consuming the JetStream stream (SM_BUS_URL must be NATS).

    Its handlers run on a local in-process bus fed by a ``BusConsumer``; its own events (anomalies, alerts, work
    orders) go through the outbox and its relay to the stream; it ingests nothing.
    """
    if not settings.bus_servers:
        raise ValueError("a worker needs SM_BUS_URL to be a NATS URL (nats://host:4222); it is unset")
    runtime = bootstrap(
        settings,
        session_factory=session_factory,
        registry=registry,
        webhook_resolver=webhook_resolver,
        agents=agents,
    )
    assert runtime.handlers_bus is not None
    runtime.run_ingest = False
    runtime.consumer = BusConsumer(
        settings,
        runtime.handlers_bus,
        handler_names(runtime.agents),
        runtime.session_factory,
        event_types=event_types(runtime.agents),
        on_assign=lambda agent, partition: forget_partition(runtime, agent, partition),
        name=name,
    )
    # the fleet-wide passes run in one worker of their agent (the holder of its partition 0), not in every copy
    consumer = runtime.consumer
    for checker, agent in ((runtime.no_data_checker, "alerting"), (runtime.drift_checker, "anomaly")):
        if checker is not None:
            checker.gate = partial(_holds_first_partition, consumer, agent)
    return runtime


def _holds_first_partition(consumer: BusConsumer, agent: str) -> bool:
    return 0 in consumer.held.get(agent, ())


@runtime_checkable
class PerSensorState(Protocol):
    """A handler that keeps per-sensor state in the process (the anomaly agent's baseline windows, the alert
    rules' watermarks)."""

    def forget_sensors(self, drop: Callable[[str], bool]) -> int: ...


def forget_partition(runtime: Runtime, agent: str, partition: int) -> None:
    """A worker gained ``partition`` of ``agent``: every handler of that agent that keeps per-sensor state drops it
    for the partition's sensors (another worker may have moved it on since): baseline windows are rebuilt from the
    database, rule batches evaluated as their events say, as after a restart."""
    partitions = runtime.settings.bus_partitions
    names = set(handler_names([agent])[agent])
    for subscription in runtime.subscriptions:
        if subscription.name in names and isinstance(subscription.handler, PerSensorState):
            subscription.handler.forget_sensors(lambda s: sensor_partition(s, partitions) == partition)


__all__ = ["Runtime", "bootstrap", "bootstrap_worker", "forget_partition"]
