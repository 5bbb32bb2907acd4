"""Per-key rate limiting: over the limit → 429 problem+json with Retry-After and RateLimit-* headers; other keys
are unaffected; "0" disables the limit; the limiter is the ``limits`` library's. Failed authentications per client
address: beyond ``SM_AUTH_FAILURE_LIMIT`` a 429 before any database lookup, other addresses unaffected."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from apps.api.deps import app_runtime
from core.auth.ratelimit import AUTH_FAILURES_NAMESPACE, KeyRateLimiter, async_storage_uri, parse_rate_limit
from core.config import Settings
from core.observability.metrics import REGISTRY
from tests.api.auth_support import bootstrap_headers, create_key, serve_app

KEYS = "/api/v1/admin/api-keys"


def rate_limited() -> float:
    return REGISTRY.get_sample_value("sm_rate_limited_total") or 0.0


async def test_sixth_request_is_429_and_other_keys_are_unaffected(settings: Settings) -> None:
    # per minute, not per second: the six requests surely fall into one window however slow the machine
    async with serve_app(settings.model_copy(update={"rate_limit": "5/minute"})) as (_, client):
        a = await create_key(client, settings, "admin")  # the bootstrap key spends 2 of its own 5 here
        b = await create_key(client, settings, "admin")
        before = rate_limited()
        for _ in range(5):
            assert (await client.get(KEYS, headers=a.headers)).status_code == 200
        refused = await client.get(KEYS, headers=a.headers)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/rate-limited")
        retry_after = refused.headers["retry-after"]
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
        assert refused.headers["ratelimit-limit"] == "5"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert int(refused.headers["ratelimit-reset"]) >= 1
        assert rate_limited() == before + 1

        assert (await client.get(KEYS, headers=b.headers)).status_code == 200  # another key: its own budget


async def test_unknown_keys_are_refused_before_the_limiter(settings: Settings) -> None:
    async with serve_app(settings.model_copy(update={"rate_limit": "1/minute"})) as (_, client):
        for _ in range(3):
            assert (await client.get(KEYS, headers={"X-API-Key": "sm_nope"})).status_code == 401


@pytest.mark.parametrize("value", ["0", "", "off"])
async def test_zero_or_empty_disables_rate_limiting(settings: Settings, value: str) -> None:
    async with serve_app(settings.model_copy(update={"rate_limit": value})) as (app, client):
        assert app.state.rate_limiter is None
        for _ in range(20):
            assert (await client.get(KEYS, headers=bootstrap_headers(settings))).status_code == 200


def test_rate_limit_notation() -> None:
    item = parse_rate_limit("600/second")
    assert item is not None and item.amount == 600 and item.get_expiry() == 1
    assert parse_rate_limit("0") is None and parse_rate_limit(None) is None
    assert async_storage_uri("memory://") == "async+memory://"
    assert async_storage_uri("redis://cache:6379/0") == "async+redis://cache:6379/0"
    assert async_storage_uri(None) == "async+memory://"


async def test_limiter_counts_per_key() -> None:
    limiter = KeyRateLimiter.from_settings("2/minute", "memory://")
    assert limiter is not None
    assert [(await limiter.hit(1)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.hit(2)).allowed
    decision = await limiter.hit(1)
    assert not decision.allowed and decision.reset_after_s >= 1 and decision.limit == 2


@pytest.fixture()
def redis_uri() -> str:
    """The machine's Redis (127.0.0.1:6379, started before the session like PostgreSQL), database 15."""
    import redis

    uri = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(uri, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:  # pragma: no cover - the service is part of the machine
        pytest.fail(f"Redis is not reachable at {uri}: {exc}")
    return uri


async def test_redis_storage_shares_one_budget_between_processes(redis_uri: str) -> None:
    """Two limiters on the same Redis (two API replicas) count one key's requests together."""
    item = parse_rate_limit("4/minute")
    assert item is not None
    replica_a, replica_b = KeyRateLimiter(item, redis_uri), KeyRateLimiter(item, redis_uri)
    key = f"test-{uuid.uuid4().hex}"  # unique: other runs share this Redis
    decisions = [await limiter.hit(key) for limiter in (replica_a, replica_b, replica_a, replica_b)]
    assert all(d.allowed for d in decisions)
    refused = await replica_b.hit(key)
    assert not refused.allowed and refused.remaining == 0 and refused.reset_after_s >= 1
    assert (await replica_a.hit(f"other-{key}")).allowed  # another key keeps its own budget


# --- failed authentications per client address (SM_AUTH_FAILURE_LIMIT) -----------------------------------------
ATTACKER = ("192.0.2.7", 40000)  # TEST-NET-1: an address of its own, apart from the test client's 127.0.0.1


def too_many_failures() -> float:
    return REGISTRY.get_sample_value("sm_auth_failures_total", {"reason": "too_many_failures"}) or 0.0


def count_key_lookups(app: FastAPI) -> list[str]:
    """Statements on the ``api_keys`` table sent by the app's engine from now on (the listener stays for the app)."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "api_keys" in statement:
            statements.append(statement)

    event.listen(app_runtime(app).engine.sync_engine, "before_cursor_execute", record)
    return statements


@asynccontextmanager
async def client_from(app: FastAPI, address: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=address)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_failure_after_the_limit_is_429_without_a_lookup(settings: Settings) -> None:
    async with serve_app(settings.model_copy(update={"auth_failure_limit": "5/minute"})) as (app, _):
        lookups = count_key_lookups(app)
        async with client_from(app, ATTACKER) as attacker:
            for i in range(5):
                invented = {"X-API-Key": f"sm_invented-{i}-{uuid.uuid4().hex}"}
                assert (await attacker.get(KEYS, headers=invented)).status_code == 401
            assert len(lookups) == 5  # one per distinct invented key

            before = too_many_failures(), rate_limited()
            refused = await attacker.get(KEYS, headers={"X-API-Key": f"sm_sixth-{uuid.uuid4().hex}"})
            assert refused.status_code == 429
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["type"].endswith("/rate-limited")
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            assert len(lookups) == 5  # refused before any database lookup
            assert too_many_failures() == before[0] + 1
            assert rate_limited() == before[1] + 1
            assert (await attacker.get(KEYS)).status_code == 429  # without a key: refused as well


async def test_valid_keys_are_unaffected_by_another_address_failures(settings: Settings) -> None:
    async with serve_app(settings.model_copy(update={"auth_failure_limit": "3/minute"})) as (app, client):
        key = await create_key(client, settings, "admin")
        async with client_from(app, ATTACKER) as attacker:
            for _ in range(4):
                await attacker.get(KEYS, headers={"X-API-Key": f"sm_guess-{uuid.uuid4().hex}"})
            assert (await attacker.get(KEYS, headers={"X-API-Key": "sm_one-more"})).status_code == 429

            app.state.authenticator.invalidate()  # the valid key needs a database lookup again
            lookups = count_key_lookups(app)
            assert (await client.get(KEYS, headers=key.headers)).status_code == 200  # another address
            assert len(lookups) >= 1
            assert (await client.get(KEYS, headers={"X-API-Key": "sm_typo"})).status_code == 401  # not 429

            # from the blocked address: a key cached as active still passes, an uncached one waits
            assert (await attacker.get(KEYS, headers=key.headers)).status_code == 200
            app.state.authenticator.invalidate()
            assert (await attacker.get(KEYS, headers=key.headers)).status_code == 429


async def test_failure_limit_check_counts_nothing() -> None:
    limiter = KeyRateLimiter.from_settings("2/minute", "memory://", namespace=AUTH_FAILURES_NAMESPACE)
    assert limiter is not None
    assert all([(await limiter.check("192.0.2.1")).allowed for _ in range(5)])
    await limiter.hit("192.0.2.1")
    await limiter.hit("192.0.2.1")
    refused = await limiter.check("192.0.2.1")
    assert not refused.allowed and refused.reset_after_s >= 1
    assert (await limiter.check("192.0.2.2")).allowed
    per_key = KeyRateLimiter.from_settings("2/minute", "memory://")
    assert per_key is not None and (await per_key.hit("192.0.2.1")).allowed  # namespaces do not mix
