"""A reference that becomes ready supersedes the sensor's older ready ones and removes older ones that were
still learning (found in issue 12's concurrency runs: superseding a learning row, which has no median, broke
``ck_sensor_references_learned`` and made the anomaly handler fail)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from core.anomaly.reference_repository import ReferenceRepository
from core.config import Settings
from core.db.session import create_engine, create_session_factory, unit_of_work

T0 = datetime(2026, 6, 1, tzinfo=UTC)


async def test_ready_reference_supersedes_ready_ones_and_drops_unlearned_ones(settings: Settings) -> None:
    sid = f"ref-{uuid.uuid4().hex[:8]}"
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    factory = create_session_factory(engine)
    try:
        async with unit_of_work(factory) as session:
            await session.execute(text("INSERT INTO sensors (sensor_id, type) VALUES (:s, 'vibration')"), {"s": sid})
            repo = ReferenceRepository(session)
            for hours, reason in ((0, "first"), (10, "regime gap"), (20, "repair")):
                assert await repo.start(sid, kind="initial", started_at=T0 + timedelta(hours=hours), reason=reason)
            ids = {
                started: ref_id
                for ref_id, started in await session.execute(
                    text("SELECT id, started_at FROM sensor_references WHERE sensor_id = :s"), {"s": sid}
                )
            }
            learn = {"readings": 100, "median": 1.0, "scale": 0.1, "longest_run": 2}
            assert await repo.learned(ids[T0], ready_at=T0 + timedelta(hours=1), **learn)
            # the newest learns while the middle one is still learning
            assert await repo.learned(ids[T0 + timedelta(hours=20)], ready_at=T0 + timedelta(hours=21), **learn)
            rows = dict(
                (
                    await session.execute(
                        text("SELECT reason, status FROM sensor_references WHERE sensor_id = :s"), {"s": sid}
                    )
                ).all()
            )
            # learning it later changes nothing: it is gone
            assert not await repo.learned(ids[T0 + timedelta(hours=10)], ready_at=T0, **learn)
            current = (await repo.current([sid]))[sid]
    finally:
        await engine.dispose()
    assert rows == {"first": "superseded", "repair": "ready"}
    assert current.status == "ready" and current.started_at == T0 + timedelta(hours=20)
