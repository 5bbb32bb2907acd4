"""Authentication and authorisation of API requests: ``X-API-Key`` → ``Principal``, scopes, per-key rate limits.

Routers declare what they need with the ready-made aliases::

    from apps.api.security import IngestPrincipal

    @router.post("/api/v1/data/ingest")
    async def ingest(principal: IngestPrincipal, ...): ...

or, for a whole router, ``APIRouter(dependencies=[Depends(require_scope(READ))])``.

* no key, an unknown key or a revoked key → 401 problem+json with ``WWW-Authenticate: ApiKey``;
* a key without the scope → 403 (``admin`` implies every scope);
* over the per-key rate limit (``SM_RATE_LIMIT``) → 429 with ``Retry-After`` and ``RateLimit-*`` headers;
* from a client address with more than ``SM_AUTH_FAILURE_LIMIT`` failed authentications in the window → 429
  before any lookup (a key cached as active still passes).

The key is resolved by the request gate (``apps.api.gate``) before the body is read; ``authenticate`` takes the
principal the gate left on ``request.state.principal`` (idempotency, audit logs use it too). Lookups are cached in
the process for ``SM_API_KEY_CACHE_TTL_S`` seconds, unknown keys for ``SM_AUTH_NEGATIVE_CACHE_TTL_S`` (see
``core.auth.authenticator``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security

from apps.api.deps import SettingsDep, api_key_header, app_runtime, app_settings
from core.auth.audit import audit
from core.auth.authenticator import KeyAuthenticator
from core.auth.keys import (
    ADMIN,
    ALL_SCOPES,
    INGEST,
    OPERATE,
    READ,
    configured_keys,
    has_scope,
    register_configured_keys,
)
from core.auth.ratelimit import AUTH_FAILURES_NAMESPACE, KeyRateLimiter, RateDecision
from core.config import Settings
from core.errors import Forbidden, RateLimited, Unauthorized
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
    runtime = app_runtime(app)  # 503 while the lifespan has not built it
    settings = runtime.settings
    return KeyAuthenticator(
        runtime.session_factory,
        ttl_s=settings.api_key_cache_ttl_s,
        negative_ttl_s=settings.auth_negative_cache_ttl_s,
        configured=configured_keys(settings),
    )


def app_authenticator(app: FastAPI) -> KeyAuthenticator:
    authenticator = getattr(app.state, "authenticator", None)
    if not isinstance(authenticator, KeyAuthenticator):
        authenticator = app.state.authenticator = _build_authenticator(app)
    return authenticator


def get_authenticator(request: Request) -> KeyAuthenticator:
    return app_authenticator(request.app)


def app_rate_limiter(app: FastAPI) -> KeyRateLimiter | None:
    if not hasattr(app.state, "rate_limiter"):
        settings = app_settings(app)
        app.state.rate_limiter = KeyRateLimiter.from_settings(
            settings.rate_limit, settings.rate_limit_storage_uri
        )
    return app.state.rate_limiter  # type: ignore[no-any-return]


def get_rate_limiter(request: Request) -> KeyRateLimiter | None:
    return app_rate_limiter(request.app)


def app_failure_limiter(app: FastAPI) -> KeyRateLimiter | None:
    """The limit of failed authentications per client address (``SM_AUTH_FAILURE_LIMIT``; None when off)."""
    if not hasattr(app.state, "auth_failure_limiter"):
        settings = app_settings(app)
        app.state.auth_failure_limiter = KeyRateLimiter.from_settings(
            settings.auth_failure_limit, settings.rate_limit_storage_uri, namespace=AUTH_FAILURES_NAMESPACE
        )
    return app.state.auth_failure_limiter  # type: ignore[no-any-return]


async def setup_auth(app: FastAPI) -> None:
    """Lifespan step: build the authenticator and limiter, register the configured keys (rows ``bootstrap``,
    ``console``, ``simulator``; earlier values of each are revoked: that is their rotation).

    A database that is down (or silent for ``SM_READY_TIMEOUT_S``) at start-up is not fatal: the configured keys
    are then registered on their first use.
    """
    runtime = app_runtime(app)
    settings = runtime.settings
    app.state.authenticator = _build_authenticator(app)
    app.state.rate_limiter = KeyRateLimiter.from_settings(
        settings.rate_limit, settings.rate_limit_storage_uri
    )
    app.state.auth_failure_limiter = KeyRateLimiter.from_settings(
        settings.auth_failure_limit, settings.rate_limit_storage_uri, namespace=AUTH_FAILURES_NAMESPACE
    )
    engine = runtime.engine
    if engine is None:  # a runtime on a session factory of the caller's: registered on the keys' first use
        return
    try:
        async with asyncio.timeout(settings.ready_timeout_s):
            configured = configured_keys(settings)
            entries = await register_configured_keys(engine, configured)
    except Exception as exc:  # noqa: BLE001 - retried lazily on the key's first use
        logger.warning("configured API keys not registered at start-up: %s", type(exc).__name__)
        return
    for key, entry in zip(configured, entries, strict=True):
        if entry.revoked:
            logger.warning(
                "the %s API key (%s, id %s) is revoked; set a new %s and restart", key.name, key.setting,
                entry.id, key.setting,
            )  # fmt: skip


#: Where the request gate leaves the principal in the ASGI scope (not ``scope["state"]``: a server may share that
#: dict between requests, as asgi-lifespan does in the tests).
PRINCIPAL_SCOPE_KEY = "sm.principal"


# --- authentication (the request gate, and the dependency where the gate did not run) -------------------------
def _fail(reason: str, detail: str) -> Unauthorized:
    AUTH_FAILURES_TOTAL.labels(reason=reason).inc()
    return Unauthorized(detail)


def client_address(scope: Mapping[str, Any]) -> str:
    """The client's address as the server saw it (behind a proxy: as rewritten by uvicorn's proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _limited(detail: str, decision: RateDecision) -> RateLimited:
    RATE_LIMITED_TOTAL.inc()
    return RateLimited(
        detail,
        retry_after_s=decision.reset_after_s,
        headers={
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(decision.reset_after_s),
        },
    )


