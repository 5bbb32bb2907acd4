"""Through HTTP: readings ingested by the API reach the anomaly agent on the app's bus, a spike becomes one
anomaly and one published AnomalyDetected (no sleeps: polled with a deadline)."""

from __future__ import annotations

import orjson

from core.config import Settings
from tests.api.conftest import ClientFactory
from tests.api.ingest_support import INGEST, fetchval, headers, reading, sensor_prefix
from tests.support.events import wait_until


async def test_an_ingested_spike_becomes_an_anomaly(
    api: ClientFactory, settings: Settings, database_url: str
) -> None:
    sensor = f"{sensor_prefix()}-temp"
    normal = [
        reading(
            sensor,
            minutes_ago=100 - i,
            value=20.0 + 0.1 * ((i * 7) % 5 - 2),
            metadata={"sensor_type": "temperature"},
        )
        for i in range(40)
    ]
    async with api(settings) as client:
        first = await client.post(INGEST, content=orjson.dumps(normal), headers=headers(settings))
        assert first.status_code == 202, first.text
        spike = await client.post(
            INGEST,
            content=orjson.dumps([reading(sensor, minutes_ago=50, value=45.0)]),
            headers=headers(settings),
        )
        assert spike.status_code == 202, spike.text

        async def published() -> bool:
            count = await fetchval(
                database_url,
                "SELECT count(*) FROM outbox WHERE event_type = 'AnomalyDetected' "
                "AND payload->>'sensor_id' = $1 AND published_at IS NOT NULL",
                sensor,
            )
            return bool(count)

        await wait_until(published, timeout=15, what="AnomalyDetected published")

    rows = await fetchval(
        database_url,
        "SELECT json_agg(json_build_object('value', value, 'method', method)) FROM anomalies WHERE sensor_id = $1",
        sensor,
    )
    assert orjson.loads(rows) == [{"value": 45.0, "method": "robust_z"}]
