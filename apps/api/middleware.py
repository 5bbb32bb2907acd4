"""Pure ASGI middleware: request id, correlation id for logs, access log, last-resort 500; the HTTP metrics.

``RequestContextMiddleware`` is the outermost of our middleware. Per HTTP request it

1. takes ``X-Request-ID`` from the request when it is a sane token (1–128 chars of ``[A-Za-z0-9._:-]``), else
   generates ``uuid4().hex``;
2. stores it in ``scope["state"]["request_id"]`` and in the logging context variable, so every log line emitted
   while handling the request (ours and the libraries') carries it as ``correlation_id``;
3. echoes it in the ``X-Request-ID`` response header of every response, errors included;
4. renders an exception that escaped the app as a 500 problem (through ``apps.api.errors``) so that response
   keeps the header too, and the stack trace is logged server-side only;
5. writes one access-log line (method, path, status, duration_ms) on logger ``apps.api.access``: at INFO, except
   for the paths in :data:`DEBUG_ACCESS_PATHS` (the ingest route, thousands of requests a minute), logged at
   DEBUG and counted (the runtime's ``ingest.log``) for the summary written once per interval at INFO instead
   (``core.observability.ingest_log``).

``HttpMetricsMiddleware`` records ``http_requests_total`` and ``http_request_duration_seconds``
(``core.observability.metrics``) per method, route template and grouped status, as prometheus-fastapi-instrumentator
did with our callback (its route naming, the same exclusions and grouping), but it resolves the route template
once per (method, path) instead of matching every route of the app on every request.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import OrderedDict

from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.api.errors import unhandled_response
from core.observability.logging import correlation_id_var
from core.observability.metrics import HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL
from core.runtime.runtime import Runtime

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

INGEST_PATH = "/api/v1/data/ingest"
#: Access lines of these paths are written at DEBUG (their INFO view is the periodic ingest summary).
DEBUG_ACCESS_PATHS = frozenset({INGEST_PATH})

access_logger = logging.getLogger("apps.api.access")


def sane_request_id(value: str | None) -> str | None:
    """The incoming id if it is safe to reuse (log- and header-safe, bounded), else None."""
    if value and _REQUEST_ID_RE.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            try:
                decoded: str = value.decode("latin-1")  # ASGI headers are bytes (the scope types them Any)
                return decoded
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
                return None
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        request_id = sane_request_id(_header(scope, b"x-request-id")) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = correlation_id_var.set(request_id)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                correlation_id_var.reset(token)
            return

        started = time.perf_counter()
        status: int | None = None
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as exc:
            if response_started:
                # Too late for an error response: log it and let the server abort the connection.
                access_logger.error("exception after the response started", exc_info=exc)
                status = status or 500
                raise
            response = unhandled_response(Request(scope), exc)
            await response(scope, receive, send_with_request_id)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            method = scope.get("method", "")
            path = scope.get("path", "")
            quiet = path in DEBUG_ACCESS_PATHS
            if quiet:  # counted for the periodic INFO summary (core.runtime.ingest)
                runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
                if isinstance(runtime, Runtime):
                    runtime.ingest.log.record(status, duration_ms)
            access_logger.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s (%.1f ms)",
                method,
                path,
                status if status is not None else "-",
                duration_ms,
                extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms},
            )
            correlation_id_var.reset(token)


#: Handlers whose requests are not counted (matched against the route template, or the path of an unknown route).
EXCLUDED_HANDLERS = (re.compile(r"^/metrics$"), re.compile(r"^/health"))
#: The handler label of requests that match no route (one series for all of them, not one per path).
UNTEMPLATED_HANDLER = "none"
#: Distinct (method, path) pairs whose handler label is remembered (least recently used beyond).
HANDLER_CACHE_SIZE = 4096


class HttpMetricsMiddleware:
    """``http_requests_total{method,status,handler}`` (status grouped: ``2xx``) and
    ``http_request_duration_seconds{method,handler}`` for every HTTP request (module docstring).

    The handler is the route template (``/api/v1/sensors/{sensor_id}``), ``none`` for a path that matches no
    route; requests of ``/metrics`` and ``/health*`` are not counted. A request whose app raised before the
    response started counts as a 500. Resolved like the instrumentator (its ``get_route_name``: a full match of
    path and method, else the first route whose path matches) and remembered per (method, path); routes added to
    the app after the first request reset the memory (a route added later to an included router does not: FastAPI
    apps declare their routes before serving).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._handlers: OrderedDict[tuple[int, str, str, str], tuple[str, bool]] = OrderedDict()

    def handler(self, scope: Scope) -> tuple[str, bool]:
        """``(handler label, excluded)`` of the request."""
        app = scope.get("app")
        version = len(getattr(getattr(app, "router", None), "routes", ()))
        key = (version, scope.get("method", ""), scope.get("path", ""), scope.get("root_path", ""))
        cached = self._handlers.get(key)
        if cached is not None:
            self._handlers.move_to_end(key)
            return cached
        template = get_route_name(Request(scope), should_include_root_path=False)
        name = template or Request(scope).url.path
        excluded = any(pattern.search(name) for pattern in EXCLUDED_HANDLERS)
        result = (name if template else UNTEMPLATED_HANDLER, excluded)
        self._handlers[key] = result
        while len(self._handlers) > HANDLER_CACHE_SIZE:
            self._handlers.popitem(last=False)
        return result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        handler, excluded = self.handler(scope)
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            if not excluded:
                method = scope["method"]
                HTTP_REQUESTS_TOTAL.labels(method, f"{str(int(status))[0]}xx", handler).inc()
                HTTP_REQUEST_DURATION_SECONDS.labels(method, handler).observe(max(time.perf_counter() - started, 0.0))


__all__ = [
    "DEBUG_ACCESS_PATHS",
    "EXCLUDED_HANDLERS",
    "INGEST_PATH",
    "REQUEST_ID_HEADER",
    "HttpMetricsMiddleware",
    "RequestContextMiddleware",
    "new_request_id",
    "sane_request_id",
]
