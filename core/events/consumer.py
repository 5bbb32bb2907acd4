"""The worker side of the JetStream bus: pull the partitions this worker holds and run the agents' handlers.

``BusConsumer(settings, bus, agents, …)`` runs, for each agent it serves (``agents``: agent → its handler names),
the lease loop of ``core.events.leases`` and one pull loop per partition it holds. A pull loop fetches up to
``SM_BUS_FETCH_BATCH`` messages of its durable consumer ``sm-<agent>-p<n>`` and hands each to the local
``EventBus`` (``core.events.bus``) for the agent's handlers of that event type — the same retries, dead letters,
coalescing and correlation ids as in the API process — and acknowledges a message only when every one of those
handlers succeeded or was dead-lettered. So:

* **Nothing lost.** A worker killed mid-batch acknowledged nothing of what it had not finished: JetStream
  redelivers it after ``SM_BUS_ACK_WAIT_S`` to the partition's next holder. Handlers are idempotent, so effects
  happen once.
* **Order per sensor.** One sensor's events are in one partition, and one worker at a time pulls a partition
  (leases), in stream order; within a fetched batch the handlers see the events as the in-process bus would.
* **Poison messages.** A message delivered more than ``SM_BUS_MAX_DELIVER`` times (each time a worker died or
  could not finish it) is dead-lettered for its handlers and acknowledged, instead of being retried for ever. A
  message that cannot be decoded is dead-lettered under ``outbox.relay`` (replayed to every handler).
* **State.** When the worker gains a partition, ``on_assign(agent, partition)`` runs first: the anomaly agent
  forgets the baseline windows of that partition's sensors and rebuilds them from the database on their next
  batch (another worker may have moved them on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.session import unit_of_work
from core.events.bus import EventBus
from core.events.dead_letter_repository import DeadLetterRepository
from core.events.jetstream import EVENT_TYPE_HEADER, HANDLER_HEADER, Topology, connect, ensure_topology
from core.events.leases import PartitionLeases
from core.events.relay import RELAY_HANDLER_NAME
from core.events.types import Event, event_from_row
from core.observability.metrics import BUS_MESSAGES_TOTAL, BUS_PARTITIONS_HELD

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

logger = logging.getLogger("core.events.consumer")

OnAssign = Callable[[str, int], None]
#: How long one pull request waits on the server for messages before it ends (and a new one is sent).
_PULL_EXPIRES_S = 5.0


class _Room:
    """A counter of free slots (messages an agent may still take in)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0

    def available(self) -> int:
        return self.size - self.used

    def take(self) -> None:
        self.used += 1

    def give(self) -> None:
        self.used -= 1


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class BusConsumer:
    """Consumes the partitions of ``agents`` held by this worker (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        agents: Mapping[str, Sequence[str]],
        session_factory: async_sessionmaker[AsyncSession],
        *,
        event_types: Mapping[str, Collection[str]] | None = None,
        on_assign: OnAssign | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.agents = {agent: set(names) for agent, names in agents.items()}
        self.event_types = {agent: set((event_types or {}).get(agent, ())) for agent in agents}
        """agent → the event types its handlers take: its consumers receive only those (none given: every one)."""
        self.session_factory = session_factory
        self.on_assign = on_assign
        self.worker_id = name or worker_id()
        self.topology = Topology.from_settings(settings)
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._leases: dict[str, PartitionLeases] = {}
        self._pulls: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._in_flight: dict[tuple[str, int], set[asyncio.Future[None]]] = {}
        self._agent_room = {agent: _Room(settings.bus_max_in_flight) for agent in agents}
        """(agent, partition) → the messages handed to the handlers and not yet acknowledged."""
        self._draining: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.acked = 0
        self.dead_lettered = 0

    @property
    def held(self) -> dict[str, list[int]]:
        """agent → partitions this worker holds now."""
        return {agent: sorted(leases.held) for agent, leases in self._leases.items()}

    async def start(self) -> None:
        self._nc = await connect(self.settings, f"sm-worker-{self.worker_id}")
        self._js = self._nc.jetstream(timeout=self.settings.bus_connect_timeout_s)
        await ensure_topology(self._js, self.settings, self.event_types, server=self._nc.connected_server_version)
        kv = await self._js.key_value(self.topology.lease_bucket)
        self._leases = {
            agent: PartitionLeases(
                self._js, kv, self.topology.lease_bucket, agent, self.topology.partitions, self.worker_id
            )
            for agent in self.agents
        }
        self._stopping = False
        self._task = asyncio.create_task(self._lease_loop(), name="bus-consumer-leases")
        logger.info("bus consumer started", extra={"worker": self.worker_id, "agents": sorted(self.agents)})

    async def stop(self, timeout: float | None = None) -> None:
        """Stop pulling, let the batches in flight finish (bounded), give the leases back, close."""
        self._stopping = True
        timeout = self.settings.bus_stop_timeout_s if timeout is None else timeout
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._draining.values()):
            task.cancel()
        pulls = list(self._pulls.values())
        if pulls:
            _done, pending = await asyncio.wait(pulls, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pulls, return_exceptions=True)
        self._pulls.clear()
        in_flight = [f for fs in self._in_flight.values() for f in fs if not f.done()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=timeout)
        self._in_flight.clear()
        for leases in self._leases.values():
            with contextlib.suppress(Exception):
                await leases.release_all()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = None
        logger.info("bus consumer stopped", extra={"worker": self.worker_id, "acked": self.acked})

    # --- leases ---------------------------------------------------------------------------------------------
    async def _lease_loop(self) -> None:
        """Tick every agent's leases every third of the TTL. Nothing here waits for a partition's work: giving a
        partition back (after its batch in flight) runs in its own task, so renewals are never late."""
        interval = self.settings.bus_lease_ttl_s / 3
        while not self._stopping:
            started = asyncio.get_running_loop().time()
            await asyncio.gather(*(self._tick(agent, leases) for agent, leases in self._leases.items()))
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.0, interval - elapsed))

    async def _tick(self, agent: str, leases: PartitionLeases) -> None:
        try:
            changes = await leases.tick()
        except Exception as exc:  # noqa: BLE001 - the server may be restarting: keep what we hold, retry
            logger.warning("lease tick of %s failed: %s: %s", agent, type(exc).__name__, exc)
            return
        for partition in sorted(changes.lost):
            key = (agent, partition)
            if partition in leases.held:  # an excess partition: given back once its batch in flight is done
                if key not in self._draining:
                    self._draining[key] = asyncio.create_task(
                        self._drain_and_release(agent, partition), name=f"bus-drain-{agent}-p{partition}"
                    )
            else:  # taken by another worker after our lease expired: stop pulling at once
                self._cancel_pull(key)
        for partition in sorted(changes.gained):
            self._cancel_pull((agent, partition))  # a pull left from an earlier holding of it
            if self.on_assign is not None:
                self.on_assign(agent, partition)
            self._pulls[(agent, partition)] = asyncio.create_task(
                self._pull(agent, partition), name=f"bus-pull-{agent}-p{partition}"
            )
        BUS_PARTITIONS_HELD.labels(agent=agent).set(len(leases.held))
        if changes.gained or changes.lost:
            logger.info(
                "partitions of %s: %s",
                agent,
                sorted(leases.held),
                extra={"worker": self.worker_id, "gained": sorted(changes.gained), "lost": sorted(changes.lost)},
            )

    def _cancel_pull(self, key: tuple[str, int]) -> None:
        """Stop fetching (a batch being handled finishes and is acknowledged: it is shielded)."""
        task = self._pulls.pop(key, None)
        if task is not None:
            task.cancel()

    async def _drain_and_release(self, agent: str, partition: int) -> None:
        key = (agent, partition)
        try:
            self._cancel_pull(key)
            in_flight = [f for f in self._in_flight.get(key, ()) if not f.done()]
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.settings.bus_ack_wait_s)
            await self._leases[agent].release(partition)
        finally:
            self._draining.pop(key, None)

    # --- pulling --------------------------------------------------------------------------------------------
    async def _pull(self, agent: str, partition: int) -> None:
        """Pull the partition continuously and hand each message over without waiting for the handlers.

        Up to SM_BUS_FETCH_BATCH messages of the partition, and SM_BUS_MAX_IN_FLIGHT of the agent, are in hand at
        once, each acknowledged when its own handlers finished (a long batch does not hold up the next event, as on
        the in-process bus; the bounds keep a message's wait here well under the ack wait). Pull requests go to the
        consumer's ``MSG.NEXT`` subject with a reply inbox of this loop's own, and arriving messages are queued by a
        callback: no receive with a timeout, which on Python 3.11 can drop a message that arrives as the timeout
        fires (it would then wait for the ack wait to be redelivered). A request asks for the free room and expires
        after ``_PULL_EXPIRES_S``; a new one is sent when the server says the last one ended, or when none was sent
        for that long. A redelivery of a message still in hand is dropped (the first delivery acknowledges it).
        When the partition is lost or the worker stops, what is in hand finishes and is acknowledged; messages
        received and not yet handed over are given back at once (nak)."""
        from nats.js import JetStreamContext

        nc = self._nc
        assert nc is not None
        key = (agent, partition)
        batch = self.settings.bus_fetch_batch
        agent_room = self._agent_room[agent]
        pending = self._in_flight.setdefault(key, set())
        sequences: set[int] = set()
        received: asyncio.Queue[Msg] = asyncio.Queue()
        wake = asyncio.Event()
        next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.topology.stream}.{self.topology.consumer(agent, partition)}"
        inbox = nc.new_inbox()

        async def on_message(msg: Msg) -> None:
            received.put_nowait(msg)

        sub = await nc.subscribe(inbox, cb=on_message)
        state = {"outstanding": 0, "sent_at": float("-inf")}

        async def request_more() -> None:
            loop = asyncio.get_running_loop()
            while not self._stopping:
                free = min(batch - len(pending) - received.qsize(), agent_room.available())
                stale = loop.time() - state["sent_at"] > _PULL_EXPIRES_S + 0.5
                if free > 0 and (state["outstanding"] <= 0 or stale):
                    body = {"batch": free, "expires": int(_PULL_EXPIRES_S * 1e9)}
                    try:
                        await nc.publish(next_subject, orjson.dumps(body), reply=inbox)
                        state["outstanding"], state["sent_at"] = free, loop.time()
                    except Exception as exc:  # noqa: BLE001 - reconnecting: the next round asks again
                        logger.warning("pull request of %s partition %d failed: %s", agent, partition, exc)
                wake.clear()
                with contextlib.suppress(TimeoutError):  # losing a wake-up costs at most this wait
                    await asyncio.wait_for(wake.wait(), 0.5)

        requester = asyncio.create_task(request_more(), name=f"bus-request-{agent}-p{partition}")
        try:
            while not self._stopping:
                msg = await received.get()
                status = JetStreamContext.is_status_msg(msg)
                if status is not None:
                    if status != "100":  # 404 no messages, 408 request expired, 409 …: the request ended
                        state["outstanding"] = 0
                        wake.set()
                    continue
                state["outstanding"] -= 1
                sequence = msg.metadata.sequence.stream
                if sequence in sequences:
                    continue  # redelivered while its first delivery is still being handled here
                sequences.add(sequence)
                agent_room.take()
                done = asyncio.ensure_future(self._handle(agent, msg))
                pending.add(done)

                def finished(
                    f: asyncio.Future[None], sequence: int = sequence, pending: set[asyncio.Future[None]] = pending
                ) -> None:
                    pending.discard(f)
                    sequences.discard(sequence)
                    agent_room.give()
                    wake.set()

                done.add_done_callback(finished)
        finally:
            requester.cancel()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            while not received.empty():  # received, never handed over: back to the consumer for the next holder
                msg = received.get_nowait()
                if JetStreamContext.is_status_msg(msg) is None:
                    with contextlib.suppress(Exception):
                        await msg.nak()

    async def _handle(self, agent: str, msg: Msg) -> None:
        """Hand one message to the agent's handlers on the local bus; acknowledge it once they all finished."""
        names = self.agents[agent]
        try:
            event = self._decode(msg)
        except Exception as exc:  # noqa: BLE001 - undeliverable: dead-lettered for every handler
            await self._dead_letter(msg, RELAY_HANDLER_NAME, f"{type(exc).__name__}: {exc}", 1)
            await msg.ack()
            return
        only = (msg.headers or {}).get(HANDLER_HEADER)
        targets = (
            [only]
            if only is not None and only in names
            else []
            if only is not None
            else [s.name for s in self.bus.handlers_for(event) if s.name in names]
        )
        delivered = msg.metadata.num_delivered
        if targets and delivered > self.settings.bus_max_deliver:
            for target in targets:
                await self._dead_letter(
                    msg,
                    target,
                    f"delivered {delivered} times without being acknowledged (a worker died or stopped handling "
                    "it each time)",
                    delivered,
                    event=event,
                )
            targets = []
        if not targets:
            await msg.ack()
            self.acked += 1
            return
        try:
            deliveries = [await self.bus.publish(event, handler=t) for t in targets]
        except Exception as exc:  # noqa: BLE001 - the local bus is stopping: hand it to the next holder
            logger.warning("could not hand a message to the local bus: %s", exc)
            await msg.nak()
            return
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        if any(isinstance(r, BaseException) for r in results):
            await msg.nak(delay=self.settings.bus_retry_base_s)
            BUS_MESSAGES_TOTAL.labels(agent=agent, result="nacked").inc()
        else:
            await msg.ack()
            self.acked += 1
            BUS_MESSAGES_TOTAL.labels(agent=agent, result="acked").inc()

    def _decode(self, msg: Msg) -> Event:
        event_type = (msg.headers or {}).get(EVENT_TYPE_HEADER) or msg.subject.rsplit(".", 1)[-1]
        payload: dict[str, Any] = orjson.loads(msg.data)
        return event_from_row(event_type, payload)

    async def _dead_letter(
        self, msg: Msg, handler: str, error: str, attempts: int, *, event: Event | None = None
    ) -> None:
        event_type = event.event_type if event is not None else msg.subject.rsplit(".", 1)[-1]
        try:
            payload = event.to_payload() if event is not None else orjson.loads(msg.data)
            if not isinstance(payload, dict):
                payload = {"raw": payload}
        except Exception:  # noqa: BLE001 - keep the raw bytes
            payload = {"raw": msg.data.decode("utf-8", "replace")[:4000]}
        async with unit_of_work(self.session_factory) as session:
            await DeadLetterRepository(session).add(
                event_type=event_type, payload=payload, handler=handler, error=error[:4000], attempts=attempts
            )
        self.dead_lettered += 1
        BUS_MESSAGES_TOTAL.labels(agent=handler.split(".", 1)[0], result="dead_lettered").inc()
        logger.error("message dead-lettered for %s: %s", handler, error, extra={"subject": msg.subject})


__all__ = ["BusConsumer", "OnAssign", "worker_id"]
