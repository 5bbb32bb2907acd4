"""Admin API-key endpoints: the secret is shown once, listings hide secrets and hashes, revocation is immediate
on this process, admin actions are audit-logged with the actor and the correlation id."""

from __future__ import annotations

from core.auth.keys import KEY_PREFIX, hash_key
from core.config import Settings
from tests.api.auth_support import MISSING_ID, bootstrap_headers, create_key, key_row, serve_app
from tests.api.conftest import LogCapture

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
