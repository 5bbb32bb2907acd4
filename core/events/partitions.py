"""Partitions of the JetStream bus: which partition an event goes to, so that one sensor's events stay in order.

Every event has a partition key: ``sensor:<id>`` when it concerns one sensor (anomalies, alerts, drift, work orders
opened for a sensor), ``asset:<id>`` for a work order of an asset without a sensor, ``task:<id>`` for the other
work-order events, else its event id. The partition is ``crc32(key) mod partitions``: stable across processes,
releases and Python versions (``hash()`` is salted per process).

Events about several sensors (``ReadingsIngested``, ``ReadingsScored``: "the stored readings of these sensors
between these instants") are split into one part per partition, each listing that partition's sensors; the parts
keep the event's id and its time range, and each is published under its own message id ``<event id>.p<n>`` so
that the server's de-duplication treats them apart. Handlers already read such an event as "these sensors, this
range", so a part is handled like the whole for its sensors.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from core.events.types import (
    AlertRaised,
    AnomalyDetected,
    DriftDetected,
    Event,
    MaintenanceTaskCompleted,
    MaintenanceTaskCreated,
    MaintenanceTaskEscalated,
    ReadingsIngested,
    ReadingsScored,
)


def partition_of(key: str, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` (crc32, stable everywhere)."""
    return zlib.crc32(key.encode()) % partitions


def sensor_partition(sensor_id: str, partitions: int) -> int:
    return partition_of(f"sensor:{sensor_id}", partitions)


def partition_key(event: Event) -> str:
    """The key whose partition carries ``event`` (module docstring); multi-sensor events are split first."""
    if isinstance(event, AnomalyDetected | AlertRaised | DriftDetected):
        return f"sensor:{event.sensor_id}"
    if isinstance(event, MaintenanceTaskCreated):
        if event.sensor_id is not None:
            return f"sensor:{event.sensor_id}"
        if event.asset_id is not None:
            return f"asset:{event.asset_id}"
        return f"task:{event.task_id}"
    if isinstance(event, MaintenanceTaskEscalated | MaintenanceTaskCompleted):
        return f"task:{event.task_id}"
    if isinstance(event, ReadingsIngested | ReadingsScored) and len(event.sensor_ids) == 1:
        return f"sensor:{event.sensor_ids[0]}"
    return f"event:{event.event_id}"


@dataclass(frozen=True, slots=True)
class Part:
    """One message of an event: its partition, the (possibly narrowed) event and the message id."""

    partition: int
    event: Event
    msg_id: str


def split(event: Event, partitions: int) -> list[Part]:
    """The messages that carry ``event`` (module docstring): one, or one per partition of its sensors."""
    if isinstance(event, ReadingsIngested | ReadingsScored) and len(event.sensor_ids) > 1:
        by_partition: dict[int, list[str]] = {}
        for sensor_id in event.sensor_ids:
            by_partition.setdefault(sensor_partition(sensor_id, partitions), []).append(sensor_id)
        if len(by_partition) > 1:
            return [
                Part(p, event.model_copy(update={"sensor_ids": sensors}), f"{event.event_id}.p{p}")
                for p, sensors in sorted(by_partition.items())
            ]
        (p,) = by_partition
        return [Part(p, event, str(event.event_id))]
    return [Part(partition_of(partition_key(event), partitions), event, str(event.event_id))]


__all__ = ["Part", "partition_key", "partition_of", "sensor_partition", "split"]
