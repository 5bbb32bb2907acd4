"""Admin API-key endpoints: the secret is shown once, listings hide secrets and hashes, revocation is immediate
on this process, admin actions are audit-logged with the actor and the correlation id; the configured keys
(bootstrap, console, simulator) are registered at start-up, cannot be revoked (409) and rotate on a restart with
a new value."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from core.auth.keys import KEY_PREFIX, hash_key
from core.config import Settings
from tests.api.auth_support import MISSING_ID, bootstrap_headers, create_key, key_row, serve_app
from tests.api.conftest import LogCapture
from tests.support.db import private_database

KEYS = "/api/v1/admin/api-keys"


async def test_create_shows_the_key_once_and_stores_only_its_hash(settings: Settings) -> None:
    async with serve_app(settings) as (_, client):
        response = await client.post(
            KEYS,
            json={"name": "plant-a", "scopes": ["read", "ingest", "read"]},
            headers=bootstrap_headers(settings),
        )
        assert response.status_code == 201, response.text
        created = response.json()
        secret = created["key"]
        assert secret.startswith(KEY_PREFIX) and len(secret) >= 40
        assert created["name"] == "plant-a"
        assert created["scopes"] == ["ingest", "read"]  # deduplicated, canonical order
        assert created["revoked_at"] is None and created["last_used_at"] is None

        row = await key_row(settings, created["id"])
        assert row is not None
        assert row.key_hash == hash_key(secret) != secret

        listing = await client.get(KEYS, params={"limit": 1000}, headers=bootstrap_headers(settings))
        assert listing.status_code == 200
        assert secret not in listing.text and hash_key(secret) not in listing.text
        body = listing.json()
        assert body["total"] >= 2 and body["limit"] == 1000 and body["offset"] == 0
        item = next(i for i in body["items"] if i["id"] == created["id"])
        assert set(item) == {"id", "name", "scopes", "created_at", "last_used_at", "revoked_at"}
        assert any(i["name"] == "bootstrap" for i in body["items"])

        # the new key works, and only with its scopes
        assert (await client.get(KEYS, headers={"X-API-Key": secret})).status_code == 403


async def test_revoke_then_401(settings: Settings) -> None:
    async with serve_app(settings) as (_, client):
        key = await create_key(client, settings, "admin")
        assert (await client.get(KEYS, headers=key.headers)).status_code == 200  # cached as valid
        revoked = await client.delete(f"{KEYS}/{key.id}", headers=bootstrap_headers(settings))
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None and "key" not in revoked.json()
        response = await client.get(KEYS, headers=key.headers)
        assert response.status_code == 401  # at once on this process, despite the cache
        again = await client.delete(f"{KEYS}/{key.id}", headers=bootstrap_headers(settings))
        assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
        active = await client.get(
            KEYS, params={"include_revoked": False, "limit": 1000}, headers=bootstrap_headers(settings)
        )
        assert key.id not in {i["id"] for i in active.json()["items"]}


async def test_revoke_unknown_is_404(settings: Settings) -> None:
    async with serve_app(settings) as (_, client):
        response = await client.delete(f"{KEYS}/{MISSING_ID}", headers=bootstrap_headers(settings))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_invalid_requests_are_422(settings: Settings) -> None:
    async with serve_app(settings) as (_, client):
        headers = bootstrap_headers(settings)
        for body in (
            {"name": "x", "scopes": ["superuser"]},
            {"name": "x", "scopes": []},
            {"name": "", "scopes": ["read"]},
            {"name": "bootstrap", "scopes": ["read"]},
            {"scopes": ["read"]},
        ):
            response = await client.post(KEYS, json=body, headers=headers)
            assert response.status_code == 422, (body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_non_admin_keys_cannot_manage_keys(settings: Settings) -> None:
    async with serve_app(settings) as (_, client):
        key = await create_key(client, settings, "ingest", "read")
        assert (await client.get(KEYS, headers=key.headers)).status_code == 403
        assert (
            await client.post(KEYS, json={"name": "x", "scopes": ["admin"]}, headers=key.headers)
        ).status_code == 403
        assert (await client.delete(f"{KEYS}/{key.id}", headers=key.headers)).status_code == 403
        row = await key_row(settings, key.id)
        assert row is not None and row.revoked_at is None


async def test_admin_actions_are_audit_logged(settings: Settings, json_logs: LogCapture) -> None:
    async with serve_app(settings) as (_, client):
        headers = {**bootstrap_headers(settings), "X-Request-ID": "audit-create-1"}
        created = (
            await client.post(KEYS, json={"name": "audited", "scopes": ["read"]}, headers=headers)
        ).json()
        headers["X-Request-ID"] = "audit-revoke-1"
        assert (await client.delete(f"{KEYS}/{created['id']}", headers=headers)).status_code == 200

    audits = [r for r in json_logs.records() if r.get("logger") == "sm.audit"]
    by_action = {r["action"]: r for r in audits}
    create, revoke = by_action["api_key.create"], by_action["api_key.revoke"]
    assert create["correlation_id"] == "audit-create-1"
    assert revoke["correlation_id"] == "audit-revoke-1"
    for line in (create, revoke):
        assert line["target"] == f"api_key:{created['id']}"
        assert line["actor_name"] == "bootstrap"
        assert isinstance(line["actor_key_id"], int)
        assert created["key"] not in str(line)


# --- the configured keys: bootstrap (SM_API_KEY), console (SM_CONSOLE_API_KEY), simulator (SM_SIMULATOR_API_KEY) ---
CONFIGURED = {
    "bootstrap": ("api_key", ["ingest", "read", "operate", "admin"]),
    "console": ("console_api_key", ["read", "operate", "admin"]),
    "simulator": ("simulator_api_key", ["ingest"]),
}


def secret_of(settings: Settings, name: str) -> str:
    return getattr(settings, CONFIGURED[name][0]).get_secret_value()  # type: ignore[no-any-return]


async def configured_rows(client: httpx.AsyncClient, settings: Settings) -> dict[str, list[dict[str, Any]]]:
    listing = await client.get(KEYS, params={"limit": 1000}, headers=bootstrap_headers(settings))
    assert listing.status_code == 200, listing.text
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGURED}
    for item in listing.json()["items"]:
        if item["name"] in rows:
            rows[item["name"]].append(item)
    return rows


async def test_configured_keys_are_registered_hashed_with_their_scopes(settings: Settings) -> None:
    async with serve_app(settings) as (_, client):
        rows = await configured_rows(client, settings)
        for name, (_, scopes) in CONFIGURED.items():
            [active] = [r for r in rows[name] if r["revoked_at"] is None]
            assert active["scopes"] == scopes, name
            stored = await key_row(settings, active["id"])
            assert stored is not None and stored.key_hash == hash_key(secret_of(settings, name))
        console = {"X-API-Key": secret_of(settings, "console")}
        simulator = {"X-API-Key": secret_of(settings, "simulator")}
        assert (await client.get(KEYS, headers=console)).status_code == 200  # the console administers
        assert (await client.get("/api/v1/sensors", headers=simulator)).status_code == 403  # ingest only
        ingest = await client.post(
            "/api/v1/data/ingest",
            json=[{"sensor_id": "sim-key-test", "value": 1.0, "timestamp": "2026-01-01T00:00:00Z"}],
            headers=simulator,
        )
        assert ingest.status_code not in (401, 403), ingest.text


async def test_configured_keys_cannot_be_revoked_409_says_how_to_rotate(settings: Settings) -> None:
    async with serve_app(settings) as (_, client):
        rows = await configured_rows(client, settings)
        for name in CONFIGURED:
            [active] = [r for r in rows[name] if r["revoked_at"] is None]
            for headers in (bootstrap_headers(settings), {"X-API-Key": secret_of(settings, "console")}):
                response = await client.delete(f"{KEYS}/{active['id']}", headers=headers)
                assert response.status_code == 409, (name, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                detail = response.json()["detail"]
                setting = {"bootstrap": "SM_API_KEY", "console": "SM_CONSOLE_API_KEY"}.get(
                    name, "SM_SIMULATOR_API_KEY"
                )
                assert f"set a new {setting} in .env" in detail and "restart" in detail, detail
                assert secret_of(settings, name) not in detail
            row = await key_row(settings, active["id"])
            assert row is not None and row.revoked_at is None
        # and they still work
        assert (await client.get(KEYS, headers=bootstrap_headers(settings))).status_code == 200
        assert (
            await client.get(KEYS, headers={"X-API-Key": secret_of(settings, "console")})
        ).status_code == 200


async def test_configured_key_names_are_reserved(settings: Settings) -> None:
    async with serve_app(settings) as (_, client):
        for name in CONFIGURED:
            response = await client.post(
                KEYS, json={"name": name, "scopes": ["read"]}, headers=bootstrap_headers(settings)
            )
            assert response.status_code == 422, (name, response.text)
            assert "reserved" in response.json()["detail"]


@pytest.fixture
def fresh_settings(admin_database_url: str, settings: Settings) -> Iterator[Settings]:
    """The suite's settings on a database of this test's own (rotation revokes rows the suite relies on)."""
    with private_database(admin_database_url, "sm_keys_rotation") as url:
        yield settings.model_copy(update={"database_url": url})


async def test_rotation_set_a_new_value_and_restart_revokes_the_old_key(fresh_settings: Settings) -> None:
    old = fresh_settings
    async with serve_app(old) as (_, client):
        before = await configured_rows(client, old)
    new = old.model_copy(
        update={
            field: SecretStr(f"{name}-rotated-{uuid.uuid4().hex}") for name, (field, _) in CONFIGURED.items()
        }
    )
    async with serve_app(new) as (_, client):  # the restart with new values
        after = await configured_rows(client, new)
        for name in CONFIGURED:
            [was] = before[name]
            [old_row] = [r for r in after[name] if r["id"] == was["id"]]
            assert old_row["revoked_at"] is not None, name  # revoked at start-up
            [active] = [r for r in after[name] if r["revoked_at"] is None]
            assert active["id"] != was["id"] and active["scopes"] == CONFIGURED[name][1]
            # the old value is refused at once, the new one works
            assert (await client.get(KEYS, headers={"X-API-Key": secret_of(old, name)})).status_code == 401
        assert (await client.get(KEYS, headers={"X-API-Key": secret_of(new, "console")})).status_code == 200
        assert (await client.get(KEYS, headers=bootstrap_headers(new))).status_code == 200
    # a second restart with the same new values changes nothing (idempotent)
    async with serve_app(new) as (_, client):
        again = await configured_rows(client, new)
    for name in CONFIGURED:
        assert len(again[name]) == 2, again[name]
        assert [r["id"] for r in again[name] if r["revoked_at"] is None] == [
            r["id"] for r in after[name] if r["revoked_at"] is None
        ]
