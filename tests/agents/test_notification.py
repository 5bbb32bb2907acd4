"""Notification agent and delivery worker on a real database, against a real local HTTP receiver and SMTP stub.

The worker is driven with ``run_once()`` and a fake clock (no sleeps); the receiver verifies every signature with
``core.notifications.signing.verify``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings, to_libpq_url
from core.db.session import unit_of_work
from core.events.bus import EventBus
from core.events.types import (
    AlertRaised,
    AnomalyDetected,
    Event,
    MaintenanceTaskCompleted,
    MaintenanceTaskCreated,
)
from core.notifications import agent as notification
from core.notifications import signing
from core.notifications.destinations import DestinationPolicy
from core.notifications.envelope import stored_payload
from core.notifications.repository import DeliveryRepository
from core.notifications.schemas import DeliveryFilter, WebhookCreate, WebhookUpdate
from core.notifications.service import WebhookService
from core.notifications.worker import DeliveryWorker
from core.observability.metrics import REGISTRY
from core.runtime.handlers import register_handlers
from tests.support.db import private_database, session_factory_for
from tests.support.notifications import (
    LOOPBACK_ALLOWED,
    FakeClock,
    FakeDns,
    Receiver,
    smtp_stub,
    tls_pair,
    webhook_receiver,
)
from tests.support.runtime import runtime_for

SECRET = "test-webhook-secret-0123456789"


@pytest.fixture(scope="module")
def notify_database_url(admin_database_url: str) -> Iterator[str]:
    """A database of this module's own: deliveries of other tests' events never show up here."""
    with private_database(admin_database_url, "sm_notify") as url:
        yield url


@pytest.fixture
def notify_settings(settings: Settings, notify_database_url: str) -> Settings:
    return settings.model_copy(
        update={
            "database_url": notify_database_url,
            "webhook_signing_secret": SecretStr(SECRET),
            "notification_max_attempts": 5,
            "notification_retry_base_s": 10.0,
            "notification_retry_max_s": 300.0,
            "notification_http_timeout_s": 5.0,
            "smtp_host": None,
            "notification_email_to": [],
            **LOOPBACK_ALLOWED,  # the receiver is on 127.0.0.1: allowed explicitly (refused by default)
        }
    )


@pytest.fixture
async def factory(notify_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    conn = await asyncpg.connect(to_libpq_url(notify_settings.database_url))
    try:
        await conn.execute("TRUNCATE webhooks, notification_deliveries RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    async with session_factory_for(notify_settings) as factory:
        yield factory


@pytest.fixture
def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    with webhook_receiver(SECRET, now=clock.timestamp) as state:
        yield state


#: The destination policy of subscriptions created here (http, and 127.0.0.1 allowed: the local receiver).
POLICY = DestinationPolicy(require_https=False, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


async def add_webhook(
    factory: async_sessionmaker[AsyncSession],
    name: str,
    target: str,
    events: list[str],
    active: bool = True,
    policy: DestinationPolicy = POLICY,
) -> int:
    async with unit_of_work(factory) as session:
        row = await WebhookService(session, policy=policy).create(
            WebhookCreate(name=name, target=target, event_types=events, is_active=active)  # type: ignore[arg-type]
        )
        return row.id


async def deliveries(factory: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with unit_of_work(factory) as session:
        rows, _ = await WebhookService(session).deliveries(DeliveryFilter(), limit=1000)
        return [
            {
                "id": r.id,
                "webhook_id": r.webhook_id,
                "channel": r.channel,
                "target": r.target,
                "event": r.event,
                "status": r.status,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "delivered_at": r.delivered_at,
                "payload": r.payload,
            }
            for r in sorted(rows, key=lambda r: r.id)
        ]


def alert(severity: str = "high") -> AlertRaised:
    return AlertRaised(alert_id=9, sensor_id="pump-7-vib", rule="anomaly_score", severity=severity)  # type: ignore[arg-type]


def count(result: str, channel: str = "webhook") -> float:
    value = REGISTRY.get_sample_value(
        "sm_notifications_deliveries_total", {"channel": channel, "result": result}
    )
    return value or 0.0


async def enqueue(settings: Settings, factory: async_sessionmaker[AsyncSession], event: Event) -> None:
    await notification.NotificationEnqueuer(settings, factory)(event)


async def test_event_becomes_a_signed_delivery(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver, clock: FakeClock
) -> None:
    webhook_id = await add_webhook(factory, "ops", receiver.url, ["AlertRaised"])
    event = alert()
    delivered_before = count("delivered")

    await enqueue(notify_settings, factory, event)
    [row] = await deliveries(factory)
    assert (row["webhook_id"], row["status"], row["attempts"], row["event"]) == (
        webhook_id,
        "pending",
        0,
        "AlertRaised",
    )
    assert receiver.requests == []  # nothing is sent by the handler

    worker = DeliveryWorker(notify_settings, factory, clock=clock)
    try:
        outcomes = await worker.run_once()
    finally:
        await worker.stop()
    assert [(o.result, o.attempts) for o in outcomes] == [("delivered", 1)]
    [request] = receiver.accepted
    assert request.path == "/hooks/sm"
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["x-sm-event"] == "AlertRaised"
    assert headers["x-sm-delivery"] == str(row["id"])
    assert headers["x-sm-timestamp"] == str(int(clock.timestamp()))
    assert headers["x-sm-signature"].startswith(f"t={int(clock.timestamp())},v1=")
    assert signing.verify(SECRET, request.body, headers["x-sm-signature"], now=clock.timestamp)
    body = request.json
    assert body["event_type"] == "AlertRaised"
    assert body["event_id"] == str(event.event_id)
    assert body["data"] == {
        "alert_id": 9,
        "sensor_id": "pump-7-vib",
        "rule": "anomaly_score",
        "severity": "high",
        "incident_id": None,
        "task_id": None,
        "asset_id": None,
        "event_opened_at": None,
        "backfill": False,
    }

    [row] = await deliveries(factory)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 1, None)
    assert row["payload"]["last_status"] == 200
    assert row["delivered_at"] is not None
    assert count("delivered") == delivered_before + 1
    assert REGISTRY.get_sample_value("sm_notifications_pending_rows") == 0


async def test_receiver_failing_twice_is_retried_with_backoff(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver, clock: FakeClock
) -> None:
    receiver.fail_times = 2
    await add_webhook(factory, "flaky", receiver.url, [])
    await enqueue(notify_settings, factory, alert())
    worker = DeliveryWorker(notify_settings, factory, clock=clock)
    try:
        assert [o.result for o in await worker.run_once()] == ["retry"]
        assert await worker.run_once() == []  # not due yet: backoff 10 s
        clock.advance(10)
        assert [o.result for o in await worker.run_once()] == ["retry"]
        clock.advance(19)
        assert await worker.run_once() == []  # second backoff is 20 s
        assert REGISTRY.get_sample_value("sm_notifications_pending_rows") == 1
        clock.advance(1)
        assert [(o.result, o.attempts) for o in await worker.run_once()] == [("delivered", 3)]
    finally:
        await worker.stop()
    [row] = await deliveries(factory)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 3, None)
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    # the same delivery id on every attempt (receivers de-duplicate on it)
    assert {r.headers["X-SM-Delivery"] for r in receiver.requests} == {str(row["id"])}


async def test_receiver_failing_always_ends_failed_with_last_error(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver, clock: FakeClock
) -> None:
    receiver.fail_always = True
    settings = notify_settings.model_copy(update={"notification_max_attempts": 3})
    await add_webhook(factory, "down", receiver.url, ["AlertRaised"])
    await enqueue(settings, factory, alert())
    failed_before = count("failed")
    worker = DeliveryWorker(settings, factory, clock=clock)
    results = []
    try:
        for _ in range(6):
            results += [o.result for o in await worker.run_once()]
            clock.advance(3600)
    finally:
        await worker.stop()
    assert results == ["retry", "retry", "failed"]
    [row] = await deliveries(factory)
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert row["last_error"] == "http_500"  # the classification, never the reply body
    assert row["payload"]["last_status"] == 500
    assert row["delivered_at"] is None
    assert len(receiver.requests) == 3
    assert count("failed") == failed_before + 1


async def test_unreachable_target_records_the_connection_error(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], clock: FakeClock, unused_port: int
) -> None:
    await add_webhook(factory, "nobody", f"http://127.0.0.1:{unused_port}/x", [])
    await enqueue(notify_settings, factory, alert())
    worker = DeliveryWorker(notify_settings, factory, clock=clock)
    try:
        [outcome] = await worker.run_once()
    finally:
        await worker.stop()
    assert outcome.result == "retry"
    [row] = await deliveries(factory)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "connect_error"
    assert row["payload"]["last_status"] is None


async def test_duplicate_event_gives_one_delivery(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    await add_webhook(factory, "ops", receiver.url, [])
    event = alert()
    await enqueue(notify_settings, factory, event)
    await enqueue(notify_settings, factory, event)  # at-least-once redelivery
    await asyncio.gather(*(enqueue(notify_settings, factory, event) for _ in range(4)))  # concurrent ones
    rows = await deliveries(factory)
    assert len(rows) == 1
    assert rows[0]["payload"]["event_id"] == str(event.event_id)


async def test_inactive_and_non_matching_subscriptions_get_nothing(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    await add_webhook(factory, "inactive-all", receiver.url, [], active=False)
    await add_webhook(factory, "tasks-only", receiver.url, ["MaintenanceTaskCreated"])
    everything = await add_webhook(factory, "everything", receiver.url, [])
    alerts = await add_webhook(factory, "alerts", receiver.url, ["AlertRaised", "MaintenanceTaskCompleted"])

    await enqueue(notify_settings, factory, alert())
    rows = await deliveries(factory)
    assert sorted(r["webhook_id"] for r in rows) == sorted([everything, alerts])
    assert all(r["channel"] == "webhook" for r in rows)  # no SMTP configured: no e-mail rows

    completed = MaintenanceTaskCompleted(
        task_id=1, log_id=2, outcome="fault_confirmed", completed_at=datetime.now(UTC)
    )
    await enqueue(notify_settings, factory, completed)
    rows = [r for r in await deliveries(factory) if r["event"] == "MaintenanceTaskCompleted"]
    assert sorted(r["webhook_id"] for r in rows) == sorted([everything, alerts])


async def test_email_over_smtp(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with smtp_stub() as stub:
        settings = notify_settings.model_copy(
            update={
                "smtp_host": stub.host,
                "smtp_port": stub.port,
                "smtp_from": "sm@example.com",
                "notification_email_to": ["ops@example.com", "lead@example.com"],
            }
        )
        event = MaintenanceTaskCreated(task_id=5, asset_id=1, sensor_id="pump-7-vib", priority="high")
        await enqueue(settings, factory, event)
        await enqueue(settings, factory, event)  # idempotent for e-mail too
        rows = await deliveries(factory)
        assert sorted((r["channel"], r["target"], r["status"]) for r in rows) == [
            ("email", "lead@example.com", "pending"),
            ("email", "ops@example.com", "pending"),
        ]
        worker = DeliveryWorker(settings, factory, clock=clock)
        try:
            outcomes = await worker.run_once()
        finally:
            await worker.stop()
        assert sorted((o.channel, o.result) for o in outcomes) == [("email", "delivered")] * 2
        assert sorted(rcpt for _, [rcpt], _ in stub.messages) == ["lead@example.com", "ops@example.com"]
        sender, _, message = stub.messages[0]
        assert sender == "sm@example.com"
        assert str(message["Subject"]).strip().startswith("[Smart Maintenance] MaintenanceTaskCreated")
        assert message["X-SM-Event"] == "MaintenanceTaskCreated"
        body = json.loads(message.get_payload(decode=True))
        assert body["event_id"] == str(event.event_id)
        assert body["data"]["task_id"] == 5
    assert {r["status"] for r in await deliveries(factory)} == {"delivered"}


async def test_registry_subscribes_the_notification_handlers(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> None:
    bus = EventBus(factory)
    register_handlers(bus, runtime_for(notify_settings, factory))
    names = {s.name for s in bus.subscriptions}
    assert {
        "notification.enqueue.AlertRaised",
        "notification.enqueue.MaintenanceTaskCreated",
        "notification.enqueue.MaintenanceTaskCompleted",
        "notification.enqueue.AnomalyDetected",
    } <= names
    assert notification.handler_name("AlertRaised") in names


# --- batched enqueueing (coalesced runs) and the subscription cache ----------------------------------------------
def anomaly(i: int) -> AnomalyDetected:
    return AnomalyDetected(
        anomaly_id=i,
        sensor_id=f"s-{i % 3}",
        timestamp=datetime(2026, 11, 1, 12, i % 60, tzinfo=UTC),
        value=90.0 + i,
        score=7.5,
        method="robust_z",
    )


def comparable(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows without their ids (the order of ids differs: one run writes webhooks, then e-mails)."""
    return sorted(
        (r["webhook_id"] or 0, r["channel"], r["target"], r["event"], r["status"], json.dumps(r["payload"]))
        for r in rows
    )


