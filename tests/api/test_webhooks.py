"""Webhook subscriptions and deliveries through HTTP: CRUD with validation and scopes, and an event delivered by
the API's own worker to a local receiver that verifies the signature."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from apps.api.deps import app_runtime
from apps.api.main import RuntimeOverrides, create_app
from core.config import Settings
from core.db.session import unit_of_work
from core.events.outbox import add_to_outbox
from core.events.relay import after_commit
from core.events.types import AlertRaised
from tests.api.auth_support import Key, bootstrap_headers, create_key
from tests.api.conftest import serve
from tests.support.events import wait_until
from tests.support.notifications import FakeDns, allow_loopback, delete_test_webhooks, webhook_receiver

BASE = "/api/v1/webhooks"
#: A public address the example names resolve to when a subscription is created (checked by the policy); the
#: app's worker gets a resolver that knows no name, so nothing is ever sent off this machine.
PUBLIC = "93.184.215.14"
EXAMPLE_DNS = {"hooks.example.com": [PUBLIC], "x.example.com": [PUBLIC]}


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    admin: dict[str, str]
    settings: Settings


@pytest.fixture
def webhook_settings(settings: Settings) -> Settings:
    # the receiver of these tests is on 127.0.0.1: allowed explicitly (the default policy refuses loopback)
    return allow_loopback(
        settings, notification_poll_interval_s=0.05, notification_retry_base_s=0.01, smtp_host=None
    )


@pytest.fixture
async def running(webhook_settings: Settings) -> AsyncIterator[Running]:
    app = create_app(webhook_settings, overrides=RuntimeOverrides(webhook_resolver=FakeDns(EXAMPLE_DNS)))
    async with serve(app) as client:
        worker = app_runtime(app).notification_worker
        assert worker is not None
        worker.resolver = FakeDns()  # the example names are never connected to
        r = Running(app, client, bootstrap_headers(webhook_settings), webhook_settings)
        try:
            yield r
        finally:
            await delete_test_webhooks(client, r.admin, "t-")


def unique(prefix: str = "t-hook") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_webhook_crud_and_validation(running: Running) -> None:
    client, admin = running.client, running.admin
    name = unique()
    created = await client.post(
        BASE,
        json={"name": name, "target": "https://hooks.example.com/sm", "event_types": ["AlertRaised"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["name"] == name and hook["is_active"] is True and hook["event_types"] == ["AlertRaised"]
    assert hook["target"] == "https://hooks.example.com/sm"

    duplicate = await client.post(
        BASE, json={"name": name, "target": "https://x.example.com/"}, headers=admin
    )
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"].startswith("application/problem+json")

    for bad in (
        {"name": unique(), "target": "ftp://example.com/x"},
        {"name": unique(), "target": "not a url"},
        {"name": unique(), "target": "https://x.example.com/", "event_types": ["NoSuchEvent"]},
        {"name": unique(), "target": "https://x.example.com/", "event_types": ["ReadingsIngested"]},
        {"name": "", "target": "https://x.example.com/"},
        {"name": unique(), "target": "https://x.example.com/", "secret": "x"},
    ):
        response = await client.post(BASE, json=bad, headers=admin)
        assert response.status_code == 422, (bad, response.text)

    got = await client.get(f"{BASE}/{hook['id']}", headers=admin)
    assert got.status_code == 200 and got.json() == hook
    listed = await client.get(BASE, headers=admin)
    assert hook in listed.json()["items"]

    patched = await client.patch(
        f"{BASE}/{hook['id']}",
        json={"is_active": False, "event_types": ["MaintenanceTaskCreated", "MaintenanceTaskCompleted"]},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["is_active"] is False
    assert patched.json()["event_types"] == ["MaintenanceTaskCreated", "MaintenanceTaskCompleted"]
    bad_patch = await client.patch(f"{BASE}/{hook['id']}", json={"event_types": ["Nope"]}, headers=admin)
    assert bad_patch.status_code == 422

    deleted = await client.delete(f"{BASE}/{hook['id']}", headers=admin)
    assert deleted.status_code == 200 and deleted.json()["id"] == hook["id"]
    for response in (
        await client.get(f"{BASE}/{hook['id']}", headers=admin),
        await client.delete(f"{BASE}/{hook['id']}", headers=admin),
        await client.patch(f"{BASE}/{hook['id']}", json={"is_active": True}, headers=admin),
        await client.get(f"{BASE}/{hook['id']}/deliveries", headers=admin),
    ):
        assert response.status_code == 404


async def test_webhook_scopes(running: Running) -> None:
    client = running.client
    reader: Key = await create_key(client, running.settings, "read")
    ingester: Key = await create_key(client, running.settings, "ingest")
    body = {"name": unique(), "target": "https://x.example.com/"}

    assert (await client.post(BASE, json=body)).status_code == 401
    assert (await client.post(BASE, json=body, headers=reader.headers)).status_code == 403
    assert (await client.get(BASE, headers=reader.headers)).status_code == 403
    created = await client.post(BASE, json=body, headers=running.admin)
    assert created.status_code == 201
    hook_id = created.json()["id"]
    assert (await client.get(f"{BASE}/{hook_id}", headers=reader.headers)).status_code == 403
    assert (await client.delete(f"{BASE}/{hook_id}", headers=reader.headers)).status_code == 403

    # deliveries are readable with the read scope
    assert (await client.get(f"{BASE}/{hook_id}/deliveries", headers=reader.headers)).status_code == 200
    assert (await client.get("/api/v1/notifications/deliveries", headers=reader.headers)).status_code == 200
    assert (await client.get("/api/v1/notifications/deliveries", headers=ingester.headers)).status_code == 403
    assert (await client.get("/api/v1/notifications/deliveries")).status_code == 401
    bad = await client.get(
        "/api/v1/notifications/deliveries", params={"status": "lost"}, headers=reader.headers
    )
    assert bad.status_code == 422


async def test_event_is_delivered_signed_and_visible(running: Running) -> None:
    client, admin, app = running.client, running.admin, running.app
    secret = running.settings.webhook_signing_secret.get_secret_value()
    with webhook_receiver(secret, fail_times=1) as receiver:
        created = await client.post(
            BASE,
            json={"name": unique(), "target": receiver.url, "event_types": ["AlertRaised"]},
            headers=admin,
        )
        assert created.status_code == 201
        hook_id = created.json()["id"]
        inactive = await client.post(
            BASE, json={"name": unique(), "target": receiver.url, "is_active": False}, headers=admin
        )
        assert inactive.status_code == 201

        event = AlertRaised(
            alert_id=123456, sensor_id="t-webhook-sensor", rule="anomaly_score", severity="low"
        )
        async with unit_of_work(app_runtime(app).session_factory) as session:
            await add_to_outbox(session, event)
        await after_commit(app_runtime(app))

        async def delivered() -> bool:
            response = await client.get(
                f"{BASE}/{hook_id}/deliveries", params={"status": "delivered"}, headers=admin
            )
            return response.json()["total"] == 1

        await wait_until(delivered, timeout=15, what="the webhook delivery")  # one retry after a 500

        [accepted] = receiver.accepted
        assert accepted.json["event_id"] == str(event.event_id)
        assert accepted.headers["X-SM-Event"] == "AlertRaised"
        assert [r.status for r in receiver.requests] == [500, 200]

        page = (await client.get(f"{BASE}/{hook_id}/deliveries", headers=admin)).json()
        [item] = page["items"]
        assert item["status"] == "delivered" and item["attempts"] == 2
        assert item["event_id"] == str(event.event_id)
        assert item["body"]["data"]["alert_id"] == 123456
        assert item["last_error"] is None
        assert accepted.headers["X-SM-Delivery"] == str(item["id"])

        everything = await client.get(
            "/api/v1/notifications/deliveries", params={"event": "AlertRaised", "limit": 1000}, headers=admin
        )
        ids = [d["id"] for d in everything.json()["items"] if d["event_id"] == str(event.event_id)]
        assert ids == [item["id"]]  # the inactive subscription got nothing
        metrics = await client.get("/metrics")
        assert 'sm_notifications_deliveries_total{channel="webhook",result="delivered"}' in metrics.text
        assert "sm_notifications_pending_rows" in metrics.text
