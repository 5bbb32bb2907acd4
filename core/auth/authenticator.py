"""Key authentication with an in-process TTL cache, so the hot ingest path does not query the database per request.

A lookup result (known key with its scopes and revocation state, or "unknown") is cached for ``ttl_s`` seconds
per key hash; a presented value that is neither ``sm_``-prefixed nor a configured key (bootstrap, console,
simulator) is rejected without a lookup. Consequence, documented in docs/SECURITY.md: revoking a key through
another process (or the CLI) takes effect on this process within ``ttl_s`` seconds; revoking through this
process's admin endpoint invalidates its cache at once. Concurrent requests with the same uncached key share
one database lookup.

Unknown keys are cached apart (``negative_ttl_s``, ``SM_AUTH_NEGATIVE_CACHE_TTL_S``, bounded to ``max_entries``
like the known ones, so a flood of invented keys cannot evict them): a repeated invented key costs no database
transaction. ``lookups`` counts the database lookups of this authenticator.

``last_used_at`` is written at most once per ``LAST_USED_RESOLUTION`` per key and process (and the SQL itself
skips the write when another process updated it within that interval).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth.keys import (
    BOOTSTRAP_KEY_NAME,
    CONFIGURED_KEY_SPECS,
    KEY_PREFIX,
    LAST_USED_RESOLUTION,
    ApiKeyService,
    AuthenticatedKey,
    ConfiguredKey,
    hash_key,
)
from core.db.session import unit_of_work
from core.errors import ServiceUnavailable

logger = logging.getLogger("core.auth")

DEFAULT_TTL_S = 5.0
DEFAULT_MAX_ENTRIES = 10_000


class KeyAuthenticator:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        ttl_s: float = DEFAULT_TTL_S,
        negative_ttl_s: float | None = None,
        bootstrap_key: str | None = None,
        configured: Iterable[ConfiguredKey] = (),
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self.ttl_s = ttl_s
        self.negative_ttl_s = ttl_s if negative_ttl_s is None else negative_ttl_s
        self.clock = clock
        self.lookups = 0
        self._max_entries = max_entries
        # the configured keys (bootstrap, console, simulator) by hash: accepted without the sm_ prefix, and
        # registered on first use when the start-up registration did not happen
        self._configured = {hash_key(k.key): k for k in configured}
        if bootstrap_key and not any(k.name == BOOTSTRAP_KEY_NAME for k in self._configured.values()):
            setting, scopes = CONFIGURED_KEY_SPECS[BOOTSTRAP_KEY_NAME]
            boot = ConfiguredKey(BOOTSTRAP_KEY_NAME, setting, scopes, bootstrap_key)
            self._configured.setdefault(hash_key(bootstrap_key), boot)
        self._cache: OrderedDict[str, tuple[float, AuthenticatedKey]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # key hash -> expiry of "unknown"
        self._inflight: dict[str, asyncio.Future[AuthenticatedKey | None]] = {}
        self._touched: dict[int, float] = {}

    # --- cache ---------------------------------------------------------------------------------------------
    def invalidate(self, key_id: int | None = None) -> None:
        """Forget cached lookups (of one key, or all)."""
        if key_id is None:
            self._cache.clear()
            self._unknown.clear()
            return
        for key_hash, (_, entry) in list(self._cache.items()):
            if entry.id == key_id:
                del self._cache[key_hash]

    def _cached(self, key_hash: str) -> tuple[bool, AuthenticatedKey | None]:
        now = self.clock()
        hit = self._cache.get(key_hash)
        if hit is not None:
            expires, entry = hit
            if now < expires:
                return True, entry
            del self._cache[key_hash]
        unknown_until = self._unknown.get(key_hash)
        if unknown_until is not None:
            if now < unknown_until:
                return True, None
            del self._unknown[key_hash]
        return False, None

    def _store(self, key_hash: str, entry: AuthenticatedKey | None) -> None:
        if entry is None:
            if self.negative_ttl_s <= 0:
                return
            self._unknown[key_hash] = self.clock() + self.negative_ttl_s
            self._unknown.move_to_end(key_hash)
            while len(self._unknown) > self._max_entries:
                self._unknown.popitem(last=False)
            return
        self._cache[key_hash] = (self.clock() + self.ttl_s, entry)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    def is_cached_active(self, key: str) -> bool:
        """Whether ``key`` is cached as a known, unrevoked key (no database, no bookkeeping)."""
        found, entry = self._cached(hash_key(key))
        return found and entry is not None and not entry.revoked

    # --- lookups -------------------------------------------------------------------------------------------
    async def authenticate(self, key: str) -> AuthenticatedKey | None:
        """The stored key for ``key`` (possibly revoked: check ``.revoked``); None when unknown."""
        key_hash = hash_key(key)
        configured = self._configured.get(key_hash)
        if not key.startswith(KEY_PREFIX) and configured is None:
            return None  # not a key this platform generated: no database round trip for garbage
        found, entry = self._cached(key_hash)
        if not found:
            entry = await self._lookup_once(key_hash, key, configured)
        if entry is not None and not entry.revoked:
            await self._maybe_touch(entry.id)
        return entry

    async def _lookup_once(
        self, key_hash: str, key: str, configured: ConfiguredKey | None
    ) -> AuthenticatedKey | None:
        pending = self._inflight.get(key_hash)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():  # this request itself is being cancelled
                    raise
                return await self._lookup(key, configured)  # the leader was cancelled: look up ourselves
        future: asyncio.Future[AuthenticatedKey | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            entry = await self._lookup(key, configured)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it
            raise
        else:
            future.set_result(entry)
            self._store(key_hash, entry)
            return entry
        finally:
            self._inflight.pop(key_hash, None)

    async def _lookup(self, key: str, configured: ConfiguredKey | None) -> AuthenticatedKey | None:
        self.lookups += 1
        try:
            async with unit_of_work(self._factory) as session:
                service = ApiKeyService(session)
                entry = await service.lookup(key)
                if entry is None and configured is not None:
                    # the start-up registration did not happen (database down then): register it now
                    row = await service.register(configured)
                    entry = AuthenticatedKey.from_row(row)
                return entry
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("API key lookup failed: %s", type(exc).__name__)
            raise ServiceUnavailable("the API key cannot be verified: the database is unavailable") from None

    async def _maybe_touch(self, key_id: int) -> None:
        now = self.clock()
        last = self._touched.get(key_id)
        if last is not None and now - last < LAST_USED_RESOLUTION.total_seconds():
            return
        self._touched[key_id] = now
        try:
            async with unit_of_work(self._factory) as session:
                await ApiKeyService(session).touch(key_id)
        except (SQLAlchemyError, OSError) as exc:  # bookkeeping only: never fail the request for it
            logger.warning("could not record last_used_at of API key %s: %s", key_id, type(exc).__name__)
