"""Authentication and scopes: 401 without/with an unknown or revoked key, 403 with a wrong scope, admin implies
all, the key cache's revocation delay, last_used_at bookkeeping, and a walk over every route of the app."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import event

from apps.api.deps import app_runtime
from apps.api.security import Principal, require_scope
from core.auth.keys import ALL_SCOPES, BOOTSTRAP_KEY_NAME, hash_key
from core.config import Settings
from core.observability.metrics import REGISTRY
from tests.api.auth_support import (
    MISSING_ID,
    FakeClock,
    bootstrap_headers,
    create_key,
    key_row,
    revoke_in_database,
    serve_app,
    set_last_used,
)

#: Anonymous by design: liveness/readiness probes, Prometheus scraping (its own optional key check) and the API
#: description where ``SM_OPENAPI_PUBLIC`` publishes it (see SECURITY.md).
EXEMPT = re.compile(r"^(/health.*|/metrics|/docs.*|/redoc.*|/openapi\.json)$")


# --- one route per scope, declared through require_scope (the app's own routers may not cover every scope) ----
def add_scope_probes(app: FastAPI) -> None:
    def probe_for(scope: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        requirement = Depends(require_scope(scope))

        async def probe(principal: Principal = requirement) -> dict[str, Any]:
            return {"id": principal.api_key_id, "name": principal.name, "scopes": sorted(principal.scopes)}

        return probe

    for scope in ALL_SCOPES:
        app.add_api_route(f"/_probe/{scope}", probe_for(scope), methods=["GET"])


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, (response.request.url, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("ApiKey")
    assert response.json()["type"].endswith("/unauthorized")


def auth_failures(reason: str) -> float:
    return REGISTRY.get_sample_value("sm_auth_failures_total", {"reason": reason}) or 0.0


async def test_no_key_and_unknown_key_get_401(settings: Settings) -> None:
    async with serve_app(settings, add_scope_probes) as (_, client):
        before = auth_failures("missing_key"), auth_failures("unknown_key")
        assert_unauthorized(await client.get("/_probe/read"))
        assert_unauthorized(await client.get("/_probe/read", headers={"X-API-Key": ""}))
        assert_unauthorized(await client.get("/_probe/read", headers={"X-API-Key": "sm_not-a-key"}))
        assert auth_failures("missing_key") == before[0] + 2
        assert auth_failures("unknown_key") == before[1] + 1


async def test_revoked_key_gets_401(settings: Settings) -> None:
    async with serve_app(settings, add_scope_probes) as (_, client):
        key = await create_key(client, settings, "read")
        assert (await client.get("/_probe/read", headers=key.headers)).status_code == 200
        revoked = await client.delete(f"/api/v1/admin/api-keys/{key.id}", headers=bootstrap_headers(settings))
        assert revoked.status_code == 200
        before = auth_failures("revoked_key")
        assert_unauthorized(await client.get("/_probe/read", headers=key.headers))
        assert auth_failures("revoked_key") == before + 1


@pytest.mark.parametrize("scope", ALL_SCOPES)
async def test_each_scope_opens_its_routes_only(settings: Settings, scope: str) -> None:
    async with serve_app(settings, add_scope_probes) as (_, client):
        key = await create_key(client, settings, scope)
        for target in ALL_SCOPES:
            response = await client.get(f"/_probe/{target}", headers=key.headers)
            if target == scope or scope == "admin":
                assert response.status_code == 200, (scope, target, response.text)
                assert response.json() == {"id": key.id, "name": key.name, "scopes": [scope]}
            else:
                assert response.status_code == 403, (scope, target, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["type"].endswith("/forbidden")
                assert "www-authenticate" not in response.headers


async def test_bootstrap_key_is_a_registered_admin_key(settings: Settings) -> None:
    async with serve_app(settings, add_scope_probes) as (_, client):
        response = await client.get("/_probe/admin", headers=bootstrap_headers(settings))
        assert response.status_code == 200
        body = response.json()
        assert body["name"] == BOOTSTRAP_KEY_NAME
        assert body["scopes"] == sorted(ALL_SCOPES)
        row = await key_row(settings, body["id"])
        assert row is not None
        assert row.key_hash == hash_key(settings.api_key.get_secret_value())
        assert row.revoked_at is None


async def test_bootstrap_registration_is_idempotent_and_a_new_key_revokes_the_old_row(
    settings: Settings,
) -> None:
    async with serve_app(settings, add_scope_probes) as (_, client):
        first = (await client.get("/_probe/admin", headers=bootstrap_headers(settings))).json()["id"]
    async with serve_app(settings, add_scope_probes) as (_, client):
        again = (await client.get("/_probe/admin", headers=bootstrap_headers(settings))).json()["id"]
    assert again == first  # same row across restarts

    rotated = settings.model_copy(
        update={"api_key": type(settings.api_key)("sm-rotated-bootstrap-key-for-tests")}
    )
    try:
        async with serve_app(rotated, add_scope_probes) as (_, client):
            response = await client.get("/_probe/admin", headers=bootstrap_headers(rotated))
            assert response.status_code == 200
            assert response.json()["id"] != first
            assert_unauthorized(await client.get("/_probe/admin", headers=bootstrap_headers(settings)))
        old = await key_row(settings, first)
        assert old is not None and old.revoked_at is not None
    finally:
        # the rest of the suite uses the original key: un-revoke its row (test-only repair)
        from sqlalchemy import update

        from core.auth.models import ApiKey
        from core.db.session import create_engine, create_session_factory, unit_of_work

        engine = create_engine(settings, pool_size=1, max_overflow=0)
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                await session.execute(update(ApiKey).where(ApiKey.id == first).values(revoked_at=None))
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.key_hash == hash_key(rotated.api_key.get_secret_value()))
                    .values(revoked_at=datetime.now(UTC))
                )
        finally:
            await engine.dispose()


async def test_revocation_elsewhere_takes_effect_within_the_cache_ttl(settings: Settings) -> None:
    ttl = 5.0
    async with serve_app(settings.model_copy(update={"api_key_cache_ttl_s": ttl}), add_scope_probes) as (
        app,
        client,
    ):
        clock = FakeClock()
        app.state.authenticator.clock = clock
        key = await create_key(client, settings, "read")
        assert (await client.get("/_probe/read", headers=key.headers)).status_code == 200  # now cached

        await revoke_in_database(settings, key.id)  # another process: this one is not told
        clock.advance(ttl - 0.5)
        assert (await client.get("/_probe/read", headers=key.headers)).status_code == 200  # still cached
        clock.advance(1.0)  # past the TTL: looked up again
        assert_unauthorized(await client.get("/_probe/read", headers=key.headers))


async def test_last_used_at_is_written_at_most_once_a_minute(settings: Settings) -> None:
    async with serve_app(settings, add_scope_probes) as (app, client):
        clock = FakeClock()
        app.state.authenticator.clock = clock
        key = await create_key(client, settings, "read")
        row = await key_row(settings, key.id)
        assert row is not None and row.last_used_at is None

        assert (await client.get("/_probe/read", headers=key.headers)).status_code == 200
        row = await key_row(settings, key.id)
        assert row is not None and row.last_used_at is not None

        long_ago = datetime.now(UTC) - timedelta(hours=2)
        await set_last_used(settings, key.id, long_ago)
        for _ in range(3):
            clock.advance(10)
            assert (await client.get("/_probe/read", headers=key.headers)).status_code == 200
        row = await key_row(settings, key.id)
        assert row is not None and row.last_used_at == long_ago  # not on every request

        clock.advance(31)  # more than a minute since the last write
        assert (await client.get("/_probe/read", headers=key.headers)).status_code == 200
        row = await key_row(settings, key.id)
        assert row is not None and row.last_used_at is not None and row.last_used_at > long_ago


async def test_unreachable_database_is_503_not_500(offline_settings: Settings) -> None:
    async with serve_app(offline_settings, add_scope_probes) as (_, client):
        response = await client.get("/_probe/read", headers={"X-API-Key": "sm_whatever"})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")


# --- the route walk: every route of the real app, present and future ----------------------------------------
async def app_routes(app: FastAPI, client: Any) -> list[tuple[str, str]]:
    """(method, path template) of every operation in the OpenAPI document, plus undocumented API routes."""
    document = (await client.get("/openapi.json")).json()
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    for route in app.routes:  # routes hidden from the schema (include_in_schema=False) on the app itself
        if isinstance(route, APIRoute):
            routes |= {(m, route.path) for m in route.methods - {"HEAD", "OPTIONS"}}
    return sorted(routes, key=lambda r: (r[1], r[0]))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(MISSING_ID), path)


async def test_every_route_needs_a_key_except_health_and_metrics(settings: Settings) -> None:
    # two failed authentications per route from one address: well over the default failed-auth limit
    app_settings = settings.model_copy(
        update={"metrics_require_key": False, "auth_failure_limit": "100000/minute"}
    )
    async with serve_app(app_settings) as (app, client):
        routes = await app_routes(app, client)
        assert any(p.startswith("/api/v1/admin/") for _, p in routes)
        checked = 0
        for method, path in routes:
            url = concrete(path)
            anonymous = await client.request(method, url)
            if EXEMPT.match(path):
                assert anonymous.status_code not in (401, 403), (method, path)
                continue
            assert_unauthorized(anonymous)
            assert_unauthorized(await client.request(method, url, headers={"X-API-Key": "sm_unknown"}))
            checked += 1
        assert checked >= 3


async def test_every_route_opens_to_admin_and_to_at_most_one_other_scope(settings: Settings) -> None:
    """The matrix over every non-exempt route: an admin key passes authorisation, an ``ingest`` or ``read`` key
    passes only where that is the route's scope (at most one of them), every other key gets 403."""
    async with serve_app(settings) as (app, client):
        keys = {scope: await create_key(client, settings, scope) for scope in ALL_SCOPES}
        admin_only = []
        for method, path in await app_routes(app, client):
            if EXEMPT.match(path):
                continue
            url = concrete(path)  # ids that do not exist: nothing is changed by a request that passes
            passed = set()
            for held, key in keys.items():
                response = await client.request(method, url, headers=key.headers)
                assert response.status_code != 401, (method, path, held, response.text)
                if response.status_code == 403:
                    assert response.json()["type"].endswith("/forbidden")
                else:
                    passed.add(held)
            assert "admin" in passed, (method, path)
            assert len(passed - {"admin"}) <= 1, (method, path, passed)
            if passed == {"admin"}:
                admin_only.append(path)
        assert "/api/v1/admin/api-keys" in admin_only


