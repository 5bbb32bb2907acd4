"""Dead letters on the JetStream bus: a handler failing in a worker lands in the same table, the admin API replays
it to that handler only (through the stream), and a message that keeps killing its workers is dead-lettered after
SM_BUS_MAX_DELIVER deliveries instead of being retried for ever."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from core.events.bus import Handler
from core.events.jetstream import Topology, connect
from core.events.types import AlertRaised, Event
from core.maintenance import agent as scheduling
from core.notifications.agent import handler_name
from core.runtime.bootstrap import bootstrap_worker
from core.runtime.runtime import Runtime
from tests.bus.conftest import bus_settings, dead_letters, effects, sensor_names, serve_api, warmup_and_fault
from tests.support.events import wait_until
from tests.support.nats import NatsServer

pytestmark = pytest.mark.slow


def wrap(runtime: Runtime, name: str, *, fail: bool = False) -> list[Event]:
    """Replace the handler ``name`` of a worker runtime with one that records its events (and fails, or runs the
    original)."""
    bus = runtime.handlers_bus
    assert bus is not None
    [subscription] = [s for s in bus.subscriptions if s.name == name]
    seen: list[Event] = []
    original: Handler = subscription.handler

    async def handler(event: Event) -> None:
        seen.append(event)
        if fail:
            raise RuntimeError("boom (test)")
        await original(event)

    bus.unsubscribe(name)
    bus.subscribe(subscription.event_type, handler, name=name)
    return seen


async def test_a_failing_handler_is_dead_lettered_and_replayed_to_it_only(
    bus_database_url: str, nats: NatsServer, tmp_path: Path
) -> None:
    settings = bus_settings(
        bus_database_url, nats.url, tmp_path, bus_handler_attempts=2, bus_retry_base_s=0.01, bus_retry_max_s=0.02
    )
    [sensor] = sensor_names("dl", 1)
    async with serve_api(settings) as api:
        worker = bootstrap_worker(settings)
        failing = wrap(worker, scheduling.HANDLER_NAME, fail=True)
        notified = wrap(worker, handler_name(AlertRaised.event_type))
        await worker.start()
        try:
            await api.ingest(warmup_and_fault(sensor))
            await api.settle()
            letters = await dead_letters(bus_database_url)
            assert letters and {h for h, _ in letters} == {scheduling.HANDLER_NAME}  # one per AlertRaised
            assert all("boom (test)" in error for _, error in letters)
            assert len(failing) == 2 * len(letters)  # both attempts of each
            assert (await effects(bus_database_url, [sensor]))[sensor][1] == 0  # no work order yet
            alerts_notified = len(notified)
            assert alerts_notified == len(letters)

            worker.handlers_bus.unsubscribe(scheduling.HANDLER_NAME)  # type: ignore[union-attr]
            worker.handlers_bus.subscribe(  # type: ignore[union-attr]
                AlertRaised,
                scheduling.OpenTaskForAlert.from_settings(settings, worker.session_factory),
                name=scheduling.HANDLER_NAME,
            )
            page = (await api.client.get("/api/v1/admin/dead-letters", headers=api.headers)).json()
            assert page["total"] == len(letters)
            for item in page["items"]:
                replay = await api.client.post(f"/api/v1/admin/dead-letters/{item['id']}/replay", headers=api.headers)
                assert replay.status_code in (200, 202), replay.text
            await wait_until(
                lambda: _has_task(bus_database_url, sensor), timeout=30, what="the replayed work order"
            )
            await api.settle()
            assert len(notified) == alerts_notified  # the replay ran the scheduling handler only
        finally:
            await worker.stop()
        found = (await effects(bus_database_url, [sensor]))[sensor]
        assert found[:2] == (1, 1)


async def _has_task(url: str, sensor: str) -> bool:
    return (await effects(url, [sensor]))[sensor][1] == 1


async def test_a_message_that_keeps_killing_workers_is_dead_lettered(
    bus_database_url: str, nats: NatsServer, tmp_path: Path
) -> None:
    settings = bus_settings(bus_database_url, nats.url, tmp_path, bus_max_deliver=1, bus_ack_wait_s=1.0)
    [sensor] = sensor_names("poison", 1)
    topo = Topology.from_settings(settings)
    async with serve_api(settings) as api:
        await api.ingest(warmup_and_fault(sensor)[:5])
        # a "worker" that takes the anomaly agent's message and dies without acknowledging it
        nc = await connect(settings, "sm-test-dying-worker")
        try:
            js = nc.jetstream()
            taken = []
            for partition in range(topo.partitions):
                sub = await js.pull_subscribe_bind(durable=topo.consumer("anomaly", partition), stream=topo.stream)
                with contextlib.suppress(Exception):  # nothing in this partition
                    taken += await sub.fetch(10, timeout=0.5)
            assert len(taken) == 1 and taken[0].metadata.num_delivered == 1
        finally:
            await nc.close()
        await asyncio.sleep(1.5)  # past the ack wait: the next delivery is the second
        worker = bootstrap_worker(settings, ["anomaly"])
        await worker.start()
        try:
            await wait_until(
                lambda: _dead_lettered(bus_database_url), timeout=30, what="the message dead-lettered"
            )
        finally:
            await worker.stop()
        letters = await dead_letters(bus_database_url)
        assert [h for h, _ in letters] == ["anomaly.detect"]
        assert "delivered 2 times" in letters[0][1]
        assert (await effects(bus_database_url, [sensor]))[sensor][2] == 0  # the agent never scored it


async def _dead_lettered(url: str) -> bool:
    return bool(await dead_letters(url))