async def check_failure_budget(app: FastAPI, address: str) -> KeyRateLimiter | None:
    """429 when ``address`` used up its failed authentications (nothing looked up); the limiter, to count one."""
    failures = app_failure_limiter(app)
    if failures is not None:
        decision = await failures.check(address)
        if not decision.allowed:
            AUTH_FAILURES_TOTAL.labels(reason="too_many_failures").inc()
            raise _limited(
                f"too many failed authentications from this address (limit {failures.item})", decision
            )
    return failures


async def resolve_principal(app: FastAPI, presented: str | None, address: str) -> Principal:
    """``X-API-Key`` → the principal; 401 (missing, unknown or revoked key), 429 (too many failed
    authentications from ``address``, or the key over its rate limit), 503 (database unavailable).

    A key cached as active skips the failure check; any other request from an address over
    ``SM_AUTH_FAILURE_LIMIT`` is refused before any lookup. A presented key that fails counts against its
    address's budget (a request without a key does not: it guesses nothing and costs no lookup).
    """
    authenticator = app_authenticator(app)
    failures = None
    if not presented or not authenticator.is_cached_active(presented):
        failures = await check_failure_budget(app, address)
    if not presented:
        raise _fail("missing_key", "A valid API key is required (header X-API-Key).")
    entry = await authenticator.authenticate(presented)
    if entry is None or entry.revoked:
        if failures is not None:
            await failures.hit(address)
        raise _fail("unknown_key" if entry is None else "revoked_key", "The API key is not valid.")
    principal = Principal(api_key_id=entry.id, name=entry.name, scopes=entry.scopes)

    limiter = app_rate_limiter(app)
    if limiter is not None:
        decision = await limiter.hit(entry.id)
        if not decision.allowed:
            raise _limited(f"rate limit of {limiter.item} per API key exceeded", decision)
    return principal


# --- dependencies -------------------------------------------------------------------------------------------------
async def authenticate(
    request: Request,
    presented: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    """The request's principal: resolved by the request gate (``apps.api.gate``) before the body was read, or
    here when the gate did not run (an app without it); also left on ``request.state.principal``."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        principal = await resolve_principal(request.app, presented, client_address(request.scope))
    request.state.principal = principal
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


def key_matches(presented: str | None, settings: Settings) -> bool:
    """Whether ``presented`` is the bootstrap key (``SM_API_KEY``; checked without the database)."""
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


IngestPrincipal = Annotated[Principal, Depends(require_scope(INGEST))]
ReadPrincipal = Annotated[Principal, Depends(require_scope(READ))]
OperatePrincipal = Annotated[Principal, Depends(require_scope(OPERATE))]
AdminPrincipal = Annotated[Principal, Depends(require_scope(ADMIN))]

__all__ = [
    "PRINCIPAL_SCOPE_KEY",
    "AdminPrincipal",
    "IngestPrincipal",
    "OperatePrincipal",
    "Principal",
    "ReadPrincipal",
    "app_authenticator",
    "app_failure_limiter",
    "app_rate_limiter",
    "authenticate",
    "check_failure_budget",
    "client_address",
    "get_authenticator",
    "get_rate_limiter",
    "key_matches",
    "require_metrics_key",
    "require_scope",
    "resolve_principal",
    "setup_auth",
]
