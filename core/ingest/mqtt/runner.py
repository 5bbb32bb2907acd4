"""``MqttIngest``: the broker connection and the bridge loop of one process, started and stopped together.

The caller (``apps/cli/mqtt.py``, the tests, the benchmark) builds the ingest service the API uses and hands it
in; ``start()`` connects and subscribes (``BrokerError`` when the broker cannot be used), then runs the bridge in a
task. ``stop()`` lets the batch in progress finish within ``grace_s`` (cancelled after it: nothing of it is
acknowledged, the broker delivers it again), then disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from core.config import Settings
from core.ingest.mqtt.bridge import BatchResult, BridgeOptions, Ingestor, MqttBridge
from core.ingest.mqtt.client import PahoBroker
from core.ingest.mqtt.messages import Message

logger = logging.getLogger("core.ingest.mqtt")


def bridge_options(settings: Settings) -> BridgeOptions:
    return BridgeOptions(
        prefix=settings.mqtt_topic_prefix,
        batch_size=settings.mqtt_batch_size,
        batch_ms=settings.mqtt_batch_ms,
        max_payload_bytes=settings.max_body_bytes,
        retry_base_s=settings.mqtt_retry_base_s,
        retry_max_s=settings.mqtt_retry_max_s,
        rejected_payload_chars=settings.mqtt_rejected_payload_chars,
    )


class MqttIngest:
    """Broker connection + bridge loop (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        ingestor: Ingestor,
        *,
        on_batch: Callable[[BatchResult], Awaitable[None] | None] | None = None,
    ) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.broker = PahoBroker(settings, self.queue)
        self.bridge = MqttBridge(ingestor, self.broker, self.queue, bridge_options(settings), on_batch=on_batch)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.broker.start()
        self._task = asyncio.create_task(self.bridge.run(), name="mqtt-bridge")

    async def wait(self) -> None:
        """Until the bridge loop ends (after ``stop()``, or when it failed: its exception is raised here)."""
        if self._task is not None:
            await self._task

    async def stop(self, grace_s: float = 10.0) -> None:
        self.bridge.stop()
        task, self._task = self._task, None
        try:
            if task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(task), grace_s)
                except TimeoutError:
                    logger.warning("the batch in progress did not finish within %.0f s: left to the broker", grace_s)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            await self.broker.stop()


__all__ = ["MqttIngest", "bridge_options"]
