"""The bridge's loop: batch received messages, ingest them in one call of the ingest service, publish the
rejections, then acknowledge every message of the batch.

* **Batching.** The first message of a batch waits at most ``batch_ms`` for others, up to ``batch_size`` messages
  and ``MAX_BATCH_ITEMS`` readings. The items of all its messages become one JSON array, ingested with one
  ``IngestService.ingest`` call (one transaction, one ``ReadingsIngested`` in the outbox, the same validation and
  de-duplication as ``POST /api/v1/data/ingest``). The service's per-item rejections are mapped back to their
  messages: a bad message never makes its batch-mates fail.
* **Acknowledge after commit.** A message is acknowledged (PUBACK) only after the transaction holding its
  readings committed, or after its rejection notice was accepted by the broker. A message whose batch could not be
  written is not acknowledged: the broker delivers it again (after a reconnect or a restart of the bridge, thanks
  to the persistent session), and what was already stored is absorbed as duplicates on (sensor, timestamp).
* **Transient failures** (the database unreachable, restarting, out of connections: ``is_database_unavailable``,
  or a 503) are retried with exponential backoff until they succeed, without acknowledging anything; the broker
  keeps the rest. Any other failure of a batch (a bug, a value the database refuses) is retried message by
  message, so that only the message that causes it is refused (status 500 or 422) — and acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never, wait_exponential

from core.db.errors import is_data_exception, is_database_unavailable
from core.errors import AppError, ServiceUnavailable, ValidationFailed
from core.ingest.mqtt.messages import Decoded, Message, Refusal, RejectionNotice, decode_message, partial_detail
from core.ingest.mqtt.topics import ReadingsTopic, parse_topic
from core.ingest.schemas import MAX_BATCH_ITEMS, RejectedItem
from core.ingest.service import IngestReply
from core.observability.metrics import (
    MQTT_BATCH_LATENCY_SECONDS,
    MQTT_BATCH_SIZE_MESSAGES,
    MQTT_INGEST_RETRIES_TOTAL,
    MQTT_MESSAGES_RECEIVED_TOTAL,
    MQTT_MESSAGES_REJECTED_TOTAL,
    MQTT_READINGS_TOTAL,
)

logger = logging.getLogger("core.ingest.mqtt")

#: ``api_key_id`` of the ingests the bridge makes (recorded on their ReadingsIngested events): no API key.
MQTT_API_KEY_ID = 0
_DATA_EXCEPTION = "a value of the request cannot be stored or compared"
_INTERNAL = "the bridge could not store this message (an internal error, logged); it is not retried"


class Ingestor(Protocol):
    """What the bridge needs of ``core.ingest.service.IngestService``."""

    async def ingest(self, body: bytes, *, api_key_id: int) -> IngestReply: ...


class Broker(Protocol):
    """What the bridge needs of the MQTT connection (``core.ingest.mqtt.client.PahoBroker``)."""

    def ack(self, message: Message) -> bool:
        """PUBACK ``message`` (QoS 1) on its connection; False when that connection is gone (it comes again)."""
        ...

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and return once the broker acknowledged it."""
        ...


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    prefix: str = "sm"
    batch_size: int = 500
    batch_ms: float = 20.0
    max_payload_bytes: int = 8 * 1024 * 1024
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    rejected_payload_chars: int = 2048


@dataclass(slots=True)
class Pending:
    """A message of the batch being processed and what became of it."""

    message: Message
    topic: ReadingsTopic | None
    decoded: Decoded | None = None
    refusal: Refusal | None = None
    rejected: list[RejectedItem] = field(default_factory=list)

    @property
    def items(self) -> int:
        return len(self.decoded.items) if self.decoded is not None else 0


@dataclass(slots=True)
class BatchResult:
    """What one processed batch did (for callers that observe the bridge: tests, the benchmark)."""

    messages: int
    accepted: int
    duplicates: int
    rejected_readings: int
    notices: list[tuple[str, RejectionNotice]]
    event_ids: list[str]
    acked: int


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ServiceUnavailable) or is_database_unavailable(exc)


