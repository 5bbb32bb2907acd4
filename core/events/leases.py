"""Partition leases on a JetStream key-value bucket: one worker at a time consumes an agent's partition.

The bucket (``<stream>_leases``, created by ``core.events.jetstream.ensure_topology``) keeps every entry for
``SM_BUS_LEASE_TTL_S`` after its last write, then the server removes it. Keys:

* ``<agent>.p<n>`` = the worker id holding partition ``n`` of ``agent``: taken with ``create`` (only when absent:
  JetStream's compare-and-set on the subject's last sequence), renewed with ``update(last=revision)``;
* ``<agent>.w.<worker id>``: the worker's heartbeat, rewritten on every tick.

Every tick (a third of the TTL) a worker renews what it holds, counts the live workers of its agent and aims at
``ceil(partitions / live)`` partitions: it takes free ones up to that share and gives back the excess, so a new
worker gets its share within a few ticks and a killed worker's partitions are free once its leases expire. A
lease that cannot be renewed (another worker took it after a pause longer than the TTL) is dropped at once.

Handing a partition over never loses an event: messages are acknowledged only after their handlers finished, so
what the previous holder had not acknowledged is redelivered to the next. The new holder rebuilds per-sensor state
of the partition from the database (``on_assign`` in ``core.events.consumer``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

logger = logging.getLogger("core.events.leases")


@dataclass
class LeaseChanges:
    gained: set[int] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)


class PartitionLeases:
    """The leases one worker holds for one agent (module docstring)."""

    def __init__(
        self, js: JetStreamContext, kv: KeyValue, bucket: str, agent: str, partitions: int, worker_id: str
    ) -> None:
        self.js = js
        self.kv = kv
        self.bucket = bucket
        self.agent = agent
        self.partitions = partitions
        self.worker_id = worker_id
        self.held: dict[int, int] = {}
        """partition → revision of our lease entry."""

    def _key(self, partition: int) -> str:
        return f"{self.agent}.p{partition}"

    async def _live_workers(self) -> int:
        """Workers of this agent whose heartbeat has not expired (this one included): one stream-info request
        listing the heartbeat subjects (a key listing would open a consumer on the bucket at every tick)."""
        info = await self.js.stream_info(
            f"KV_{self.bucket}", subjects_filter=f"$KV.{self.bucket}.{self.agent}.w.*"
        )
        return max(1, len(info.state.subjects or {}))

    async def tick(self) -> LeaseChanges:
        """Heartbeat, renew, rebalance (module docstring); what was gained and lost."""
        from nats.js.errors import KeyWrongLastSequenceError

        changes = LeaseChanges()
        value = self.worker_id.encode()
        await self.kv.put(f"{self.agent}.w.{self.worker_id}", value)
        held = list(self.held.items())
        renewed = await asyncio.gather(
            *(self.kv.update(self._key(partition), value, last=revision) for partition, revision in held),
            return_exceptions=True,
        )
        for (partition, _), result in zip(held, renewed, strict=True):
            if isinstance(result, KeyWrongLastSequenceError):
                del self.held[partition]
                changes.lost.add(partition)
                logger.warning("lease on %s partition %d lost", self.agent, partition)
            elif isinstance(result, BaseException):
                raise result  # the server did not answer: keep what we hold, the caller retries at the next tick
            else:
                self.held[partition] = result
        target = math.ceil(self.partitions / await self._live_workers())
        excess = set(sorted(self.held)[target:])
        changes.lost |= excess  # given back by release() once the partition's work stopped
        missing = target - (len(self.held) - len(excess))
        if missing > 0:
            free = [p for p in range(self.partitions) if p not in self.held]
            random.shuffle(free)  # workers starting together do not all race for partition 0
            for partition in free:
                if missing <= 0:
                    break
                try:
                    self.held[partition] = await self.kv.create(self._key(partition), value)
                except KeyWrongLastSequenceError:
                    continue
                changes.gained.add(partition)
                missing -= 1
        return changes

    async def release(self, partition: int) -> None:
        """Give ``partition`` back (its work stopped): another worker may take it at its next tick."""
        revision = self.held.pop(partition, None)
        if revision is None:
            return
        try:
            await self.kv.delete(self._key(partition), last=revision)
        except Exception as exc:  # noqa: BLE001 - the lease then expires by itself
            logger.warning("could not release %s partition %d: %s", self.agent, partition, exc)

    async def release_all(self) -> None:
        for partition in list(self.held):
            await self.release(partition)
        try:
            await self.kv.delete(f"{self.agent}.w.{self.worker_id}")
        except Exception as exc:  # noqa: BLE001 - expires by itself
            logger.warning("could not remove the heartbeat of %s: %s", self.worker_id, exc)


__all__ = ["LeaseChanges", "PartitionLeases"]
