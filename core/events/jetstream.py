"""The NATS JetStream backend of the bus: the stream, its consumers, and publishing (``SM_BUS_URL=nats://…``).

Topology (created or checked by every process at start, idempotently)::

    stream  SM_BUS_STREAM (default SM_EVENTS), subjects  <prefix>.>            prefix: SM_BUS_SUBJECT_PREFIX
    subject <prefix>.p<partition>.<EventType>                                  partition: core.events.partitions
    consumer sm-<agent>-p<partition> per agent and partition: durable, pull, explicit ack, ack wait
             SM_BUS_ACK_WAIT_S, filter <prefix>.p<partition>.>, max deliver SM_BUS_MAX_DELIVER + 1
    KV bucket <stream>_leases: which worker holds which (agent, partition) (core.events.leases)

All consumers of every agent exist as soon as the first process started, so a message published before any
worker ran waits for it (with ``interest`` retention too).

``JetStreamBus`` is what the outbox relay publishes to when the bus is NATS: ``publish(event)`` splits the event by
partition (``core.events.partitions.split``) and publishes each part with ``Nats-Msg-Id`` = the event id (``.p<n>``
for parts), so a relay batch that is retried after a crash is stored once (the server drops a message id it stored
within SM_BUS_DUPLICATE_WINDOW_S). The ``Delivery`` it returns completes when the stream has stored every part
(its publish acknowledgement): the relay marks the outbox rows published only then, so nothing committed is lost
and nothing is published before its commit (the relay only reads committed rows). A replay of a dead letter
publishes with the header ``Sm-Handler`` naming the one handler to run and a fresh message id.

The bus knows every handler by name and event type (``core.runtime.handlers.HANDLERS``) without running one: the
handlers run in ``apps.cli worker`` processes (``core.events.consumer``). ``current_activity()`` sums the consumers'
pending and unacknowledged messages (``GET /api/v1/admin/events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from core.config import Settings
from core.errors import ServiceUnavailable
from core.events.bus import BusError, Delivery, Subscription, SubscriptionTable
from core.events.partitions import split
from core.events.types import Event
from core.observability.metrics import BUS_EVENTS_PUBLISHED_TOTAL

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.aio.client import ServerVersion
    from nats.js import JetStreamContext

logger = logging.getLogger("core.events.jetstream")

HANDLER_HEADER = "Sm-Handler"
EVENT_TYPE_HEADER = "Sm-Event-Type"
MSG_ID_HEADER = "Nats-Msg-Id"


@dataclass(frozen=True, slots=True)
class Topology:
    """Names of the stream, subjects, consumers and lease bucket of ``settings`` (module docstring)."""

    stream: str
    prefix: str
    partitions: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        return cls(settings.bus_stream, settings.bus_subject_prefix, settings.bus_partitions)

    def subject(self, partition: int, event_type: str) -> str:
        return f"{self.prefix}.p{partition}.{event_type}"

    def partition_filter(self, partition: int) -> str:
        return f"{self.prefix}.p{partition}.>"

    def consumer_filters(self, partition: int, event_types: Collection[str], *, many: bool) -> list[str]:
        """The subjects an agent's consumer of ``partition`` receives: only the event types its handlers take (an
        agent with none given, or with several on a server that takes one filter only (< 2.10, ``many`` false):
        the whole partition, the worker acknowledging what it does not handle)."""
        if event_types and (len(event_types) == 1 or many):
            return [self.subject(partition, t) for t in sorted(event_types)]
        return [self.partition_filter(partition)]

    @staticmethod
    def consumer(agent: str, partition: int) -> str:
        return f"sm-{agent}-p{partition}"

    @property
    def lease_bucket(self) -> str:
        return f"{self.stream}_leases"


async def connect(settings: Settings, name: str) -> NATS:
    """A NATS connection to ``SM_BUS_URL`` that reconnects for ever (a server restart is a pause, not an end)."""
    import nats

    if not settings.bus_servers:
        raise BusError("SM_BUS_URL is not a NATS URL: this process runs the in-process bus")

    async def error_cb(exc: Exception) -> None:
        if holder:  # before the first connection the caller reports the failure once
            logger.warning("NATS connection error: %s: %s", type(exc).__name__, exc)

    holder: list[NATS] = []

    async def disconnected_cb() -> None:
        if holder and (holder[0].is_closed or holder[0].is_draining):
            return  # closed on purpose
        logger.warning("NATS disconnected; reconnecting")

    async def reconnected_cb() -> None:
        logger.info("NATS reconnected")

    wait_s = 0.5
    try:
        nc = await nats.connect(
            servers=settings.bus_servers,
            name=name,
            connect_timeout=settings.bus_connect_timeout_s,
            allow_reconnect=True,
            # the first connection gives up after about SM_BUS_CONNECT_TIMEOUT_S (an unreachable bus is an error
            # at start); once connected, reconnect for ever (set below)
            max_reconnect_attempts=max(1, round(settings.bus_connect_timeout_s / wait_s)),
            reconnect_time_wait=wait_s,
        error_cb=error_cb,
        disconnected_cb=disconnected_cb,
            reconnected_cb=reconnected_cb,
        )
    except Exception as exc:
        raise BusError(
            f"NATS at {', '.join(settings.bus_servers)} (SM_BUS_URL) is unreachable: {type(exc).__name__}: {exc}"
        ) from exc
    nc.options["max_reconnect_attempts"] = -1
    holder.append(nc)
    return nc


async def ensure_topology(
    js: JetStreamContext, settings: Settings, agents: Mapping[str, Collection[str]], *, server: ServerVersion
) -> None:
    """Create the stream, the consumers of ``agents`` (agent → the event types its handlers take) for every
    partition and the lease bucket when missing.

    An existing stream is updated to the settings' retention limits; its subjects and partitions are fixed. A
    consumer receives only its agent's event types (``Topology.consumer_filters``; several filters need a
    2.10 server): the scheduling agent, for one, never sees the readings' events.
    """
    from nats.js import api
    from nats.js.errors import NotFoundError

    topo = Topology.from_settings(settings)
    config = api.StreamConfig(
        name=topo.stream,
        subjects=[f"{topo.prefix}.>"],
        retention=api.RetentionPolicy(settings.bus_stream_retention),
        max_age=settings.bus_stream_max_age_s,
        max_bytes=settings.bus_stream_max_bytes,
        storage=api.StorageType(settings.bus_stream_storage),
        num_replicas=settings.bus_stream_replicas,
        duplicate_window=settings.bus_duplicate_window_s,
        discard=api.DiscardPolicy.OLD,
    )
    try:
        await js.stream_info(topo.stream)
    except NotFoundError:
        await js.add_stream(config)
        logger.info("JetStream stream %s created", topo.stream)
    else:
        try:  # limits and retention follow the settings; subjects and partitions are fixed for the stream's life
            await js.update_stream(config)
        except Exception as exc:  # noqa: BLE001 - the stream keeps working with its current limits: say so
            logger.warning("JetStream stream %s kept its configuration (update refused: %s)", topo.stream, exc)
    many = (server.major, server.minor) >= (2, 10)
    for agent, event_types in agents.items():
        for partition in range(topo.partitions):
            filters = topo.consumer_filters(partition, event_types, many=many)
            await _add_consumer(
                js,
                topo.stream,
                api.ConsumerConfig(
                    durable_name=topo.consumer(agent, partition),
                    filter_subject=filters[0] if len(filters) == 1 else None,
                    filter_subjects=filters if len(filters) > 1 else None,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    deliver_policy=api.DeliverPolicy.ALL,
                    ack_wait=settings.bus_ack_wait_s,
                    # one more than the worker's own limit: at that delivery it dead-letters the message itself
                    max_deliver=settings.bus_max_deliver + 1,
                    max_ack_pending=max(1_000, 4 * settings.bus_fetch_batch),
                    num_replicas=settings.bus_stream_replicas,
                ),
            )
    try:
        await js.key_value(topo.lease_bucket)
    except NotFoundError:
        await js.create_key_value(
            bucket=topo.lease_bucket,
            ttl=settings.bus_lease_ttl_s,
            history=1,
            replicas=settings.bus_stream_replicas,
        )


async def _add_consumer(js: JetStreamContext, stream: str, config: Any) -> None:
    """Create a durable consumer, or keep the existing one when the server refuses the new settings (servers before
    2.10 do not update a durable consumer in place): logged, never a failed start."""
    from nats.js.errors import APIError

    try:
        await js.add_consumer(stream, config)
    except APIError as exc:
        logger.warning("JetStream consumer %s kept its configuration: %s", config.durable_name, exc)


def encode(event: Event) -> bytes:
    return orjson.dumps(event.to_payload())


@dataclass(frozen=True, slots=True)
class RemoteHandler:
    """A handler run by the workers: known here by its agent, event type and name only."""

    agent: str
    event_type: str
    name: str


def agent_event_types(handlers: Iterable[RemoteHandler]) -> dict[str, set[str]]:
    """agent → the event types its handlers take (what its consumers receive)."""
    out: dict[str, set[str]] = {}
    for h in handlers:
        out.setdefault(h.agent, set()).add(h.event_type)
    return out


def _not_here(event: Event) -> Any:
    raise BusError("this handler runs in the worker processes, not here")


class JetStreamBus(SubscriptionTable):
    """Publishes events to the JetStream stream (module docstring); runs no handler."""

    def __init__(self, settings: Settings, handlers: Sequence[RemoteHandler], *, name: str = "sm-api") -> None:
        self.settings = settings
        self.topology = Topology.from_settings(settings)
        self._subscriptions = {
            h.name: Subscription(name=h.name, event_type=h.event_type, handler=_not_here) for h in handlers
        }
        self.agents = sorted({h.agent for h in handlers})
        self._agent_events = agent_event_types(handlers)
        self._name = name
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._stopped = False

    # --- the bus interface (relay, dead-letter replay, status) ----------------------------------------------
    @property
    def running(self) -> bool:
        return self._js is not None and not self._stopped

    async def open(self) -> None:
        """Connect and make sure the stream, the consumers of every agent and the lease bucket exist (every
        agent's consumers exist before anything is published, so no message is missed by one)."""
        self._nc = await connect(self.settings, self._name)
        self._js = self._nc.jetstream(timeout=self.settings.bus_connect_timeout_s)
        await ensure_topology(self._js, self.settings, self._agent_events, server=self._nc.connected_server_version)
        self._stopped = False
        logger.info(
            "JetStream bus connected",
            extra={"stream": self.topology.stream, "partitions": self.topology.partitions},
        )

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusError("the JetStream bus is not connected (open() first)")
        return self._js

    async def publish(self, event: Event, *, handler: str | None = None) -> Delivery:
        """Publish ``event`` (every part) to the stream; the delivery completes once the stream stored them."""
        if self._stopped:
            raise BusError("the bus is stopped")
        if handler is not None and handler not in self._subscriptions:
            raise BusError(f"no handler named {handler!r} is subscribed")
        js = self.js
        targets = [handler] if handler is not None else [s.name for s in self.handlers_for(event)]
        acks = []
        for part in split(event, self.topology.partitions):
            headers = {
                MSG_ID_HEADER: part.msg_id if handler is None else f"{part.msg_id}.replay.{uuid.uuid4().hex}",
                EVENT_TYPE_HEADER: event.event_type,
            }
            if handler is not None:
                headers[HANDLER_HEADER] = handler
            acks.append(
                await js.publish_async(
                    self.topology.subject(part.partition, event.event_type), encode(part.event), headers=headers
                )
            )
        BUS_EVENTS_PUBLISHED_TOTAL.labels(event_type=event.event_type).inc()
        loop = asyncio.get_running_loop()
        done: Delivery = loop.create_future()

        async def settle() -> None:
            try:
                await asyncio.wait_for(asyncio.gather(*acks), timeout=max(self.settings.bus_connect_timeout_s, 5.0))
            except BaseException as exc:  # noqa: BLE001 - handed to the delivery (the relay rolls back)
                if not done.done():
                    done.set_exception(exc if isinstance(exc, Exception) else BusError(repr(exc)))
                return
            if not done.done():
                done.set_result(dict.fromkeys(targets, "ok"))

        task = loop.create_task(settle())
        done.add_done_callback(lambda _f: task.cancel() if not task.done() else None)
        return done

    async def current_activity(self) -> tuple[int, int]:
        """``(pending, unacknowledged)`` messages summed over the consumers of every agent and partition."""
        js = self.js
        pending = unacked = 0
        ours = {self.topology.consumer(a, p) for a in self.agents for p in range(self.topology.partitions)}
        try:
            offset = 0
            while True:  # one request per 256 consumers
                page = await js.consumers_info(self.topology.stream, offset=offset or None)
                for info in page:
                    if info.name in ours:
                        pending += info.num_pending or 0
                        unacked += info.num_ack_pending or 0
                if len(page) < 256:
                    break
                offset += len(page)
        except Exception as exc:  # a server restarting, a cluster electing a leader: answer 503, retry later
            raise ServiceUnavailable(f"the event bus (NATS) did not answer: {type(exc).__name__}: {exc}") from exc
        return pending, unacked

    async def stop(self, timeout: float | None = None) -> None:
        self._stopped = True
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.drain(), timeout or self.settings.bus_stop_timeout_s)
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = None
        self._js = None


__all__ = [
    "EVENT_TYPE_HEADER",
    "HANDLER_HEADER",
    "JetStreamBus",
    "RemoteHandler",
    "Topology",
    "connect",
    "encode",
    "agent_event_types",
    "ensure_topology",
]