class MqttBridge:
    """Consumes ``queue`` (filled by the broker connection) until ``stop()``; see the module docstring."""

    def __init__(
        self,
        ingestor: Ingestor,
        broker: Broker,
        queue: asyncio.Queue[Message],
        options: BridgeOptions,
        *,
        on_batch: Callable[[BatchResult], Awaitable[None] | None] | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._broker = broker
        self._queue = queue
        self.options = options
        self._on_batch = on_batch
        self._stopping = asyncio.Event()
        self.batches = 0

    def stop(self) -> None:
        """Finish the batch in progress (stored and acknowledged, or left to the broker), then return from run()."""
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            batch = await self._collect()
            if batch:
                await self.process(batch)

    # --- batching ----------------------------------------------------------------------------------------------
    async def _next(self, timeout: float | None) -> Message | None:
        """The next message within ``timeout`` (None: wait until one comes), or None on timeout or stop()."""
        get = asyncio.ensure_future(self._queue.get())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({get, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if get in done:
            return get.result()
        get.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await get
        if not get.cancelled():  # it completed while being cancelled: keep the message
            return get.result()
        return None

    async def _collect(self) -> list[Pending]:
        first = await self._next(None)
        if first is None:
            return []
        batch = [self._decode(first)]
        items = batch[0].items
        deadline = time.monotonic() + self.options.batch_ms / 1000.0
        while len(batch) < self.options.batch_size:
            try:
                message = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping.is_set():
                    break
                message = await self._next(left)  # type: ignore[assignment]
                if message is None:
                    break
            pending = self._decode(message)
            if items + pending.items > MAX_BATCH_ITEMS:
                await self.process(batch)  # this message starts the next batch
                batch, items = [], 0
            batch.append(pending)
            items += pending.items
        return batch

    def _decode(self, message: Message) -> Pending:
        MQTT_MESSAGES_RECEIVED_TOTAL.inc()
        pending = Pending(message, parse_topic(message.topic, self.options.prefix))
        if pending.topic is None:
            return pending
        try:
            pending.decoded = decode_message(pending.topic, message.payload, max_bytes=self.options.max_payload_bytes)
        except Refusal as refusal:
            pending.refusal = refusal
        else:
            pending.rejected = list(pending.decoded.rejected)
        return pending

    # --- one batch ---------------------------------------------------------------------------------------------
    async def process(self, batch: list[Pending]) -> BatchResult:
        """Ingest ``batch``, publish its rejection notices, acknowledge its messages (module docstring)."""
        if not batch:
            return BatchResult(0, 0, 0, 0, [], [], 0)
        ingestible = [p for p in batch if p.decoded is not None and p.decoded.items]
        accepted, duplicates, event_ids = await self._ingest(ingestible)
        notices = [(p.topic.rejected, self._notice(p)) for p in batch if p.topic is not None and self._refused(p)]
        if notices:
            await asyncio.gather(*(self._broker.publish(topic, n.to_json()) for topic, n in notices))
        acked = sum(self._broker.ack(p.message) for p in batch)
        for p in batch:
            if p.topic is None:
                logger.warning(
                    "message on %r ignored: not a readings topic under %r", p.message.topic, self.options.prefix
                )
                MQTT_MESSAGES_REJECTED_TOTAL.labels(kind="topic").inc()
            elif p.refusal is not None:
                MQTT_MESSAGES_REJECTED_TOTAL.labels(kind="message").inc()
            elif p.rejected:
                MQTT_MESSAGES_REJECTED_TOTAL.labels(kind="readings").inc()
        rejected = sum(len(p.rejected) for p in batch)
        self._count(accepted, duplicates, rejected)
        MQTT_BATCH_SIZE_MESSAGES.observe(len(batch))
        MQTT_BATCH_LATENCY_SECONDS.observe(time.monotonic() - min(p.message.received_at for p in batch))
        self.batches += 1
        result = BatchResult(len(batch), accepted, duplicates, rejected, notices, event_ids, acked)
        if self._on_batch is not None:
            outcome = self._on_batch(result)
            if outcome is not None:
                await outcome
        return result

    @staticmethod
    def _refused(p: Pending) -> bool:
        return p.refusal is not None or bool(p.rejected)

    def _notice(self, p: Pending) -> RejectionNotice:
        total = p.decoded.total if p.decoded is not None else 0
        if p.refusal is not None:
            status, detail = p.refusal.status, p.refusal.detail
            kept = 0
        else:
            kept = total - len(p.rejected)
            status, detail = partial_detail(len(p.rejected), total, kept)
        return RejectionNotice.build(
            p.message.topic,
            p.message.payload,
            status=status,
            detail=detail,
            rejected=p.rejected,
            readings=total,
            kept=kept,
            received_at=datetime.now(UTC),
            max_chars=self.options.rejected_payload_chars,
        )

    @staticmethod
    def _count(accepted: int, duplicates: int, rejected: int) -> None:
        for result, count in (("accepted", accepted), ("duplicate", duplicates), ("rejected", rejected)):
            if count:
                MQTT_READINGS_TOTAL.labels(result=result).inc(count)

    # --- ingest --------------------------------------------------------------------------------------------------
    async def _ingest(self, group: list[Pending]) -> tuple[int, int, list[str]]:
        """Ingest the items of ``group`` in one call; (accepted, duplicates, event ids)."""
        if not group:
            return 0, 0, []
        owners: list[tuple[Pending, int]] = []
        parts: list[bytes] = []
        for p in group:
            assert p.decoded is not None
            parts.extend(p.decoded.items)
            owners.extend((p, index) for index in p.decoded.indices)
        body = b"[" + b",".join(parts) + b"]"
        try:
            reply = await self._call(body)
        except Exception as exc:  # noqa: BLE001 - any failure but a transient one is isolated to its message
            if isinstance(exc, ValidationFailed) and "rejected" in exc.extra:
                self._assign(owners, exc.extra["rejected"])  # nothing of the batch could be stored
                return 0, 0, []
            if len(group) == 1:
                self._refuse_alone(group[0], exc)
                return 0, 0, []
            logger.warning(
                "batch of %d messages failed (%s); ingesting them one by one", len(group), type(exc).__name__
            )
            totals = [await self._ingest([p]) for p in group]
            return sum(t[0] for t in totals), sum(t[1] for t in totals), [e for t in totals for e in t[2]]
        self._assign(owners, reply.body.get("rejected") or [])
        return int(reply.body["accepted"]), int(reply.body["duplicates"]), [str(reply.body["event_id"])]

    @staticmethod
    def _assign(owners: list[tuple[Pending, int]], rejected: list[dict[str, Any]]) -> None:
        for item in rejected:
            pending, index = owners[int(item["index"])]
            pending.rejected.append(RejectedItem(index=index, reason=str(item["reason"])))

    @staticmethod
    def _refuse_alone(p: Pending, exc: Exception) -> None:
        if isinstance(exc, AppError):
            p.refusal = Refusal(exc.status_code, exc.detail)
        elif is_data_exception(exc):
            logger.info("message on %s refused by the database: %s", p.message.topic, type(exc).__name__)
            p.refusal = Refusal(422, _DATA_EXCEPTION)
        else:
            logger.error("message on %s could not be stored", p.message.topic, exc_info=exc)
            p.refusal = Refusal(500, _INTERNAL)

    async def _call(self, body: bytes) -> IngestReply:
        """One ingest call, retried with backoff while the failure is transient (never given up)."""

        def log_retry(state: RetryCallState) -> None:
            MQTT_INGEST_RETRIES_TOTAL.inc()
            error = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            logger.warning(
                "ingest failed transiently (%s: %s); attempt %d, retrying in %.1f s; nothing acknowledged",
                type(error).__name__,
                str(error).splitlines()[0][:200] if error else "",
                state.attempt_number,
                wait,
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential(multiplier=self.options.retry_base_s, max=self.options.retry_max_s),
            stop=stop_never,
            before_sleep=log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._ingestor.ingest(body, api_key_id=MQTT_API_KEY_ID)
        raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["MQTT_API_KEY_ID", "BatchResult", "BridgeOptions", "Broker", "Ingestor", "MqttBridge", "Pending"]
