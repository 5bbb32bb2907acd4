"""Request dependencies: settings, one session + transaction per request, the /metrics key check.

``SessionDep`` opens a session and a transaction with ``core.db.session.unit_of_work`` and commits it when the
endpoint returns (rolls back when it raises). It uses FastAPI's ``scope="function"`` so the commit happens
*before* the response is sent: a failing commit becomes an error response instead of a 200 for data that was
never stored. Services receive the session and only flush.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.auth.keys import READ, has_scope
from core.config import Settings
from core.db.session import unit_of_work
from core.errors import Forbidden, ServiceUnavailable, Unauthorized

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="API key")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_engine(request: Request) -> AsyncEngine:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:  # the lifespan has not run (app served without lifespan support)
        raise ServiceUnavailable("the database engine is not initialised")
    return engine  # type: ignore[no-any-return]


def get_session_factory(request: Request) -> async_sessionmaker[AsyncSession]:
    factory = getattr(request.app.state, "session_factory", None)
    if factory is None:
        raise ServiceUnavailable("the database session factory is not initialised")
    return factory  # type: ignore[no-any-return]


async def get_session(
    factory: Annotated[async_sessionmaker[AsyncSession], Depends(get_session_factory)],
) -> AsyncIterator[AsyncSession]:
    """One session and one transaction for the request, committed by this dependency."""
    async with unit_of_work(factory) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def key_matches(presented: str | None, settings: Settings) -> bool:
    if not presented:
        return False
    expected = settings.api_key.get_secret_value()
    return hmac.compare_digest(presented.encode(), expected.encode())


async def require_metrics_key(
    request: Request,
    settings: SettingsDep,
    presented: Annotated[str | None, Depends(api_key_header)],
) -> None:
    """When ``metrics_require_key`` is on, /metrics needs ``X-API-Key``: the bootstrap key (checked without the
    database) or any active key with the ``read`` scope (a scraper's own key; 403 for a key without it).

    A wrong key counts against the client address's failed-authentication budget like on every other route
    (over it: 429 before any lookup)."""
    if not settings.metrics_require_key or key_matches(presented, settings):
        return
    if presented:
        # imported here: apps.api.security imports this module
        from apps.api.security import check_failure_budget, client_address, get_authenticator

        authenticator = get_authenticator(request)
        address = client_address(request.scope)
        failures = None
        if not authenticator.is_cached_active(presented):
            failures = await check_failure_budget(request.app, address)
        entry = await authenticator.authenticate(presented)  # a value that is no key costs no lookup
        if entry is not None and not entry.revoked:
            if has_scope(entry.scopes, READ):
                return
            raise Forbidden("/metrics requires a key with the 'read' scope")
        if failures is not None:
            await failures.hit(address)
    raise Unauthorized("/metrics requires a valid X-API-Key header")


__all__ = [
    "API_KEY_HEADER",
    "EngineDep",
    "SessionDep",
    "SettingsDep",
    "get_engine",
    "get_session",
    "get_session_factory",
    "get_settings",
    "key_matches",
    "require_metrics_key",
]
