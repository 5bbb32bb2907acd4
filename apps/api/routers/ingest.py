"""``POST /api/v1/data/ingest``: HTTP concerns only (content type, size-limited body, headers, status codes).

The body is read by hand (not as a FastAPI body parameter) so that the size limit is enforced while reading,
JSON is parsed once, and items are validated one by one (see ``core.ingest.schemas``). The raw body goes to
``IngestService.ingest`` (``core.ingest.service``), which picks the path (group commit, one unit of work,
idempotent replay), commits before it returns (the commit wakes the outbox relay) and answers an ``IngestReply``
that becomes the response here.

The plain request — no query string, no ``Idempotency-Key``, a key with the ``ingest`` scope — is also served by
:func:`serve_plain_ingest`, which the request gate (``apps.api.gate``) calls once it has authenticated the request:
the same steps as the route (runtime, content type, size-limited body, ``IngestService.ingest``, the same response
and the same problem responses through the app's own handlers) without FastAPI's routing and dependency solving,
which cost a single-reading request more CPU than the ingest itself (py-spy under ``make bench-ingest``). Every
other request (query parameters, an idempotency key, a key without the scope: 403) takes the route.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from apps.api.deps import app_runtime
from apps.api.errors import app_error_handler, http_exception_handler, problem_responses
from apps.api.security import IngestPrincipal, Principal
from core.auth import INGEST
from core.errors import AppError, PayloadTooLarge, UnsupportedMediaType
from core.ingest.schemas import (
    EXAMPLE_READING,
    MAX_BATCH_ITEMS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    IngestResponse,
    reading_json_schema,
)
from core.ingest.service import IngestService

router = APIRouter(prefix="/api/v1/data", tags=["ingest"])
INGEST_ROUTE = "/api/v1/data/ingest"


async def ingest_service(request: Request) -> IngestService:
    """The ingest service of the app's runtime (``core.runtime.ingest``). Async: FastAPI runs plain ``def``
    dependencies in a worker thread, a thread hand-off per request on the hottest route of the API."""
    return app_runtime(request.app).ingest.service


IngestServiceDep = Annotated[IngestService, Depends(ingest_service)]

JSON_MEDIA_TYPE = "application/json"
REPLAYED_HEADER = "Idempotent-Replayed"

_reading_schema = reading_json_schema()
_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON_MEDIA_TYPE: {
                "schema": {
                    "oneOf": [
                        _reading_schema,
                        {
                            "type": "array",
                            "items": _reading_schema,
                            "minItems": 1,
                            "maxItems": MAX_BATCH_ITEMS,
                        },
                    ]
                },
                "examples": {
                    "one": {"value": EXAMPLE_READING},
                    "batch": {"value": [EXAMPLE_READING]},
                },
            }
        },
    }
}


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) as soon as it exceeds ``limit`` bytes — declared or actually sent."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(f"send the readings as {JSON_MEDIA_TYPE} (got {media_type or 'nothing'})")


def _json(body: Any, status_code: int, *, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type=JSON_MEDIA_TYPE, headers=headers)


@router.post(
    "/ingest",
    status_code=202,
    response_model=IngestResponse,
    summary="Ingest one reading or a batch of up to 10,000",
    description=(
        "Body: one reading object or a JSON array of up to 10,000. `partial` mode (default) stores the valid "
        "items and lists the others in `rejected`; `?atomic=true` stores nothing when any item is invalid (422 "
        "listing every invalid item). Readings whose (sensor_id, timestamp) is already stored count as "
        "`duplicates`. With an `Idempotency-Key` header the first response is replayed for the same body "
        "(header `Idempotent-Replayed: true`), 422 for a different body, 409 while the first is in flight. "
        "`?backfill=true` marks the readings as history (so does a batch whose readings are all older than "
        "`SM_BACKFILL_AGE_MINUTES`): they are scored and may raise alerts and work orders like live data, but "
        "no-data rules and due dates follow the readings' own timestamps."
    ),
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    openapi_extra=_REQUEST_BODY,
)
async def ingest(
    request: Request,
    principal: IngestPrincipal,
    service: IngestServiceDep,
    atomic: Annotated[bool, Query(description="Store nothing when any item is invalid.")] = False,
    backfill: Annotated[
        bool, Query(description="History: no-data rules and due dates follow the readings' timestamps.")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_CHARS,
            description="Per API key; remembered for 24 h.",
        ),
    ] = None,
) -> Response:
    _check_content_type(request)
    body = await read_body(request, service.settings.max_body_bytes)
    reply = await service.ingest(
        body, api_key_id=principal.api_key_id, atomic=atomic, backfill=backfill, idempotency_key=idempotency_key
    )
    return _json(reply.body, reply.status_code, headers={REPLAYED_HEADER: "true"} if reply.replayed else None)


def is_plain_ingest(scope: Scope, principal: Principal) -> bool:
    """Whether :func:`serve_plain_ingest` serves the request: ``POST`` to the route, no query string, no
    ``Idempotency-Key`` header, and a principal with the ``ingest`` scope (module docstring)."""
    return (
        scope["method"] == "POST"
        and scope["path"] == INGEST_ROUTE
        and not scope.get("query_string")
        and principal.has_scope(INGEST)
        and not any(name == b"idempotency-key" for name, _ in scope.get("headers", ()))
    )


async def serve_plain_ingest(scope: Scope, receive: Receive, send: Send, principal: Principal) -> None:
    """What the route answers a plain request (:func:`is_plain_ingest`), in the same order of checks: the
    runtime (503), the content type (415), the body within ``SM_MAX_BODY_BYTES`` (413), the ingest (its 202 or
    problem). ``AppError`` and the gate's 413 while reading are rendered by the app's exception handlers, as the
    route's are; anything else propagates to ``RequestContextMiddleware`` (a 500), as from the route."""
    request = Request(scope, receive)
    request.state.principal = principal  # as the route's authenticate dependency leaves it
    try:
        service = app_runtime(request.app).ingest.service
        _check_content_type(request)
        body = await read_body(request, service.settings.max_body_bytes)
        reply = await service.ingest(body, api_key_id=principal.api_key_id)
    except AppError as error:
        response: Response = await app_error_handler(request, error)
    except StarletteHTTPException as exc:  # the gate's BodyTooLarge, raised by its receive while reading
        response = await http_exception_handler(request, exc)
    else:
        response = _json(reply.body, reply.status_code, headers={REPLAYED_HEADER: "true"} if reply.replayed else None)
    await response(scope, receive, send)


__all__ = ["INGEST_ROUTE", "REPLAYED_HEADER", "is_plain_ingest", "read_body", "router", "serve_plain_ingest"]
