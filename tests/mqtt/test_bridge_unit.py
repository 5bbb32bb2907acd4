"""The bridge's loop with a fake broker and a fake ingest service: batching, mapping rejections back to their
messages, acknowledging only after the ingest returned, retrying transient failures, isolating a failing message."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any
from uuid import uuid4

import orjson
import pytest
from sqlalchemy.exc import OperationalError

from core.errors import ValidationFailed
from core.ingest.mqtt.bridge import BridgeOptions, MqttBridge
from core.ingest.mqtt.messages import Message
from core.ingest.schemas import MAX_BATCH_ITEMS, RejectedItem
from core.ingest.service import IngestReply, rejection_error

NOW = "2026-11-01T00:00:00Z"
_mids = itertools.count(1)


def message(sensor: str, payload: Any, *, site: str = "s1", generation: int = 1) -> Message:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Message(f"sm/{site}/{sensor}/readings", body, next(_mids), 1, generation, time.monotonic())


class FakeBroker:
    def __init__(self) -> None:
        self.acked: list[int] = []
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.events: list[str] = []

    def ack(self, m: Message) -> bool:
        self.acked.append(m.mid)
        self.events.append(f"ack {m.mid}")
        return True

    async def publish(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, orjson.loads(payload)))
        self.events.append(f"publish {topic}")


class FakeIngest:
    """Rejects items whose value is not a number (like the service: per item, by index); raises what ``failures``
    holds first; fails with ``poison`` for any body containing that sensor."""

    def __init__(self, broker: FakeBroker, failures: list[BaseException] | None = None, poison: str | None = None):
        self.broker = broker
        self.failures = list(failures or [])
        self.poison = poison
        self.bodies: list[list[Any]] = []
        self.acks_seen_at_call: list[int] = []

    async def ingest(self, body: bytes, *, api_key_id: int) -> IngestReply:
        items = orjson.loads(body)
        self.bodies.append(items)
        self.acks_seen_at_call.append(len(self.broker.acked))
        self.broker.events.append(f"ingest {len(items)}")
        if self.failures:
            raise self.failures.pop(0)
        if self.poison and any(i.get("sensor_id") == self.poison for i in items if isinstance(i, dict)):
            raise RuntimeError("a bug")
        rejected = [
            RejectedItem(index=n, reason="value: Input should be a valid number")
            for n, item in enumerate(items)
            if not isinstance(item, dict) or not isinstance(item.get("value"), int | float)
        ]
        if len(rejected) == len(items):
            raise rejection_error(rejected, f"{len(rejected)} of {len(items)} readings are invalid; none stored")
        body_out = {"event_id": str(uuid4()), "accepted": len(items) - len(rejected), "duplicates": 0,
                    "rejected": [r.model_dump() for r in rejected]}  # fmt: skip
        return IngestReply(202, body_out)


def make(
    options: BridgeOptions | None = None, **fake: Any
) -> tuple[MqttBridge, FakeBroker, FakeIngest, asyncio.Queue[Message]]:
    broker = FakeBroker()
    ingest = FakeIngest(broker, **fake)
    queue: asyncio.Queue[Message] = asyncio.Queue()
    options = options or BridgeOptions(batch_size=100, batch_ms=20, retry_base_s=0.01, retry_max_s=0.02)
    return MqttBridge(ingest, broker, queue, options), broker, ingest, queue


async def run_until_acked(bridge: MqttBridge, broker: FakeBroker, count: int, timeout: float = 5.0) -> None:
    task = asyncio.create_task(bridge.run())
    try:
        deadline = time.monotonic() + timeout
        while len(broker.acked) < count:
            assert time.monotonic() < deadline, f"only {len(broker.acked)} of {count} acknowledged"
            await asyncio.sleep(0.005)
    finally:
        bridge.stop()
        await asyncio.wait_for(task, 5)


async def test_one_ingest_for_the_batch_rejections_mapped_to_their_messages_acks_after_commit() -> None:
    bridge, broker, ingest, queue = make()
    good = message("p-1", [{"value": 1, "timestamp": NOW}, {"value": 2, "timestamp": NOW}])
    mixed = message("p-2", [{"value": 3, "timestamp": NOW}, {"value": "x", "timestamp": NOW}])
    mismatch = message("p-3", [{"sensor_id": "p-9", "value": 4, "timestamp": NOW}, {"value": "y", "timestamp": NOW}])
    broken = message("p-4", b"{not json")
    for m in (good, mixed, mismatch, broken):
        queue.put_nowait(m)
    await run_until_acked(bridge, broker, 4)

    assert len(ingest.bodies) == 1, "one ingest call for the batch"
    assert [i.get("sensor_id") for i in ingest.bodies[0]] == ["p-1", "p-1", "p-2", "p-2", "p-3"]
    assert ingest.acks_seen_at_call == [0], "nothing acknowledged before the ingest returned"
    assert sorted(broker.acked) == sorted(m.mid for m in (good, mixed, mismatch, broken))
    assert broker.events.index("ingest 5") < min(i for i, e in enumerate(broker.events) if e.startswith("ack"))
    assert max(i for i, e in enumerate(broker.events) if e.startswith("publish")) < min(
        i for i, e in enumerate(broker.events) if e.startswith("ack")
    ), "rejection notices are accepted by the broker before the messages are acknowledged"

    notices = dict(broker.published)
    assert set(notices) == {"sm/s1/p-2/rejected", "sm/s1/p-3/rejected", "sm/s1/p-4/rejected"}
    assert notices["sm/s1/p-2/rejected"]["rejected"] == [
        {"index": 1, "reason": "value: Input should be a valid number"}
    ]
    assert notices["sm/s1/p-2/rejected"]["status"] == 202 and notices["sm/s1/p-2/rejected"]["kept"] == 1
    p3 = notices["sm/s1/p-3/rejected"]
    assert [r["index"] for r in p3["rejected"]] == [0, 1] and p3["status"] == 422 and p3["kept"] == 0
    assert p3["detail"] == "2 of 2 readings are invalid; none stored"
    assert notices["sm/s1/p-4/rejected"]["status"] == 400 and notices["sm/s1/p-4/rejected"]["readings"] == 0


async def test_a_batch_of_which_nothing_can_be_stored_is_mapped_from_the_422() -> None:
    bridge, broker, ingest, queue = make()
    a = message("p-1", {"value": "bad", "timestamp": NOW})
    b = message("p-2", [{"value": "bad", "timestamp": NOW}, {"value": "worse", "timestamp": NOW}])
    queue.put_nowait(a)
    queue.put_nowait(b)
    await run_until_acked(bridge, broker, 2)
    notices = dict(broker.published)
    assert [r["index"] for r in notices["sm/s1/p-1/rejected"]["rejected"]] == [0]
    assert [r["index"] for r in notices["sm/s1/p-2/rejected"]["rejected"]] == [0, 1]


async def test_transient_failures_are_retried_without_acknowledging() -> None:
    unavailable = OperationalError("INSERT", {}, ConnectionResetError("lost"), connection_invalidated=True)
    bridge, broker, ingest, queue = make(failures=[unavailable, OSError("reset by peer")])
    m = message("p-1", {"value": 1, "timestamp": NOW})
    queue.put_nowait(m)
    await run_until_acked(bridge, broker, 1)
    assert len(ingest.bodies) == 3 and ingest.acks_seen_at_call == [0, 0, 0]
    assert broker.acked == [m.mid] and broker.published == []


async def test_a_batch_that_keeps_failing_transiently_is_never_acknowledged() -> None:
    bridge, broker, ingest, queue = make(failures=[OSError("down")] * 1000)
    queue.put_nowait(message("p-1", {"value": 1, "timestamp": NOW}))
    task = asyncio.create_task(bridge.run())
    while len(ingest.bodies) < 5:
        await asyncio.sleep(0.005)
    task.cancel()  # the process stops (or is killed) while the database is down
    with pytest.raises(asyncio.CancelledError):
        await task
    assert broker.acked == [] and broker.published == []


async def test_a_message_that_breaks_the_ingest_is_refused_alone() -> None:
    bridge, broker, ingest, queue = make(poison="p-bad")
    ok = message("p-1", {"value": 1, "timestamp": NOW})
    bad = message("p-bad", {"value": 2, "timestamp": NOW})
    ok2 = message("p-2", {"value": 3, "timestamp": NOW})
    for m in (ok, bad, ok2):
        queue.put_nowait(m)
    await run_until_acked(bridge, broker, 3)
    assert len(ingest.bodies) == 4  # the batch, then each message alone
    [(topic, notice)] = broker.published
    assert topic == "sm/s1/p-bad/rejected" and notice["status"] == 500
    assert sorted(broker.acked) == sorted([ok.mid, bad.mid, ok2.mid])


async def test_batches_are_bounded_by_messages_and_by_readings() -> None:
    bridge, broker, ingest, queue = make(BridgeOptions(batch_size=2, batch_ms=50))
    for n in range(5):
        queue.put_nowait(message(f"p-{n}", {"value": n, "timestamp": NOW}))
    await run_until_acked(bridge, broker, 5)
    assert [len(b) for b in ingest.bodies] == [2, 2, 1]

    bridge, broker, ingest, queue = make(BridgeOptions(batch_size=100, batch_ms=50))
    half = MAX_BATCH_ITEMS // 2 + 1
    for n in range(3):
        queue.put_nowait(message(f"p-{n}", [{"value": i, "timestamp": NOW} for i in range(half)]))
    await run_until_acked(bridge, broker, 3)
    assert [len(b) for b in ingest.bodies] == [half, half, half]
    assert all(len(b) <= MAX_BATCH_ITEMS for b in ingest.bodies)


async def test_a_batch_waits_at_most_batch_ms_for_more_messages() -> None:
    bridge, broker, ingest, queue = make(BridgeOptions(batch_size=100, batch_ms=30))
    task = asyncio.create_task(bridge.run())
    queue.put_nowait(message("p-1", {"value": 1, "timestamp": NOW}))
    await asyncio.sleep(0.15)
    queue.put_nowait(message("p-2", {"value": 2, "timestamp": NOW}))
    while len(broker.acked) < 2:
        await asyncio.sleep(0.005)
    bridge.stop()
    await asyncio.wait_for(task, 5)
    assert [len(b) for b in ingest.bodies] == [1, 1]


async def test_validation_failed_without_rejected_items_is_isolated_per_message() -> None:
    bridge, broker, ingest, queue = make(failures=[ValidationFailed("odd")])
    m = message("p-1", {"value": 1, "timestamp": NOW})
    queue.put_nowait(m)
    await run_until_acked(bridge, broker, 1)
    [(topic, notice)] = broker.published
    assert notice["status"] == 422 and notice["detail"] == "odd"


def test_production_refuses_the_development_or_a_weak_mqtt_password() -> None:
    from core.config import load_settings
    from core.ingest.mqtt.client import DEV_MQTT_PASSWORD, broker_address, production_problem

    def problem(env: str, **values: object) -> str | None:
        settings = load_settings(env=env, **values)
        return production_problem(settings, broker_address(settings))

    assert problem("development", mqtt_password=DEV_MQTT_PASSWORD) is None
    reason = problem("production", mqtt_password=DEV_MQTT_PASSWORD)
    assert reason is not None and "development default" in reason and DEV_MQTT_PASSWORD not in reason
    assert "shorter" in (problem("production", mqtt_url="mqtt://plant:abc@broker:1883") or "")
    assert problem("production", mqtt_password="Zq8v-Yh3rT6pW9xK2mN5bC7d") is None
    assert problem("production") is None  # no password (e.g. TLS client certificates): nothing to judge


def test_the_bridge_cli_refuses_the_development_password_in_production(admin_database_url: str) -> None:
    from core.ingest.mqtt.client import DEV_MQTT_PASSWORD
    from tests.support.cli import run_cli

    done = run_cli(
        admin_database_url,
        "mqtt-bridge",
        timeout=60,
        SM_ENV="production",
        SM_MQTT_PASSWORD=DEV_MQTT_PASSWORD,
        SM_MQTT_PORT="9",
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "SM_MQTT_PASSWORD is the development default" in done.stderr
    assert DEV_MQTT_PASSWORD not in done.stderr
