"""Which handler reacts to which event, and the bus/relay wiring of the API process.

``register_handlers(bus, app_state)`` is the one place agents subscribe; add a line per handler. Handler names
are stable identifiers (``<agent>.<action>``): dead letters record them and replays target them. Every handler
must be idempotent (delivery is at least once, see ``core.events.bus``).

``start_events(app_state)`` / ``stop_events(app_state)`` are the lifespan steps of the API: they build
``app_state.bus`` and ``app_state.relay`` from ``app_state.settings`` and ``app_state.session_factory`` (the
engine must exist first), start them, and stop them (relay first, then the bus drains) before the engine is
disposed. The CLI builds the same bus to replay dead letters in its own process.

Code that writes events with ``core.events.outbox.add_to_outbox`` needs no extra call: the relay is woken
after the commit automatically (a SQLAlchemy ``after_commit`` listener, see ``core.events.outbox``).
"""

from __future__ import annotations

import logging
from typing import Any

from core.alerts import agent as alerting
from core.anomaly.agent import HANDLER_NAME as ANOMALY_HANDLER
from core.anomaly.agent import REFERENCES_HANDLER_NAME as REFERENCES_HANDLER
from core.anomaly.agent import AnomalyAgent
from core.events.bus import EventBus, Subscription
from core.events.relay import OutboxRelay
from core.events.types import MaintenanceTaskCompleted, ReadingsIngested, ReadingsScored
from core.maintenance import agent as scheduling
from core.ml.drift import agent as drift
from core.notifications import agent as notification
from core.observability import agent as telemetry

logger = logging.getLogger("core.runtime.handlers")


def register_handlers(bus: EventBus, app_state: Any) -> list[Subscription]:
    """Subscribe every agent's handlers to ``bus``; ``app_state`` gives them settings and the session factory."""
    settings = getattr(app_state, "settings", None)
    anomaly_agent = AnomalyAgent.from_app_state(app_state)
    return [
        bus.subscribe(ReadingsIngested, telemetry.ReadingsIngestedCounter(), name=telemetry.HANDLER_NAME),
        bus.subscribe(
            ReadingsIngested,
            alerting.ReadingsHandler(getattr(app_state, "session_factory", None), settings),
            name=alerting.READINGS_HANDLER_NAME,
        ),
        bus.subscribe(
            ReadingsScored,
            alerting.ScoredHandler(getattr(app_state, "session_factory", None), settings),
            name=alerting.SCORED_HANDLER_NAME,
        ),
        bus.subscribe(ReadingsIngested, anomaly_agent, name=ANOMALY_HANDLER),
        bus.subscribe(MaintenanceTaskCompleted, anomaly_agent.on_task_completed, name=REFERENCES_HANDLER),
        *notification.subscribe(bus, app_state),
        scheduling.subscribe(bus, app_state),
    ]


def build_bus(app_state: Any) -> EventBus:
    """A bus configured from ``app_state.settings`` with every handler registered (not started)."""
    bus = EventBus.from_settings(app_state.settings, app_state.session_factory)
    register_handlers(bus, app_state)
    return bus


async def start_events(app_state: Any) -> None:
    """Lifespan start-up: create, wire and start ``app_state.bus`` and ``app_state.relay``."""
    bus = build_bus(app_state)
    relay = OutboxRelay.from_settings(app_state.settings, app_state.session_factory, bus)
    app_state.bus = bus
    app_state.relay = relay
    bus.start()
    relay.start()  # its first pass publishes what earlier runs left in the outbox
    app_state.no_data_checker = alerting.NoDataChecker(
        app_state.session_factory,
        app_state.settings.alert_no_data_check_interval_s,
        settings=app_state.settings,
    )
    app_state.no_data_checker.start()  # no-data alert rules (core/alerts), every SM_ALERT_NO_DATA_CHECK_INTERVAL_S
    app_state.drift_checker = drift.DriftChecker(app_state.session_factory, app_state.settings)
    app_state.drift_checker.start()  # drift of every sensor (core/ml/drift), every SM_DRIFT_CHECK_INTERVAL_S
    await notification.start_worker(app_state)  # delivers pending webhooks/e-mails (core/notifications)


async def stop_events(app_state: Any) -> None:
    """Lifespan shutdown: stop the relay (in-flight batches finish or roll back), then drain the bus."""
    relay: OutboxRelay | None = getattr(app_state, "relay", None)
    bus: EventBus | None = getattr(app_state, "bus", None)
    timeout = app_state.settings.bus_stop_timeout_s
    checker: alerting.NoDataChecker | None = getattr(app_state, "no_data_checker", None)
    if checker is not None:
        await checker.stop()
        app_state.no_data_checker = None
    drift_checker: drift.DriftChecker | None = getattr(app_state, "drift_checker", None)
    if drift_checker is not None:
        await drift_checker.stop()
        app_state.drift_checker = None
    try:
        if relay is not None:
            await relay.stop(timeout=timeout)
    finally:
        if bus is not None:
            await bus.stop(timeout=timeout)
        await notification.stop_worker(app_state)
        app_state.relay = None
        app_state.bus = None


__all__ = ["build_bus", "register_handlers", "start_events", "stop_events"]
