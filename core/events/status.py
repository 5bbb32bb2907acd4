"""Activity of the event machinery (``GET /api/v1/admin/events``): outbox rows not yet published and the
in-process bus's queued and running deliveries.

Work an agent still has to do is always visible in one of the three: an event is an unpublished outbox row from
its commit until the relay's batch that delivered it commits, which happens only after its deliveries finished;
a handler's own events are committed (as new rows) before its delivery finishes. The bus is read before and
after the outbox count and the larger readings are reported, so a delivery that starts or ends during the query
is not missed. A client waiting for the agents to settle (the back-test) still asks several times in a row:
one idle answer can fall between two links of a chain of reactions.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.events.outbox_repository import OutboxRepository
from core.events.port import Bus
from core.events.schemas import BusActivityRead, EventsStatusRead


class EventsStatusService:
    def __init__(self, session: AsyncSession) -> None:
        self._outbox = OutboxRepository(session)

    async def status(self, bus: Bus | None) -> EventsStatusRead:
        """The counts; a process without a bus (``None``) reports an empty one."""
        before = await bus.current_activity() if bus is not None else (0, 0)
        pending = await self._outbox.count_unpublished()
        after = await bus.current_activity() if bus is not None else (0, 0)
        queued, running = max(before[0], after[0]), max(before[1], after[1])
        return EventsStatusRead(
            outbox_pending=pending,
            bus=BusActivityRead(queued=queued, running=running),
            idle=pending == 0 and queued == 0 and running == 0,
        )


__all__ = ["EventsStatusService"]
