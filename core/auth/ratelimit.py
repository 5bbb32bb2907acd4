"""Rate limiting with the ``limits`` library (sliding window counter: token-bucket-like, O(1) per hit).

Two uses, one class: the per-API-key request limit (``SM_RATE_LIMIT``, namespace ``api-key``) and the limit of
failed authentications per client address (``SM_AUTH_FAILURE_LIMIT``, namespace ``auth-failures``), where a
request is first *checked* (``check``: is the address over its budget? nothing counted) and only a failure is
*counted* (``hit``).

Storage: in-process memory by default (each API process limits on its own); a ``redis://`` (or ``rediss://``)
URI shares the counters between processes. URIs are given in their plain form and mapped to the asyncio
implementation (``memory://`` → ``async+memory://``); Redis is used through redis-py.
"""

from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

DISABLED_VALUES = {"", "0", "off", "none", "disabled"}


def parse_rate_limit(value: str | None) -> RateLimitItem | None:
    """``"600/second"`` → an item; ``"0"``, ``""`` or ``None`` → None (rate limiting off)."""
    if value is None or value.strip().lower() in DISABLED_VALUES:
        return None
    return parse(value.strip())


def async_storage_uri(uri: str | None) -> str:
    uri = (uri or "memory://").strip() or "memory://"
    return uri if uri.startswith("async+") else "async+" + uri


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int
    """Seconds until a request is allowed again (≥ 1 when refused)."""


API_KEY_NAMESPACE = "api-key"
AUTH_FAILURES_NAMESPACE = "auth-failures"


class KeyRateLimiter:
    """``await limiter.hit(key)`` → a RateDecision; one limit for every key (API key id, client address), counted
    per key within ``namespace``."""

    def __init__(
        self, item: RateLimitItem, storage_uri: str | None = None, *, namespace: str = API_KEY_NAMESPACE
    ) -> None:
        self.item = item
        self.namespace = namespace
        uri = async_storage_uri(storage_uri)
        options: dict[str, str] = {}
        if (
            uri.startswith(("async+redis://", "async+rediss://"))
            and importlib.util.find_spec("coredis") is None
        ):
            options["implementation"] = "redispy"
        storage = storage_from_string(uri, **options)
        if not isinstance(storage, AsyncStorage):  # the async+ scheme gives one; the factory types either kind
            raise ValueError(f"not an asyncio rate-limit storage: {uri}")
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)

    @classmethod
    def from_settings(
        cls, limit: str | None, storage_uri: str | None, *, namespace: str = API_KEY_NAMESPACE
    ) -> KeyRateLimiter | None:
        item = parse_rate_limit(limit)
        return None if item is None else cls(item, storage_uri, namespace=namespace)

    async def hit(self, key_id: int | str) -> RateDecision:
        """Count one request of ``key_id``; refused when that goes over the limit."""
        identifier = str(key_id)
        if await self.strategy.hit(self.item, self.namespace, identifier):
            return RateDecision(True, self.item.amount, -1, 0)
        return await self._refused(identifier)

    async def check(self, key_id: int | str) -> RateDecision:
        """Whether one more request of ``key_id`` would be allowed, counting nothing."""
        identifier = str(key_id)
        if await self.strategy.test(self.item, self.namespace, identifier):
            return RateDecision(True, self.item.amount, -1, 0)
        return await self._refused(identifier)

    async def _refused(self, identifier: str) -> RateDecision:
        stats = await self.strategy.get_window_stats(self.item, self.namespace, identifier)
        reset_after = max(1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(False, self.item.amount, max(0, stats.remaining), reset_after)

    async def reset(self) -> None:
        await self.storage.reset()
