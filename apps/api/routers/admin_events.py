"""Admin endpoint for the activity of the event machinery (scope ``admin``): is there still work in flight?"""

from __future__ import annotations

from fastapi import APIRouter, Request

from apps.api.deps import SessionDep, app_runtime
from apps.api.errors import problem_responses
from apps.api.security import AdminPrincipal
from core.events.schemas import EventsStatusRead
from core.events.status import EventsStatusService

router = APIRouter(
    prefix="/api/v1/admin/events",
    tags=["admin"],
    responses=problem_responses(401, 403, 429),
)


@router.get(
    "",
    response_model=EventsStatusRead,
    summary="Event activity: outbox rows not yet published, bus deliveries queued and running",
    description=(
        "`outbox_pending`: committed events not yet delivered (all API processes share the outbox); `bus`: "
        "this process's in-process bus, events `queued` and deliveries `running` (a delivery runs until every "
        "handler finished, retries included); `idle`: all zero. Agents react to each other's events, so a "
        "client waiting for them to settle asks until `idle` has held for a few answers in a row."
    ),
)
async def events_status(principal: AdminPrincipal, session: SessionDep, request: Request) -> EventsStatusRead:
    return await EventsStatusService(session).status(app_runtime(request.app).bus)
