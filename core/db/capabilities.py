"""What the database offers: TimescaleDB, and the hourly continuous aggregate. A property of the database that only
a migration changes, so it is asked once per database and ``CAPABILITIES_TTL_S``, not per request or per agent
call (the query API's bucket source, the alerting agent's bounded reads)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import timescale

#: How long the answer of ``capabilities()`` is reused (seconds).
CAPABILITIES_TTL_S = 300.0

_TIMESCALE_SQL = text(timescale.INSTALLED_SQL)
_CAGG_SQL = text(timescale.hourly_cagg_exists_sql())


@dataclass(frozen=True, slots=True)
class Capabilities:
    timescale: bool
    hourly_aggregate: bool


_cache: dict[str, tuple[float, Capabilities]] = {}


async def capabilities(session: AsyncSession) -> Capabilities:
    """The capabilities of the session's database (cached per database URL for ``CAPABILITIES_TTL_S``)."""
    assert session.bind is not None
    # sync_engine: the bind may be an AsyncEngine or an AsyncConnection (which has no url of its own)
    key = session.bind.sync_engine.url.render_as_string(hide_password=True)
    cached = _cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < CAPABILITIES_TTL_S:
        return cached[1]
    has_timescale = bool(await session.scalar(_TIMESCALE_SQL))
    cagg = bool(await session.scalar(_CAGG_SQL)) if has_timescale else False
    caps = Capabilities(timescale=has_timescale, hourly_aggregate=cagg)
    _cache[key] = (now, caps)
    return caps


__all__ = ["CAPABILITIES_TTL_S", "Capabilities", "capabilities"]
