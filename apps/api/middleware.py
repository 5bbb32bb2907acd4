"""Pure ASGI middleware: request id, correlation id for logs, access log, last-resort 500; HTTP metrics hook.

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
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from prometheus_fastapi_instrumentator.metrics import Info
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


def record_http_metrics(info: Info) -> None:
    """prometheus-fastapi-instrumentator callback recording the http_* metrics of core.observability.metrics."""
    HTTP_REQUESTS_TOTAL.labels(info.method, info.modified_status, info.modified_handler).inc()
    HTTP_REQUEST_DURATION_SECONDS.labels(info.method, info.modified_handler).observe(info.modified_duration)


__all__ = [
    "DEBUG_ACCESS_PATHS",
    "INGEST_PATH",
    "REQUEST_ID_HEADER",
    "RequestContextMiddleware",
    "new_request_id",
    "record_http_metrics",
    "sane_request_id",
]
