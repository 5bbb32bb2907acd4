"""Admin endpoints for dead letters of the event bus (scope ``admin``): list and replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from apps.api.deps import SessionDep, app_runtime
from apps.api.errors import problem_responses
from apps.api.params import Limit, Offset, big_id_path, text_query
from apps.api.security import AdminPrincipal
from core.errors import ServiceUnavailable
from core.events.dead_letters import DeadLetterService
from core.events.port import Bus
from core.events.schemas import DeadLetterFilter, DeadLetterRead, DeadLetterReplayed
from core.paging import Page

router = APIRouter(
    prefix="/api/v1/admin/dead-letters",
    tags=["admin"],
    responses=problem_responses(401, 403, 429),
)


def _bus(request: Request) -> Bus:
    bus = app_runtime(request.app).bus
    if not bus.running:
        raise ServiceUnavailable("the event bus is not running")
    return bus


@router.get(
    "",
    response_model=Page[DeadLetterRead],
    summary="List dead letters",
    description="Newest first. Filter by handler, event type and whether they were replayed.",
    responses=problem_responses(422),
)
async def list_dead_letters(
    principal: AdminPrincipal,
    session: SessionDep,
    handler: Annotated[
        str | None, text_query("Handler name, e.g. `telemetry.readings_ingested`.")
    ] = None,
    event_type: Annotated[str | None, text_query("Event type, e.g. `ReadingsIngested`.")] = None,
    replayed: Annotated[bool | None, Query(description="true: replayed only; false: pending only.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DeadLetterRead]:
    where = DeadLetterFilter(handler=handler, event_type=event_type, replayed=replayed)
    rows, total = await DeadLetterService(session).page(where, limit=limit, offset=offset)
    return Page[DeadLetterRead].of(rows, total=total, limit=limit, offset=offset)


@router.post(
    "/{dead_letter_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeadLetterReplayed,
    summary="Replay a dead letter",
    description=(
        "Re-publishes the stored event to the handler that failed (asynchronously, on this process's bus) and "
        "sets `replayed_at`. If the handler fails again, a new dead letter is written. A dead letter is "
        "replayed once: a second replay is 409."
    ),
    responses=problem_responses(404, 409, 422, 503),
)
async def replay_dead_letter(
    dead_letter_id: Annotated[int, big_id_path("Dead letter id.")],
    principal: AdminPrincipal,
    session: SessionDep,
    request: Request,
) -> DeadLetterReplayed:
    replay = await DeadLetterService(session).replay(dead_letter_id, _bus(request))
    principal.audit(
        "dead_letter.replay",
        target=f"dead_letter:{dead_letter_id}",
        handlers=replay.handlers,
        event_type=replay.dead_letter.event_type,
    )
    return DeadLetterReplayed(
        dead_letter=DeadLetterRead.model_validate(replay.dead_letter), handlers=replay.handlers
    )
