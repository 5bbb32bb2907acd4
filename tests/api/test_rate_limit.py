"""Per-key rate limiting: over the limit → 429 problem+json with Retry-After and RateLimit-* headers; other keys
are unaffected; "0" disables the limit; the limiter is the ``limits`` library's."""

from __future__ import annotations

import pytest

from core.auth.ratelimit import KeyRateLimiter, async_storage_uri, parse_rate_limit
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
    import uuid

    item = parse_rate_limit("4/minute")
    assert item is not None
    replica_a, replica_b = KeyRateLimiter(item, redis_uri), KeyRateLimiter(item, redis_uri)
    key = f"test-{uuid.uuid4().hex}"  # unique: other runs share this Redis
    decisions = [await limiter.hit(key) for limiter in (replica_a, replica_b, replica_a, replica_b)]
    assert all(d.allowed for d in decisions)
    refused = await replica_b.hit(key)
    assert not refused.allowed and refused.remaining == 0 and refused.reset_after_s >= 1
    assert (await replica_a.hit(f"other-{key}")).allowed  # another key keeps its own budget