async def test_metrics_behind_a_key_accept_read_keys(settings: Settings) -> None:
    protected = settings.model_copy(update={"metrics_require_key": True})
    async with serve_app(protected) as (_, client):
        reader = await create_key(client, settings, "read")
        writer = await create_key(client, settings, "ingest")
        assert_unauthorized(await client.get("/metrics"))
        assert_unauthorized(await client.get("/metrics", headers={"X-API-Key": "sm_unknown"}))
        assert (await client.get("/metrics", headers=bootstrap_headers(settings))).status_code == 200
        assert (await client.get("/metrics", headers=reader.headers)).status_code == 200
        assert (await client.get("/metrics", headers=writer.headers)).status_code == 403


async def test_concurrent_requests_share_one_lookup_and_garbage_skips_the_database(
    settings: Settings,
) -> None:
    async with serve_app(settings, add_scope_probes) as (app, client):
        key = await create_key(client, settings, "read")
        authenticator = app.state.authenticator
        authenticator.invalidate()
        lookups: list[str] = []
        original = authenticator._lookup

        async def counting(secret: str, is_bootstrap: bool) -> Any:
            lookups.append(secret)
            return await original(secret, is_bootstrap)

        authenticator._lookup = counting
        responses = await asyncio.gather(
            *(client.get("/_probe/read", headers=key.headers) for _ in range(20))
        )
        assert {r.status_code for r in responses} == {200}
        assert lookups == [key.secret]

        assert_unauthorized(await client.get("/_probe/read", headers={"X-API-Key": "no-prefix-garbage"}))
        assert lookups == [key.secret]


