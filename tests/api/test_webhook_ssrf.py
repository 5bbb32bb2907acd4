"""Webhook SSRF through HTTP: non-public targets refused at creation (422 problem+json naming the rule), the allow
settings, DNS rebinding refused at send time, reply bodies never recorded, delivery targets hidden from read keys.

Everything is sent to 127.0.0.1 only: public names resolve through a ``FakeDns`` and the subscriptions that would
point elsewhere are created inactive and deleted at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from apps.api.deps import app_runtime
from apps.api.main import RuntimeOverrides, create_app
from core.config import Settings
from core.db.session import unit_of_work
from core.events.outbox import add_to_outbox
from core.events.relay import after_commit
from core.events.types import AlertRaised
from core.notifications.destinations import system_resolver
from core.notifications.repository import DeliveryRepository
from tests.api.auth_support import bootstrap_headers, create_key
from tests.api.conftest import serve
from tests.support.events import wait_until
from tests.support.notifications import FakeDns, allow_loopback, delete_test_webhooks, webhook_receiver

BASE = "/api/v1/webhooks"
DELIVERIES = "/api/v1/notifications/deliveries"
PUBLIC = "93.184.215.14"
TOKEN = "tok-3f9c1b7e5a"  # a secret in the target's query: never echoed in errors, never shown to read keys


@dataclass
class Running:
    app: FastAPI
    client: httpx.AsyncClient
    admin: dict[str, str]
    settings: Settings
    dns: FakeDns


@asynccontextmanager
async def running(settings: Settings, dns: FakeDns | None = None) -> AsyncIterator[Running]:
    """The app on ``settings`` with ``dns`` as the resolver of its destination checks (API and worker)."""
    # a failed attempt is retried an hour later: each test sees exactly one attempt per delivery
    settings = settings.model_copy(
        update={"notification_poll_interval_s": 0.05, "notification_retry_base_s": 3600.0}
    )
    dns = dns or FakeDns({"hooks.example.com": [PUBLIC]}, fallback=system_resolver)
    app = create_app(settings, overrides=RuntimeOverrides(webhook_resolver=dns))
    async with serve(app) as client:
        r = Running(app, client, bootstrap_headers(settings), settings, dns)
        try:
            yield r
        finally:
            await delete_test_webhooks(client, r.admin, "t-ssrf-")


def unique() -> str:
    return f"t-ssrf-{uuid.uuid4().hex[:8]}"


async def create(r: Running, target: str, **fields: Any) -> httpx.Response:
    body = {"name": unique(), "target": target, "event_types": ["AlertRaised"], **fields}
    return await r.client.post(BASE, json=body, headers=r.admin)


async def emit_alert(app: FastAPI) -> AlertRaised:
    event = AlertRaised(alert_id=424242, sensor_id="t-ssrf-sensor", rule="anomaly_score", severity="low")
    async with unit_of_work(app_runtime(app).session_factory) as session:
        await add_to_outbox(session, event)
    await after_commit(app_runtime(app))
    return event


async def deliveries_of(r: Running, event: AlertRaised, headers: dict[str, str]) -> list[dict[str, Any]]:
    page = await r.client.get(DELIVERIES, params={"event": "AlertRaised", "limit": 1000}, headers=headers)
    assert page.status_code == 200, page.text
    return [d for d in page.json()["items"] if d["event_id"] == str(event.event_id)]


async def wait_attempted(r: Running, event: AlertRaised, webhook_id: int) -> dict[str, Any]:
    """The delivery of ``event`` to ``webhook_id`` once its first attempt is recorded."""
    found: list[dict[str, Any]] = []

    async def attempted() -> bool:
        found[:] = [
            d
            for d in await deliveries_of(r, event, r.admin)
            if d["webhook_id"] == webhook_id and d["attempts"] >= 1
        ]
        return bool(found)

    await wait_until(attempted, timeout=20, what="the first delivery attempt")
    return found[0]


def assert_refused(response: httpx.Response, reason: str, target: str) -> None:
    assert response.status_code == 422, (target, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), target
    problem = response.json()
    assert problem["reason"] == reason, (target, problem)
    assert TOKEN not in response.text and "/hook" not in problem["detail"], (
        target,
        problem,
    )  # URL not echoed
    if reason not in {"credentials", "scheme", "unresolvable"}:
        assert (
            "SM_WEBHOOK_ALLOW_PRIVATE" in problem["detail"]
            and "SM_WEBHOOK_ALLOWED_HOSTS" in problem["detail"]
        )


REFUSED: list[tuple[str, str]] = [
    ("http://169.254.169.254/latest/meta-data/", "link_local"),
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://0x7f000001/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),
    ("http://127.1/hook", "loopback"),
    ("http://0177.0.0.1/hook", "loopback"),
    ("http://100.64.0.1/hook", "shared"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[fe80::1]/hook", "link_local"),
    ("http://[fc00::1]/hook", "private"),
    ("http://[64:ff9b::a00:1]/hook", "private"),  # NAT64 of 10.0.0.1
    ("http://[2002:a9fe:a9fe::1]/hook", "link_local"),  # 6to4 of 169.254.169.254
    ("https://198.51.100.7/hook", "documentation"),
    ("http://mixed.example.com/hook", "private"),  # one public and one private address: refused
    ("http://nowhere.example.com/hook", "unresolvable"),
    ("http://user:pass@hooks.example.com/hook", "credentials"),
]


async def test_non_public_targets_are_refused_at_creation(settings: Settings) -> None:
    dns = FakeDns(
        {"hooks.example.com": [PUBLIC], "mixed.example.com": [PUBLIC, "10.1.2.3"]}, fallback=system_resolver
    )
    async with running(settings, dns) as r:
        for target, reason in REFUSED:
            assert_refused(await create(r, f"{target}?token={TOKEN}"), reason, target)
        listed = (await r.client.get(BASE, params={"limit": 1000}, headers=r.admin)).json()["items"]
        assert not [h for h in listed if h["name"].startswith("t-ssrf-")]  # nothing was stored

        # a public target is accepted, and cannot be re-targeted at a private one
        created = await create(r, "http://hooks.example.com/hook", is_active=False)
        assert created.status_code == 201, created.text
        hook = created.json()
        patched = await r.client.patch(
            f"{BASE}/{hook['id']}", json={"target": "http://169.254.169.254/"}, headers=r.admin
        )
        assert_refused(patched, "link_local", "PATCH 169.254.169.254")
        got = await r.client.get(f"{BASE}/{hook['id']}", headers=r.admin)
        assert got.json()["target"] == "http://hooks.example.com/hook"


async def test_http_is_refused_when_https_is_required(settings: Settings) -> None:
    async with running(settings.model_copy(update={"webhook_require_https": True})) as r:
        assert_refused(await create(r, "http://hooks.example.com/hook"), "scheme", "http")
        created = await create(r, "https://hooks.example.com/hook", is_active=False)
        assert created.status_code == 201, created.text


async def test_allowed_hosts_and_allow_private_let_non_public_targets_through(settings: Settings) -> None:
    allowed = settings.model_copy(
        update={"webhook_allowed_hosts": ["10.0.0.0/8", "localhost", "fc00::1", "intranet.plant.test"]}
    )
    dns = FakeDns({"intranet.plant.test": ["192.168.7.7"]}, fallback=system_resolver)
    async with running(allowed, dns) as r:
        for target in (
            "http://10.0.0.1/hook",
            "http://10.200.3.4:8443/hook",
            "http://localhost:9/hook",
            "http://[fc00::1]/hook",
            "http://intranet.plant.test/hook",  # allowed by name, whatever it resolves to
        ):
            response = await create(r, target, is_active=False)  # inactive: nothing is ever sent there
            assert response.status_code == 201, (target, response.text)
        for target, reason in (
            ("http://192.168.1.1/hook", "private"),
            ("http://169.254.169.254/", "link_local"),
            ("http://[fc00::2]/hook", "private"),
            ("http://user:pass@10.0.0.1/hook", "credentials"),  # credentials stay refused
        ):
            assert_refused(await create(r, target, is_active=False), reason, target)

    async with running(settings.model_copy(update={"webhook_allow_private": True})) as r:
        for target in (
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/",
            "http://[::1]/",
            "http://0x7f000001/",
        ):
            response = await create(r, target, is_active=False)
            assert response.status_code == 201, (target, response.text)
        assert_refused(await create(r, "http://u:p@127.0.0.1/", is_active=False), "credentials", "creds")


async def test_dns_rebinding_is_refused_at_send_time(settings: Settings) -> None:
    """The name resolves to a public address when the subscription is created and to 127.0.0.1 when the worker
    sends: the worker checks again, refuses, records ``refused_destination:loopback`` and connects nowhere."""
    secret = settings.webhook_signing_secret.get_secret_value()
    dns = FakeDns({"hooks.rebind.test": [PUBLIC]})
    with webhook_receiver(secret) as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        async with running(settings, dns) as r:
            created = await create(r, f"http://hooks.rebind.test:{port}/hooks/sm")
            assert created.status_code == 201, created.text
            dns.answers["hooks.rebind.test"] = ["127.0.0.1"]  # rebinding after the check
            event = await emit_alert(r.app)
            delivery = await wait_attempted(r, event, created.json()["id"])
            assert delivery["last_error"] == "refused_destination:loopback"
            assert delivery["last_status"] is None and delivery["status"] == "pending"
            assert dns.lookups.count("hooks.rebind.test") >= 2  # at creation and again at send time
        assert receiver.requests == []  # the receiver on 127.0.0.1 got nothing


async def test_a_reply_body_is_never_recorded_nor_shown(settings: Settings) -> None:
    secret = settings.webhook_signing_secret.get_secret_value()
    leaked = f"internal-reply-{uuid.uuid4().hex}"
    with webhook_receiver(secret, fail_always=True, failure_body=leaked.encode()) as receiver:
        async with running(allow_loopback(settings)) as r:
            created = await create(r, receiver.url)
            assert created.status_code == 201, created.text
            hook_id = created.json()["id"]
            event = await emit_alert(r.app)
            delivery = await wait_attempted(r, event, hook_id)
            assert (delivery["last_error"], delivery["last_status"]) == ("http_500", 500)
            assert [x.status for x in receiver.requests] == [500]  # the body was sent and answered
            async with unit_of_work(app_runtime(r.app).session_factory) as session:
                row = await DeliveryRepository(session).get(delivery["id"])
                assert row is not None and row.last_error == "http_500"
                assert leaked not in str(row.payload)
            for path in (DELIVERIES, f"{BASE}/{hook_id}/deliveries"):
                response = await r.client.get(path, params={"limit": 1000}, headers=r.admin)
                assert response.status_code == 200 and leaked not in response.text

            # a row written before classifications (free text with the reply) shows only its classification
            async with unit_of_work(app_runtime(r.app).session_factory) as session:
                await session.execute(
                    text("UPDATE notification_deliveries SET last_error = :e WHERE id = :id"),
                    {"e": f"RuntimeError: HTTP 503: {leaked}", "id": delivery["id"]},
                )
            [old] = [d for d in await deliveries_of(r, event, r.admin) if d["webhook_id"] == hook_id]
            assert old["last_error"] == "http_503"
            response = await r.client.get(f"{BASE}/{hook_id}/deliveries", headers=r.admin)
            assert leaked not in response.text


async def test_read_scope_keys_see_no_delivery_targets(settings: Settings, unused_port: int) -> None:
    secret = settings.webhook_signing_secret.get_secret_value()
    with webhook_receiver(secret) as receiver:
        email = settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": unused_port,  # nobody listens: the e-mail stays pending (connect_error)
                "notification_email_to": ["ops@example.com"],
            }
        )
        async with running(allow_loopback(email)) as r:
            target = f"{receiver.url}?token={TOKEN}"
            created = await create(r, target)
            assert created.status_code == 201, created.text
            hook_id = created.json()["id"]
            reader = await create_key(r.client, r.settings, "read")
            event = await emit_alert(r.app)

            async def both_enqueued() -> bool:
                channels = {d["channel"] for d in await deliveries_of(r, event, r.admin)}
                return channels == {"webhook", "email"}

            await wait_until(both_enqueued, timeout=20, what="the webhook and e-mail deliveries")
            as_admin = {d["channel"]: d["target"] for d in await deliveries_of(r, event, r.admin)}
            assert as_admin == {"webhook": target, "email": "ops@example.com"}
            as_reader = await deliveries_of(r, event, reader.headers)
            assert sorted(d["channel"] for d in as_reader) == ["email", "webhook"]
            assert all(d["target"] is None for d in as_reader)
            for path in (DELIVERIES, f"{BASE}/{hook_id}/deliveries"):
                response = await r.client.get(path, params={"limit": 1000}, headers=reader.headers)
                assert response.status_code == 200, response.text
                assert TOKEN not in response.text and "ops@example.com" not in response.text
            per_hook = await r.client.get(f"{BASE}/{hook_id}/deliveries", headers=r.admin)
            assert [d["target"] for d in per_hook.json()["items"]] == [target]
