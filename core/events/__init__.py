"""Events: typed event models, the transactional outbox, the outbox relay and the in-process bus.

* ``core.events.types``  — ``Event`` and the past-tense events (``ReadingsIngested``, …); name → class registry.
* ``core.events.outbox`` — ``add_to_outbox(session, event)``: write an event in the caller's transaction.
* ``core.events.relay``  — ``OutboxRelay``: publishes committed outbox rows to the bus (at least once);
  ``after_commit(runtime)`` wakes it.
* ``core.events.bus``    — ``EventBus``: bounded queue, worker tasks, tenacity retries, dead letters.
* ``core.events.dead_letters`` — listing and replaying dead letters (admin API and CLI).

Delivery is at least once: handlers must be idempotent.
"""

from core.events.bus import EventBus
from core.events.outbox import add_to_outbox
from core.events.relay import OutboxRelay, after_commit
from core.events.types import (
    AlertRaised,
    AnomalyDetected,
    Event,
    MaintenanceTaskCompleted,
    MaintenanceTaskCreated,
    ReadingsIngested,
)

__all__ = [
    "AlertRaised",
    "AnomalyDetected",
    "Event",
    "EventBus",
    "MaintenanceTaskCompleted",
    "MaintenanceTaskCreated",
    "OutboxRelay",
    "ReadingsIngested",
    "add_to_outbox",
    "after_commit",
]