async def test_invented_keys_cost_one_lookup_per_key_within_the_negative_ttl(settings: Settings) -> None:
    ttl = 60.0
    app_settings = settings.model_copy(
        update={"auth_negative_cache_ttl_s": ttl, "auth_failure_limit": "100000/minute"}
    )
    async with serve_app(app_settings, add_scope_probes) as (app, client):
        clock = FakeClock()
        authenticator = app.state.authenticator
        authenticator.clock = clock
        statements: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "api_keys" in statement:
                statements.append(statement)

        event.listen(app_runtime(app).engine.sync_engine, "before_cursor_execute", record)
        lookups_before = authenticator.lookups
        invented = [f"sm_invented-{i}-{uuid.uuid4().hex}" for i in range(3)]
        for _ in range(4):
            for secret in invented:
                assert_unauthorized(await client.get("/_probe/read", headers={"X-API-Key": secret}))
        assert len(statements) == 3  # the database was asked once per distinct key
        assert authenticator.lookups == lookups_before + 3

        clock.advance(ttl - 1)
        assert_unauthorized(await client.get("/_probe/read", headers={"X-API-Key": invented[0]}))
        assert len(statements) == 3  # still remembered as unknown
        clock.advance(2)  # past the negative TTL: asked again
        assert_unauthorized(await client.get("/_probe/read", headers={"X-API-Key": invented[0]}))
        assert len(statements) == 4


async def test_api_description_is_private_when_openapi_public_is_off(settings: Settings) -> None:
    """Production default: no anonymous /docs, /redoc or /openapi.json (only health and metrics stay open)."""
    async with serve_app(settings.model_copy(update={"openapi_public": False})) as (_, client):
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.get("/health")).status_code == 200
