"""Authentication and authorisation of API requests: ``X-API-Key`` → ``Principal``, scopes, per-key rate limits.

Routers declare what they need with the ready-made aliases::

    from apps.api.security import IngestPrincipal

    @router.post("/api/v1/data/ingest")
    async def ingest(principal: IngestPrincipal, ...): ...

or, for a whole router, ``APIRouter(dependencies=[Depends(require_scope(READ))])``.

* no key, an unknown key or a revoked key → 401 problem+json with ``WWW-Authenticate: ApiKey``;
* a key without the scope → 403 (``admin`` implies every scope);
* over the per-key rate limit (``SM_RATE_LIMIT``) → 429 with ``Retry-After`` and ``RateLimit-*`` headers.

Lookups are cached in the process for ``SM_API_KEY_CACHE_TTL_S`` seconds (see ``core.auth.authenticator``).
The principal of the request is also left on ``request.state.principal`` (idempotency, audit logs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security

from apps.api.deps import api_key_header
from core.auth.audit import audit
from core.auth.authenticator import KeyAuthenticator
from core.auth.keys import ADMIN, ALL_SCOPES, INGEST, READ, has_scope, register_bootstrap_key
from core.auth.ratelimit import KeyRateLimiter
from core.config import Settings
from core.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized
from core.observability.metrics import AUTH_FAILURES_TOTAL, RATE_LIMITED_TOTAL

logger = logging.getLogger("apps.api.security")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: the API key's id, name and scopes."""

    api_key_id: int
    name: str
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        return has_scope(self.scopes, scope)

    def audit(self, action: str, *, target: str, **details: Any) -> None:
        """One audit line for an administrative action taken with this key."""
        audit(action, actor_key_id=self.api_key_id, actor_name=self.name, target=target, **details)


# --- per-app state ------------------------------------------------------------------------------------------------
def _build_authenticator(app: FastAPI) -> KeyAuthenticator:
    settings: Settings = app.state.settings
    factory = getattr(app.state, "session_factory", None)
    if factory is None:
        raise ServiceUnavailable("the database session factory is not initialised")
    return KeyAuthenticator(
        factory,
        ttl_s=settings.api_key_cache_ttl_s,
        bootstrap_key=settings.api_key.get_secret_value(),
    )


def get_authenticator(request: Request) -> KeyAuthenticator:
    app: FastAPI = request.app
    authenticator = getattr(app.state, "authenticator", None)
    if authenticator is None:
        authenticator = app.state.authenticator = _build_authenticator(app)
    return authenticator  # type: ignore[no-any-return]


def get_rate_limiter(request: Request) -> KeyRateLimiter | None:
    app: FastAPI = request.app
    if not hasattr(app.state, "rate_limiter"):
        settings: Settings = app.state.settings
        app.state.rate_limiter = KeyRateLimiter.from_settings(
            settings.rate_limit, settings.rate_limit_storage_uri
        )
    return app.state.rate_limiter  # type: ignore[no-any-return]


async def setup_auth(app: FastAPI) -> None:
    """Lifespan step: build the authenticator and limiter, register the bootstrap key (``bootstrap`` row).

    A database that is down (or silent for ``SM_READY_TIMEOUT_S``) at start-up is not fatal: the bootstrap key
    is then registered on its first use.
    """
    settings: Settings = app.state.settings
    app.state.authenticator = _build_authenticator(app)
    app.state.rate_limiter = KeyRateLimiter.from_settings(
        settings.rate_limit, settings.rate_limit_storage_uri
    )
    try:
        async with asyncio.timeout(settings.ready_timeout_s):
            entry = await register_bootstrap_key(app.state.engine, settings.api_key.get_secret_value())
    except Exception as exc:  # noqa: BLE001 - retried lazily on the key's first use
        logger.warning("bootstrap API key not registered at start-up: %s", type(exc).__name__)
        return
    if entry.revoked:
        logger.warning("the bootstrap API key (SM_API_KEY, id %s) is revoked; rotate SM_API_KEY", entry.id)


# --- dependencies -------------------------------------------------------------------------------------------------
def _fail(reason: str, detail: str) -> Unauthorized:
    AUTH_FAILURES_TOTAL.labels(reason=reason).inc()
    return Unauthorized(detail)


async def authenticate(
    request: Request,
    presented: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    """Resolve ``X-API-Key`` to a principal (401 otherwise), then apply the per-key rate limit (429)."""
    if not presented:
        raise _fail("missing_key", "A valid API key is required (header X-API-Key).")
    entry = await get_authenticator(request).authenticate(presented)
    if entry is None:
        raise _fail("unknown_key", "The API key is not valid.")
    if entry.revoked:
        raise _fail("revoked_key", "The API key is not valid.")
    principal = Principal(api_key_id=entry.id, name=entry.name, scopes=entry.scopes)
    request.state.principal = principal

    limiter = get_rate_limiter(request)
    if limiter is not None:
        decision = await limiter.hit(entry.id)
        if not decision.allowed:
            RATE_LIMITED_TOTAL.inc()
            raise RateLimited(
                f"rate limit of {limiter.item} per API key exceeded",
                retry_after_s=decision.reset_after_s,
                headers={
                    "RateLimit-Limit": str(decision.limit),
                    "RateLimit-Remaining": str(decision.remaining),
                    "RateLimit-Reset": str(decision.reset_after_s),
                },
            )
    return principal


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the request and requires ``scope`` (``admin`` implies all)."""
    if scope not in ALL_SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(ALL_SCOPES)}")

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.has_scope(scope):
            AUTH_FAILURES_TOTAL.labels(reason="insufficient_scope").inc()
            raise Forbidden(f"the API key lacks the {scope!r} scope")
        return principal

    dependency.__name__ = f"require_{scope}_scope"
    return dependency


IngestPrincipal = Annotated[Principal, Depends(require_scope(INGEST))]
ReadPrincipal = Annotated[Principal, Depends(require_scope(READ))]
AdminPrincipal = Annotated[Principal, Depends(require_scope(ADMIN))]

__all__ = [
    "AdminPrincipal",
    "IngestPrincipal",
    "Principal",
    "ReadPrincipal",
    "authenticate",
    "get_authenticator",
    "get_rate_limiter",
    "require_scope",
    "setup_auth",
]
