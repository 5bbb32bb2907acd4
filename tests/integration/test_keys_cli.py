"""``python -m apps.cli keys create|list|revoke`` as a subprocess against the test database."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import httpx

from core.auth.keys import KEY_PREFIX, hash_key
from core.config import Settings
from tests.api.auth_support import key_row, serve_app
from tests.support.cli import run_cli


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(database_url, "keys", *args)


def listed(database_url: str) -> list[dict[str, Any]]:
    done = cli(database_url, "list", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def test_create_list_revoke(database_url: str, settings: Settings) -> None:
    name = f"plant-{uuid.uuid4().hex[:6]}"
    done = cli(database_url, "create", "--name", name, "--scopes", "ingest,read")
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip().splitlines()[-1]
    assert secret.startswith(KEY_PREFIX)
    assert "shown once" in done.stdout

    rows = {r["name"]: r for r in listed(database_url)}
    row = rows[name]
    assert row["scopes"] == ["ingest", "read"] and row["revoked_at"] is None
    table = cli(database_url, "list")
    assert table.returncode == 0 and name in table.stdout
    for output in (json.dumps(rows), table.stdout):
        assert secret not in output and hash_key(secret) not in output

    stored = await key_row(settings, row["id"])
    assert stored is not None and stored.key_hash == hash_key(secret)

    # the key works against the API, then the CLI revokes it
    async with serve_app(settings) as (_, client):
        ok = await client.get("/api/v1/admin/api-keys", headers={"X-API-Key": secret})
        assert ok.status_code == 403  # authenticated, not an admin key
    revoked = cli(database_url, "revoke", str(row["id"]))
    assert revoked.returncode == 0, revoked.stderr
    assert {r["name"]: r for r in listed(database_url)}[name]["revoked_at"] is not None
    active = cli(database_url, "list", "--active", "--json")
    assert name not in {r["name"] for r in json.loads(active.stdout)}
    async with serve_app(settings) as (_, client):  # a fresh process cache
        response = await client.get("/api/v1/admin/api-keys", headers={"X-API-Key": secret})
        assert isinstance(response, httpx.Response) and response.status_code == 401


def test_errors_are_reported_without_traceback(database_url: str) -> None:
    unknown = cli(database_url, "revoke", "999999999")
    assert (
        unknown.returncode == 1 and "does not exist" in unknown.stderr and "Traceback" not in unknown.stderr
    )
    bad = cli(database_url, "create", "--name", "x", "--scopes", "root")
    assert bad.returncode == 1 and "unknown scope" in bad.stderr and "Traceback" not in bad.stderr


async def test_revoke_refuses_the_configured_keys_with_how_to_rotate(
    database_url: str, settings: Settings
) -> None:
    async with serve_app(settings):  # the API registers the configured keys at start-up
        pass
    active = {r["name"]: r for r in listed(database_url) if r["revoked_at"] is None}
    for name, setting in (
        ("bootstrap", "SM_API_KEY"),
        ("console", "SM_CONSOLE_API_KEY"),
        ("simulator", "SM_SIMULATOR_API_KEY"),
    ):
        refused = cli(database_url, "revoke", str(active[name]["id"]))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"set a new {setting} in .env" in refused.stderr and "restart" in refused.stderr, (
            refused.stderr
        )
        assert "Traceback" not in refused.stderr
        row = await key_row(settings, active[name]["id"])
        assert row is not None and row.revoked_at is None


def test_create_with_the_operate_scope_and_generate(database_url: str) -> None:
    name = f"tech-{uuid.uuid4().hex[:6]}"
    done = cli(database_url, "create", "--name", name, "--scopes", "read,operate", "--json")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["scopes"] == ["read", "operate"] and created["key"].startswith(KEY_PREFIX)
    generated = cli(database_url, "generate")
    assert generated.returncode == 0, generated.stderr
    secret = generated.stdout.strip()
    assert secret.startswith(KEY_PREFIX) and len(secret) >= 40 and secret != created["key"]
    stored = {r["id"] for r in listed(database_url)}
    assert cli(database_url, "generate").returncode == 0
    assert {r["id"] for r in listed(database_url)} == stored  # generate stores nothing
    scopes = cli(database_url, "scopes")
    assert scopes.returncode == 0 and "operate" in scopes.stdout and "acknowledge" in scopes.stdout
