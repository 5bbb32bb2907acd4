"""When the agents have handled everything a benchmark sent (bench-ingest's catch-up time)."""

from __future__ import annotations

import asyncio
import time

import asyncpg


def _caught_up_api(base: str, key: str, since: float, limit_s: float = 300.0) -> float | None:
    """With the agents in workers: seconds from ``since`` until ``GET /api/v1/admin/events`` answered idle three
    times in a row (outbox published and every consumer acknowledged everything), or None after ``limit_s``."""
    import httpx

    streak, idle_since = 0, None
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        while time.perf_counter() - since < limit_s:
            resp = client.get("/api/v1/admin/events")
            now = time.perf_counter()
            if resp.status_code == 200 and resp.json()["idle"]:
                streak, idle_since = streak + 1, idle_since or now
                if streak >= 3:
                    return idle_since - since
            else:
                streak, idle_since = 0, None
            time.sleep(0.2)
    return None


async def _caught_up(url: str, since: float, limit_s: float = 300.0) -> float | None:
    """Seconds from ``since`` until no outbox row is left unpublished for three polls in a row (the agents handled
    every event, and the events their handlers wrote), or None after ``limit_s``."""
    conn = await asyncpg.connect(url)
    try:
        empty_since: float | None = None
        zeros = 0
        while time.perf_counter() - since < limit_s:
            pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            now = time.perf_counter()
            if pending:
                zeros, empty_since = 0, None
            else:
                zeros, empty_since = zeros + 1, empty_since or now
                if zeros >= 3:
                    return empty_since - since
            await asyncio.sleep(0.2)
        return None
    finally:
        await conn.close()
