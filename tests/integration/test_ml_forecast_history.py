"""The forecast endpoint's history: bucket means at the model's frequency over the last N periods (a sensor
sending every few seconds, forecast by a model of 5-minute data, gets 5-minute means)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pandas as pd
from sqlalchemy import insert

from core.config import Settings
from core.db.session import create_engine, create_session_factory, unit_of_work
from core.fleet.models import Sensor
from core.ml.serving.repository import MlReadingsRepository
from core.ml.serving.service import _forecast_history, _model_frequency
from core.readings.models import SensorReading

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_history_is_bucketed_at_the_models_frequency(settings: Settings) -> None:
    sensor = f"fh-{uuid.uuid4().hex[:8]}"
    # 20 minutes at one reading every 3 s; value = minute index (so a 5-minute mean is known exactly)
    rows = [
        {"sensor_id": sensor, "timestamp": T0 + timedelta(seconds=3 * i), "value": float((3 * i) // 60)}
        for i in range(400)
    ]
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        factory = create_session_factory(engine)
        async with unit_of_work(factory) as session:
            await session.execute(insert(Sensor).values(sensor_id=sensor, type="temperature"))
            await session.execute(insert(SensorReading), rows)
        async with unit_of_work(factory) as session:
            repo = MlReadingsRepository(session)
            buckets = await repo.recent_buckets(sensor, timedelta(minutes=5), 3)
            five_min = SimpleNamespace(
                model=SimpleNamespace(metadata=SimpleNamespace(metadata={"freq_seconds": 300}))
            )
            no_freq = SimpleNamespace(model=SimpleNamespace(metadata=SimpleNamespace(metadata={})))
            via_model = await _forecast_history(repo, five_min, sensor, 3)
            raw = await _forecast_history(repo, no_freq, sensor, 3)
    finally:
        await engine.dispose()
    # the last reading is at 19:57; 15 minutes before it → buckets 12:05, 12:10, 12:15 (means of minutes 5-9, ...)
    assert [(t, v) for t, v in buckets] == [
        (T0 + timedelta(minutes=5), 7.0),
        (T0 + timedelta(minutes=10), 12.0),
        (T0 + timedelta(minutes=15), 17.0),
    ]
    assert via_model == buckets
    assert [t for t, _ in raw] == [T0 + timedelta(seconds=3 * i) for i in (397, 398, 399)]
    assert _model_frequency(five_min) == pd.Timedelta(minutes=5)
    assert _model_frequency(no_freq) is None
