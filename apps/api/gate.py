"""Pure ASGI gate in front of the routes: authentication and the body size limit before any body byte is read.

FastAPI reads and parses a request body before it runs the route's dependencies, so without this gate a client
without a key could make the API buffer a body of any size before it is told 401. Per HTTP request the gate

1. finds the route the request will reach (the router's own matching) and whether it needs an API key: a route
   does when its dependencies include ``apps.api.security.authenticate`` (every ``require_scope`` does). So
   ``/health*``, ``/metrics`` (its own check in ``apps.api.deps``), the API description and unknown paths need no
   key, and a new route is covered by what it declares;
2. for a route that needs a key, resolves ``X-API-Key`` (``apps.api.security.resolve_principal``: key cache,
   failed-authentication limit per client address, database lookup, per-key rate limit) and answers 401, 429 or
   503 without reading the body; the principal is left in the scope, where the route's
   ``authenticate`` dependency takes it (no second lookup; scope checks, 403, stay in the dependencies);
3. refuses a declared ``Content-Length`` over the route's limit with 413 before reading anything
   (``SM_MAX_BODY_BYTES`` for the ingest routes, ``SM_MAX_REQUEST_BODY_BYTES`` for every other one), and counts
   a streamed (chunked) body as the route reads it: the read that goes over the limit raises a 413
   ``HTTPException``, which the app's handlers render (FastAPI re-raises HTTP exceptions raised while it reads a
   body). The limit counts bytes as sent; the ingest router also checks the decoded size.

4. hands the plain ingest request (``POST /api/v1/data/ingest`` without query string or idempotency key, by a key
   with the ``ingest`` scope) to ``apps.api.routers.ingest.serve_plain_ingest`` instead of the router: the same
   answer without FastAPI's route matching and dependency solving (the hottest route of the API).

Errors are problem+json; the gate sits just inside ``RequestContextMiddleware``, so they carry ``X-Request-ID``.
Why not FastAPI's own ``max_body_size``: its 413 is plain text sent around the app's handlers (no problem+json,
no request id), and it cannot put authentication before the limit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.api.deps import app_settings
from apps.api.errors import problem_response
from apps.api.routers.ingest import is_plain_ingest, serve_plain_ingest
from apps.api.security import PRINCIPAL_SCOPE_KEY, Principal, authenticate, client_address, resolve_principal
from core.config import Settings
from core.errors import AppError, PayloadTooLarge
from core.observability.metrics import REQUEST_BODY_TOO_LARGE_TOTAL

#: Routes under this path take ``SM_MAX_BODY_BYTES`` (readings batches); every other one
#: ``SM_MAX_REQUEST_BODY_BYTES``.
INGEST_PATH_PREFIX = "/api/v1/data/ingest"
#: Distinct (method, path) pairs whose route decision is remembered (least recently used beyond).
POLICY_CACHE_SIZE = 4096
_TOO_LARGE = {kind: REQUEST_BODY_TOO_LARGE_TOTAL.labels(limit=kind) for kind in ("ingest", "request")}


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    needs_key: bool
    ingest: bool

    def limit(self, settings: Settings) -> int:
        return settings.max_body_bytes if self.ingest else settings.max_request_body_bytes


class BodyTooLarge(HTTPException):
    """Raised by the gate's ``receive`` when a body goes over its limit; rendered as a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body exceeds {limit} bytes")


def depends_on_authenticate(dependant: Dependant) -> bool:
    """Whether ``authenticate`` is anywhere in a route's dependency tree (router-level dependencies included)."""
    stack = [dependant]
    while stack:
        current = stack.pop()
        if current.call is authenticate:
            return True
        stack.extend(current.dependencies)
    return False


def route_needs_key(route: BaseRoute | RouteContext) -> bool:
    """Whether the route (as included: with its routers' dependencies) depends on ``authenticate``."""
    dependant = getattr(route, "dependant", None)
    return isinstance(dependant, Dependant) and depends_on_authenticate(dependant)


def effective_routes(app: FastAPI) -> list[RouteContext]:
    """The app's routes as the router matches them: included routers flattened, with their prefixes and
    dependencies (FastAPI keeps an included router as one entry of ``app.routes``)."""
    return list(iter_route_contexts(app.router.routes))


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":  # ASGI servers give header names in lower case
            return int(value) if value.isdigit() else None
    return None


def presented_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key":
            key: str = value.decode("latin-1")  # ASGI headers are bytes (the scope types them Any)
            return key
    return None


class RequestGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._policies: OrderedDict[tuple[int, str, str], RoutePolicy] = OrderedDict()
        self._routes: tuple[int, list[RouteContext]] = (-1, [])

    def policy(self, app: FastAPI, scope: Scope) -> RoutePolicy:
        # Routes and routers added to the app after the first request change this; a route added later to a
        # router that is already included does not (FastAPI apps declare their routes before serving).
        version = len(app.router.routes)
        cache_key = (version, scope["method"], scope["path"])
        policy = self._policies.get(cache_key)
        if policy is not None:
            self._policies.move_to_end(cache_key)
            return policy
        if self._routes[0] != version:
            self._routes = (version, effective_routes(app))
        route = next((r for r in self._routes[1] if r.matches(scope)[0] is Match.FULL), None)
        policy = RoutePolicy(
            needs_key=route is not None and route_needs_key(route),
            ingest=scope["path"].startswith(INGEST_PATH_PREFIX),
        )
        self._policies[cache_key] = policy
        while len(self._policies) > POLICY_CACHE_SIZE:
            self._policies.popitem(last=False)
        return policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app: FastAPI = scope["app"]
        settings = app_settings(app)
        policy = self.policy(app, scope)

        principal: Principal | None = None
        if policy.needs_key:
            try:
                principal = await resolve_principal(app, presented_key(scope), client_address(scope))
            except AppError as error:
                await self._reject(scope, receive, send, error)
                return
            scope[PRINCIPAL_SCOPE_KEY] = principal

        limit = policy.limit(settings)
        kind = "ingest" if policy.ingest else "request"
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            _TOO_LARGE[kind].inc()
            await self._reject(scope, receive, send, PayloadTooLarge(f"the body exceeds {limit} bytes"))
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    _TOO_LARGE[kind].inc()
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if policy.ingest and principal is not None and is_plain_ingest(scope, principal):
                # the plain ingest request, without FastAPI's routing and dependencies (apps.api.routers.ingest)
                await serve_plain_ingest(scope, limited_receive, tracking_send, principal)
            else:
                await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:  # escaped the app's handlers (a route reading its body outside them)
            if started:
                raise
            await self._reject(scope, receive, send, PayloadTooLarge(str(exc.detail)))

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, error: AppError) -> None:
        response = problem_response(Request(scope), error)
        await response(scope, receive, send)


__all__ = [
    "INGEST_PATH_PREFIX",
    "BodyTooLarge",
    "RequestGate",
    "RoutePolicy",
    "depends_on_authenticate",
    "effective_routes",
    "route_needs_key",
]