async def test_a_batched_run_enqueues_what_one_by_one_enqueueing_does(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    settings = notify_settings.model_copy(
        update={"smtp_host": "127.0.0.1", "notification_email_to": ["ops@example.com", "lead@example.com"]}
    )
    await add_webhook(factory, "anomalies", receiver.url, ["AnomalyDetected"])
    await add_webhook(factory, "everything", receiver.url, [])
    await add_webhook(factory, "alerts", receiver.url, ["AlertRaised"])
    await add_webhook(factory, "inactive", receiver.url, [], active=False)
    events: list[Event] = [anomaly(i) for i in range(12)]
    events += [alert(), MaintenanceTaskCreated(task_id=5, asset_id=1, sensor_id="s-1", priority="high")]
    events += [events[3], events[12]]  # the same events twice in the run

    # reference: the per-event statements (the path before batching), one event at a time
    for event in events:
        async with unit_of_work(factory) as session:
            repo = DeliveryRepository(session)
            payload = stored_payload(event)
            await repo.lock_event(str(event.event_id))
            await repo.enqueue_webhooks(event=event.event_type, event_id=str(event.event_id), payload=payload)
            await repo.enqueue_emails(
                addresses=["ops@example.com", "lead@example.com"],
                event=event.event_type,
                event_id=str(event.event_id),
                payload=payload,
            )
    one_by_one = await deliveries(factory)
    async with unit_of_work(factory) as session:
        await session.execute(text("TRUNCATE notification_deliveries"))

    ids = await notification.NotificationEnqueuer(settings, factory).enqueue(events)
    batched = await deliveries(factory)
    assert comparable(batched) == comparable(one_by_one)
    # 12 anomalies x 2 webhooks, alert x 2, task x 1; every event x 2 e-mails
    assert len(batched) == 12 * 2 + 2 + 1 + 14 * 2 == len(ids)
    assert sorted(ids) == [r["id"] for r in batched]
    # a redelivery of the whole run enqueues nothing
    assert await notification.NotificationEnqueuer(settings, factory).enqueue(events) == []


async def test_concurrent_duplicate_deliveries_are_coalesced_and_enqueue_once(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    anomalies_hook = await add_webhook(factory, "anomalies", receiver.url, ["AnomalyDetected"])
    everything = await add_webhook(factory, "everything", receiver.url, [])
    handler = notification.NotificationEnqueuer(notify_settings, factory)
    events = [anomaly(i) for i in range(20)]
    # every event delivered twice, all at once (two relays, or a redelivery beside the first delivery)
    await asyncio.gather(*(handler(e) for e in events + events))
    coalescer = handler.coalescers["AnomalyDetected"]
    assert coalescer.largest_run > 1 and coalescer.runs < 40  # deliveries shared runs
    rows = await deliveries(factory)
    assert sorted((r["payload"]["event_id"], r["webhook_id"]) for r in rows) == sorted(
        (str(e.event_id), hook) for e in events for hook in (anomalies_hook, everything)
    )
    await asyncio.gather(*(handler(e) for e in events[:5]))  # later redeliveries
    assert len(await deliveries(factory)) == len(rows)


async def test_a_failing_event_in_a_run_fails_only_its_own_delivery(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    await add_webhook(factory, "anomalies", receiver.url, ["AnomalyDetected"])
    handler = notification.NotificationEnqueuer(notify_settings, factory)
    bad = anomaly(1)
    bad.__dict__["value"] = float("nan")  # jsonb rejects NaN: this event's INSERT fails
    good = [anomaly(i) for i in range(2, 6)]
    results = await asyncio.gather(*(handler(e) for e in [good[0], bad, *good[1:]]), return_exceptions=True)
    assert [isinstance(r, Exception) for r in results] == [False, True, False, False, False]
    rows = await deliveries(factory)
    assert sorted(r["payload"]["event_id"] for r in rows) == sorted(str(e.event_id) for e in good)


async def test_unwanted_event_types_cost_no_query_and_a_new_subscription_is_seen_at_once(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    await add_webhook(factory, "alerts", receiver.url, ["AlertRaised"])
    handler = notification.NotificationEnqueuer(notify_settings, factory, subscriptions_ttl_s=3600)
    for i in range(10):
        await handler(anomaly(i))
    assert handler.subscriptions.loads == 1 and handler.skipped == 10
    assert "AnomalyDetected" not in handler.coalescers  # no run, no transaction
    assert await deliveries(factory) == []
    await handler(alert())  # a wanted type: enqueued
    assert [r["event"] for r in await deliveries(factory)] == ["AlertRaised"]
    # a subscription created through the service invalidates the cache when its transaction commits
    hook = await add_webhook(factory, "anomalies", receiver.url, ["AnomalyDetected"])
    await handler(anomaly(42))
    assert handler.subscriptions.loads == 2
    assert [r["webhook_id"] for r in await deliveries(factory) if r["event"] == "AnomalyDetected"] == [hook]
    # and deactivating it through the service stops them again
    async with unit_of_work(factory) as session:
        await WebhookService(session).update(hook, WebhookUpdate(is_active=False))
    await handler(anomaly(43))
    assert handler.skipped == 11


# --- the destination policy at send time (core/notifications/destinations.py) -----------------------------------
async def test_a_target_the_policy_no_longer_allows_is_refused_at_send_time(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver, clock: FakeClock
) -> None:
    await add_webhook(factory, "loopback", receiver.url, [])
    await enqueue(notify_settings, factory, alert())
    strict = notify_settings.model_copy(update={"webhook_allowed_hosts": [], "webhook_allow_private": False})
    worker = DeliveryWorker(strict, factory, clock=clock)
    try:
        [outcome] = await worker.run_once()
    finally:
        await worker.stop()
    assert (outcome.result, outcome.error, outcome.status) == ("retry", "refused_destination:loopback", None)
    [row] = await deliveries(factory)
    assert (row["status"], row["last_error"]) == ("pending", "refused_destination:loopback")
    assert receiver.requests == []  # never connected


async def test_the_worker_connects_to_the_vetted_address_and_keeps_the_host_name(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], receiver: Receiver, clock: FakeClock
) -> None:
    """The name is resolved by the worker's resolver and the connection goes to that address (the system resolver
    knows no ``hooks.pinned.test``), with ``Host`` still naming the target."""
    port = receiver.url.split(":")[2].split("/")[0]
    dns = FakeDns({"hooks.pinned.test": ["127.0.0.1"]})
    settings = notify_settings.model_copy(update={"webhook_allowed_hosts": ["hooks.pinned.test"]})
    policy = DestinationPolicy.from_settings(settings, resolver=dns)
    await add_webhook(factory, "pinned", f"http://hooks.pinned.test:{port}/hooks/sm", [], policy=policy)
    await enqueue(settings, factory, alert())
    worker = DeliveryWorker(settings, factory, clock=clock, resolver=dns)
    try:
        [outcome] = await worker.run_once()
    finally:
        await worker.stop()
    assert (outcome.result, outcome.status) == ("delivered", 200)
    assert dns.lookups == ["hooks.pinned.test"] * 2  # at creation, again at send time
    [request] = receiver.accepted
    assert request.headers["Host"] == f"hooks.pinned.test:{port}"


async def test_a_name_that_no_longer_resolves_is_a_dns_error(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    dns = FakeDns({"hooks.gone.test": ["127.0.0.1"]})
    settings = notify_settings.model_copy(update={"webhook_allowed_hosts": ["hooks.gone.test"]})
    policy = DestinationPolicy.from_settings(settings, resolver=dns)
    await add_webhook(factory, "gone", "http://hooks.gone.test:9/x", [], policy=policy)
    await enqueue(settings, factory, alert())
    dns.answers.clear()
    worker = DeliveryWorker(settings, factory, clock=clock, resolver=dns)
    try:
        [outcome] = await worker.run_once()
    finally:
        await worker.stop()
    assert (outcome.result, outcome.error) == ("retry", "dns_error")


async def test_https_to_a_pinned_address_verifies_the_certificate_for_the_name(
    notify_settings: Settings, factory: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    """TLS with the connection pinned to 127.0.0.1: the SNI and the certificate check use the target's name (a
    certificate for another name fails as ``tls_error`` and nothing is received)."""
    tls = tls_pair("hooks.tls.test")
    dns = FakeDns({"hooks.tls.test": ["127.0.0.1"], "other.tls.test": ["127.0.0.1"]})
    settings = notify_settings.model_copy(
        update={"webhook_allowed_hosts": ["hooks.tls.test", "other.tls.test"], "webhook_require_https": True}
    )
    policy = DestinationPolicy.from_settings(settings, resolver=dns)
    with webhook_receiver(SECRET, tls=tls, now=clock.timestamp) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        good = await add_webhook(factory, "tls", f"https://hooks.tls.test:{port}/hooks/sm", [], policy=policy)
        await add_webhook(factory, "wrong-name", f"https://other.tls.test:{port}/hooks/sm", [], policy=policy)
        await enqueue(settings, factory, alert())
        client = httpx.AsyncClient(verify=tls.client, trust_env=False, follow_redirects=False)
        worker = DeliveryWorker(settings, factory, clock=clock, http_client=client, resolver=dns)
        try:
            outcomes = await worker.run_once()
        finally:
            await worker.stop()
            await client.aclose()
    rows = {r["webhook_id"]: r for r in await deliveries(factory)}
    by_id = {o.delivery_id: o for o in outcomes}
    good_row = next(r for r in rows.values() if r["webhook_id"] == good)
    bad_row = next(r for r in rows.values() if r["webhook_id"] != good)
    assert (by_id[good_row["id"]].result, by_id[good_row["id"]].status) == ("delivered", 200)
    assert (by_id[bad_row["id"]].result, bad_row["last_error"]) == ("retry", "tls_error")
    [request] = receiver.requests
    assert request.status == 200 and request.headers["Host"] == f"hooks.tls.test:{port}"
    assert sorted(name or "" for name in tls.sni) == ["hooks.tls.test", "other.tls.test"]
