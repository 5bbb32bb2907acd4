"""Which handler reacts to which event: the one declarative table of the event bus.

``HANDLERS`` lists, per event type, the handlers that react to it: a ``HandlerSpec`` is the event, the handler's
name and how the handler is built from the ``Runtime`` (``core.runtime.runtime``); add a line per handler.
``register_handlers(bus, runtime)`` subscribes them all (``bootstrap()`` calls it; the CLI's dead-letter replay and
the tests get the same table through it). Handler names are stable identifiers (``<agent>.<action>``): dead
letters record them and replays target them, so never rename one. Every handler must be idempotent (delivery is
at least once, see ``core.events.bus``).

Code that writes events with ``core.events.outbox.add_to_outbox`` needs no extra call: the relay is woken
after the commit automatically (a SQLAlchemy ``after_commit`` listener, see ``core.events.outbox``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.alerts import agent as alerting
from core.anomaly import agent as anomaly
from core.events.bus import EventBus, Handler, Subscription
from core.events.jetstream import RemoteHandler
from core.events.types import (
    AlertRaised,
    Event,
    MaintenanceTaskCompleted,
    ReadingsIngested,
    ReadingsScored,
    WaveformIngested,
)
from core.maintenance import agent as scheduling
from core.ml.rul.due import RulDueDates
from core.notifications import agent as notification
from core.notifications.envelope import NOTIFIED_EVENTS
from core.observability import agent as telemetry
from core.waveforms import agent as diagnosis

if TYPE_CHECKING:
    from core.runtime.runtime import Runtime


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """One subscription: ``build(runtime)`` is subscribed to ``event`` under ``name``; ``agent`` is the worker role
    that runs it when the bus is NATS (``apps.cli worker --agents``)."""

    agent: str
    event: type[Event]
    name: str
    build: Callable[[Runtime], Handler]


def scheduling_handler(rt: Runtime) -> scheduling.OpenTaskForAlert:
    """The scheduling agent, its RUL source injected: lower bounds of RUL intervals from the runtime's model
    server (``core.ml.rul.due``, cached ``SM_ML_ALIAS_TTL_S``) bring work orders' due dates forward."""
    rul = RulDueDates(lambda: rt.models, ttl_s=rt.settings.ml_alias_ttl_s)
    return scheduling.OpenTaskForAlert.from_settings(rt.settings, rt.session_factory, rul=rul)


#: The agents a worker can run (``--agents``); in the in-process mode the API process runs them all.
AGENTS: tuple[str, ...] = ("anomaly", "alerting", "scheduling", "notification", "diagnosis")


HANDLERS: tuple[HandlerSpec, ...] = (
    # ReadingsIngested: counted, then the alert rules on the readings (threshold, rate of change, flat line)
    HandlerSpec("alerting", ReadingsIngested, telemetry.HANDLER_NAME, lambda rt: telemetry.ReadingsIngestedCounter()),
    HandlerSpec(
        "alerting",
        ReadingsIngested,
        alerting.READINGS_HANDLER_NAME,
        lambda rt: alerting.ReadingsHandler(rt.session_factory, rt.settings),
    ),
    # ReadingsScored (written by the anomaly agent once its anomalies are committed): anomaly-score alert rules
    HandlerSpec(
        "alerting",
        ReadingsScored,
        alerting.SCORED_HANDLER_NAME,
        lambda rt: alerting.ScoredHandler(rt.session_factory, rt.settings),
    ),
    # ReadingsIngested: anomaly detection; a completed work order (a repair) may re-learn its references
    HandlerSpec("anomaly", ReadingsIngested, anomaly.HANDLER_NAME, lambda rt: rt.require_anomaly_agent()),
    HandlerSpec(
        "anomaly",
        MaintenanceTaskCompleted,
        anomaly.REFERENCES_HANDLER_NAME,
        lambda rt: rt.require_anomaly_agent().on_task_completed,
    ),
    # every notified event type: pending webhook/e-mail deliveries (one name per type: the bus keys by name)
    *(
        HandlerSpec(
            "notification", cls, notification.handler_name(cls.event_type), lambda rt: rt.require_notifications()
        )
        for cls in NOTIFIED_EVENTS
    ),
    # WaveformIngested: bearing diagnosis of a vibration snapshot; a named fault raises the asset's alert
    HandlerSpec(
        diagnosis.AGENT,
        WaveformIngested,
        diagnosis.HANDLER_NAME,
        lambda rt: diagnosis.DiagnoseSnapshot.from_settings(rt.settings, rt.session_factory),
    ),
    # AlertRaised: one work order per incident (due by severity, or earlier by the asset's RUL lower bound)
    HandlerSpec("scheduling", AlertRaised, scheduling.HANDLER_NAME, scheduling_handler),
)


def register_handlers(bus: EventBus, runtime: Runtime, agents: Collection[str] = AGENTS) -> list[Subscription]:
    """Subscribe the handlers of ``HANDLERS`` whose agent is in ``agents`` to ``bus``, built from ``runtime``."""
    return [bus.subscribe(spec.event, spec.build(runtime), name=spec.name) for spec in HANDLERS if spec.agent in agents]


def handler_names(agents: Collection[str]) -> dict[str, list[str]]:
    """agent → the names of its handlers (for the JetStream consumers)."""
    return {agent: [spec.name for spec in HANDLERS if spec.agent == agent] for agent in agents}


def event_types(agents: Collection[str]) -> dict[str, set[str]]:
    """agent → the event types its handlers take (what its JetStream consumers receive)."""
    return {agent: {spec.event.event_type for spec in HANDLERS if spec.agent == agent} for agent in agents}


def remote_handlers() -> list[RemoteHandler]:
    """Every handler by agent, event type and name: what the JetStream bus of the API process knows of them."""
    return [RemoteHandler(spec.agent, spec.event.event_type, spec.name) for spec in HANDLERS]


def parse_agents(value: str | None) -> tuple[str, ...]:
    """``"anomaly,alerting"`` → the agents, checked (ValueError names the unknown ones); empty or None: all."""
    if value is None or not value.strip():
        return AGENTS
    agents = tuple(dict.fromkeys(a.strip() for a in value.split(",") if a.strip()))
    unknown = [a for a in agents if a not in AGENTS]
    if unknown:
        raise ValueError(f"unknown agent(s) {', '.join(unknown)}; choose from {', '.join(AGENTS)}")
    return agents


__all__ = [
    "AGENTS",
    "HANDLERS",
    "HandlerSpec",
    "handler_names",
    "parse_agents",
    "register_handlers",
    "remote_handlers",
]
