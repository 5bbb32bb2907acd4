"""``POST /api/v1/data/ingest``: HTTP concerns only (content type, size-limited body, headers, status codes).

The body is read by hand (not as a FastAPI body parameter) so that the size limit is enforced while reading,
JSON is parsed once, and items are validated one by one (see ``core.ingest.schemas``).

Paths:
* one reading object, no ``Idempotency-Key``, group commit running → queued to the ``GroupCommitter``, answered
  after the shared transaction committed;
* everything else → ``IngestService`` in one unit of work opened here (``unit_of_work``: committed when the
  block ends, before the response is built; rolled back on any error); with an ``Idempotency-Key`` the key's
  lock and record are part of that transaction.
The endpoint opens its unit of work itself instead of taking ``SessionDep`` so that the group-commit path (the
hot single-reading path) does not create a session it never uses. After the commit the relay is woken
(``core.events.relay.after_commit``).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apps.api.deps import get_session_factory
from apps.api.errors import problem_responses
from apps.api.security import IngestPrincipal
from core.config import Settings
from core.db.session import unit_of_work
from core.errors import PayloadTooLarge, UnsupportedMediaType
from core.events.relay import after_commit
from core.ingest.group_commit import GroupCommitter
from core.ingest.repository import StoredResponse
from core.ingest.schemas import (
    EXAMPLE_READING,
    MAX_BATCH_ITEMS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    IngestResponse,
    RejectedItem,
    reading_json_schema,
)
from core.ingest.service import (
    IngestService,
    check_idempotency_key,
    parse_body,
    rejection_error,
    request_hash,
    with_sensors_registered,
)
from core.observability.metrics import INGEST_BATCH_SIZE, INGEST_REQUESTS_TOTAL

router = APIRouter(prefix="/api/v1/data", tags=["ingest"])


# Async twins of apps.api.deps.get_settings/get_session_factory: FastAPI runs plain ``def`` dependencies in a
# worker thread, two thread hand-offs per request on the hottest route of the API.
async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _session_factory(request: Request) -> async_sessionmaker[AsyncSession]:
    return get_session_factory(request)


SettingsDep = Annotated[Settings, Depends(_settings)]
SessionFactoryDep = Annotated[async_sessionmaker[AsyncSession], Depends(_session_factory)]
_REQUESTS = {
    mode: INGEST_REQUESTS_TOTAL.labels(mode=mode) for mode in ("partial", "atomic", "group_commit", "replay")
}

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
    session_factory: SessionFactoryDep,
    settings: SettingsDep,
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
    body = await read_body(request, settings.max_body_bytes)
    mode = "atomic" if atomic else "partial"

    if idempotency_key is not None:
        key = check_idempotency_key(idempotency_key)
        fingerprint = request_hash(body, atomic=atomic, backfill=backfill)
        batch = None

        async def idempotent() -> tuple[StoredResponse | None, dict[str, Any]]:
            nonlocal batch
            async with unit_of_work(session_factory) as session:
                service = IngestService(session, settings)
                stored = await service.begin_idempotent(principal.api_key_id, key, fingerprint)
                if stored is not None:
                    return stored, {}
                if batch is None:
                    batch = parse_body(body, settings)
                    _REQUESTS[mode].inc()
                result = await service.ingest(
                    batch, atomic=atomic, api_key_id=principal.api_key_id, backfill=backfill
                )
                payload = result.model_dump(mode="json")
                await service.complete_idempotent(
                    principal.api_key_id, key, fingerprint, status_code=202, body=payload
                )
            return None, payload

        stored, payload = await with_sensors_registered(session_factory, idempotent)
        if stored is not None:
            _REQUESTS["replay"].inc()
            return _json(stored.body, stored.status_code, headers={REPLAYED_HEADER: "true"})
        await after_commit(request.app.state)
        return _json(payload, 202)

    batch = parse_body(body, settings)
    committer: GroupCommitter | None = getattr(request.app.state, "group_committer", None)
    if batch.single and not backfill and committer is not None and committer.running:
        _REQUESTS["group_commit"].inc()
        INGEST_BATCH_SIZE.observe(1)
        if batch.rejected:
            IngestService._count(0, 0, 1)
            raise rejection_error(batch.rejected, "the reading is invalid; nothing stored")
        outcome = await committer.submit(batch.readings[0], principal.api_key_id)
        if outcome.outcome == "rejected":
            raise rejection_error(
                [RejectedItem(index=0, reason=outcome.reason or "rejected")],
                "the reading is invalid; nothing stored",
            )
        accepted = outcome.outcome == "accepted"
        payload = {"event_id": str(outcome.event_id), "accepted": int(accepted), "duplicates": int(not accepted),
                   "rejected": []}  # fmt: skip
        return _json(payload, 202)

    _REQUESTS[mode].inc()

    async def store() -> IngestResponse:
        async with unit_of_work(session_factory) as session:
            return await IngestService(session, settings).ingest(
                batch, atomic=atomic, api_key_id=principal.api_key_id, backfill=backfill
            )

    result = await with_sensors_registered(session_factory, store)
    await after_commit(request.app.state)
    return _json(result.model_dump(mode="json"), 202)


__all__ = ["REPLAYED_HEADER", "read_body", "router"]
