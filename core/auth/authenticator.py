"""Key authentication with an in-process TTL cache, so the hot ingest path does not query the database per request.

A lookup result (known key with its scopes and revocation state, or "unknown") is cached for ``ttl_s`` seconds
per key hash; a presented value that is neither ``sm_``-prefixed nor the bootstrap key is rejected without a
lookup. Consequence, documented in docs/SECURITY.md: revoking a key through another process (or the
CLI) takes effect on this process within ``ttl_s`` seconds; revoking through this process's admin endpoint
invalidates its cache at once. Concurrent requests with the same uncached key share one database lookup.

``last_used_at`` is written at most once per ``LAST_USED_RESOLUTION`` per key and process (and the SQL itself
skips the write when another process updated it within that interval).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth.keys import KEY_PREFIX, LAST_USED_RESOLUTION, ApiKeyService, AuthenticatedKey, hash_key
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
        bootstrap_key: str | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self.ttl_s = ttl_s
        self.clock = clock
        self._max_entries = max_entries
        self._bootstrap_hash = hash_key(bootstrap_key) if bootstrap_key else None
        self._cache: OrderedDict[str, tuple[float, AuthenticatedKey | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[AuthenticatedKey | None]] = {}
        self._touched: dict[int, float] = {}

    # --- cache ---------------------------------------------------------------------------------------------
    def invalidate(self, key_id: int | None = None) -> None:
        """Forget cached lookups (of one key, or all)."""
        if key_id is None:
            self._cache.clear()
            return
        for key_hash, (_, entry) in list(self._cache.items()):
            if entry is not None and entry.id == key_id:
                del self._cache[key_hash]

    def _cached(self, key_hash: str) -> tuple[bool, AuthenticatedKey | None]:
        hit = self._cache.get(key_hash)
        if hit is None:
            return False, None
        expires, entry = hit
        if self.clock() >= expires:
            del self._cache[key_hash]
            return False, None
        return True, entry

    def _store(self, key_hash: str, entry: AuthenticatedKey | None) -> None:
        self._cache[key_hash] = (self.clock() + self.ttl_s, entry)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    # --- lookups -------------------------------------------------------------------------------------------
    async def authenticate(self, key: str) -> AuthenticatedKey | None:
        """The stored key for ``key`` (possibly revoked: check ``.revoked``); None when unknown."""
        key_hash = hash_key(key)
        is_bootstrap = self._bootstrap_hash is not None and hmac.compare_digest(
            key_hash, self._bootstrap_hash
        )
        if not key.startswith(KEY_PREFIX) and not is_bootstrap:
            return None  # not a key this platform generated: no database round trip for garbage
        found, entry = self._cached(key_hash)
        if not found:
            entry = await self._lookup_once(key_hash, key, is_bootstrap)
        if entry is not None and not entry.revoked:
            await self._maybe_touch(entry.id)
        return entry

    async def _lookup_once(self, key_hash: str, key: str, is_bootstrap: bool) -> AuthenticatedKey | None:
        pending = self._inflight.get(key_hash)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():  # this request itself is being cancelled
                    raise
                return await self._lookup(key, is_bootstrap)  # the leader was cancelled: look up ourselves
        future: asyncio.Future[AuthenticatedKey | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            entry = await self._lookup(key, is_bootstrap)
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

    async def _lookup(self, key: str, is_bootstrap: bool) -> AuthenticatedKey | None:
        try:
            async with unit_of_work(self._factory) as session:
                service = ApiKeyService(session)
                entry = await service.lookup(key)
                if entry is None and is_bootstrap:
                    # the start-up registration did not happen (database down then): register it now
                    row = await service.register_bootstrap(key)
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
