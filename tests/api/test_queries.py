"""Query API (issue 4 point 6) on the real migrated database: assets, sensors with their last reading, readings
raw and bucketed (checked against a pure-Python computation over the inserted rows), keyset cursors, anomalies,
alerts, validation, the point limit and scopes. Every row this module inserts carries a unique ``q-…`` tag."""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from core.alerts.models import Alert
from core.anomaly.models import Anomaly
from core.config import Settings
from core.db.session import create_engine, create_session_factory, unit_of_work
from core.fleet.models import Asset, Sensor
from core.readings.models import SensorReading
from tests.api.auth_support import bootstrap_headers, create_key, serve_app

T0 = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(seconds=37)
N_READINGS = 2_600  # ~26.7 hours of one sensor
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
WIDTHS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}


@dataclass
class Seeded:
    tag: str
    site: str
    asset_ids: list[int] = field(default_factory=list)
    main_asset: int = 0
    sensors: list[str] = field(default_factory=list)
    readings: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    anomaly_ids: list[int] = field(default_factory=list)
    alert_ids: list[int] = field(default_factory=list)

    @property
    def busy(self) -> str:
        return self.sensors[0]


@pytest.fixture(scope="module")
async def seeded(settings: Settings) -> AsyncIterator[Seeded]:
    tag = f"q-{uuid.uuid4().hex[:8]}"
    data = Seeded(tag=tag, site=f"{tag}-site")
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            assets = [
                Asset(name=f"{tag}-asset-{i}", site=data.site, kind="pump" if i % 2 == 0 else "fan")
                for i in range(5)
            ]
            assets.append(Asset(name=f"{tag}-asset-other", site=f"{tag}-elsewhere", kind="pump"))
            session.add_all(assets)
            await session.flush()
            data.asset_ids = [a.id for a in assets[:5]]
            data.main_asset = assets[0].id
            sensors = [
                Sensor(
                    sensor_id=f"{tag}-s{i}",
                    asset_id=data.main_asset,
                    type="vibration" if i % 2 == 0 else "temperature",
                    unit="mm/s" if i % 2 == 0 else "C",
                    status="inactive" if i == 6 else "active",
                )
                for i in range(7)
            ]
            session.add_all(sensors)
            await session.flush()
            data.sensors = [s.sensor_id for s in sensors]

            busy = [(T0 + i * STEP, round(rng.gauss(10, 3), 4)) for i in range(N_READINGS)]
            data.readings[data.busy] = busy
            # recent readings for the default range (s1), one older than 24 h; a few for s3..s5; none for s2, s6
            data.readings[data.sensors[1]] = [
                (now - timedelta(hours=25), 1.0),
                (now - timedelta(hours=2), 2.0),
                (now - timedelta(minutes=5), 3.0),
            ]
            for k in (3, 4, 5):
                data.readings[data.sensors[k]] = [
                    (T0 + timedelta(minutes=m * k), float(m + k)) for m in range(4)
                ]
            rows = [
                {"timestamp": ts, "sensor_id": sid, "value": value, "unit": None, "quality": 1.0}
                for sid, values in data.readings.items()
                for ts, value in values
            ]
            for i in range(0, len(rows), 1000):
                await session.execute(insert(SensorReading), rows[i : i + 1000])

            anomalies = [
                Anomaly(
                    sensor_id=data.sensors[i % 2],
                    timestamp=T0 + timedelta(minutes=10 * i),
                    value=float(i),
                    score=float(i % 5) + 0.5,
                    method="baseline" if i % 3 else "model",
                )
                for i in range(12)
            ]
            session.add_all(anomalies)
            severities = ["low", "medium", "high", "critical"]
            alerts = [
                Alert(
                    sensor_id=data.sensors[i % 3],
                    rule=f"{tag}-rule-{i % 2}",
                    severity=severities[i % 4],
                    status="resolved",
                    opened_at=T0 + timedelta(hours=i),
                    resolved_at=T0 + timedelta(hours=i, minutes=30),
                    anomaly_count=i + 1,
                )
                for i in range(8)
            ]
            alerts.append(
                Alert(
                    sensor_id=data.busy,
                    rule=f"{tag}-rule-0",
                    severity="high",
                    status="open",
                    opened_at=T0 + timedelta(hours=20),
                    anomaly_count=3,
                )
            )
            alerts.append(
                Alert(
                    sensor_id=data.sensors[1],
                    rule=f"{tag}-rule-1",
                    severity="critical",
                    status="acknowledged",
                    opened_at=T0 + timedelta(hours=21),
                    acknowledged_at=T0 + timedelta(hours=22),
                    anomaly_count=2,
                )
            )
            session.add_all(alerts)
            await session.flush()
            data.anomaly_ids = [a.id for a in anomalies]
            data.alert_ids = [a.id for a in alerts]
        yield data
    finally:
        await engine.dispose()


def _iso(value: datetime) -> str:
    return value.isoformat()


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _get(client: httpx.AsyncClient, settings: Settings, url: str, **params: Any) -> httpx.Response:
    return await client.get(url, params=params, headers=bootstrap_headers(settings))


async def _all_pages(
    client: httpx.AsyncClient, settings: Settings, url: str, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        response = await _get(client, settings, url, limit=2, offset=offset, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        offset += 2
        if offset >= body["total"]:
            assert len(items) == body["total"]
            return items


# --- assets -----------------------------------------------------------------------------------------------------
async def test_assets_filters_sort_and_pages(settings: Settings, seeded: Seeded) -> None:
    async with serve_app(settings) as (_, client):
        everything = await _all_pages(client, settings, "/api/v1/assets", site=seeded.site, sort="-name")
        pumps = (await _get(client, settings, "/api/v1/assets", site=seeded.site, kind="pump")).json()
    names = [a["name"] for a in everything]
    assert names == sorted((f"{seeded.tag}-asset-{i}" for i in range(5)), reverse=True)
    assert len(set(names)) == 5  # every row exactly once
    assert pumps["total"] == 3 and {a["kind"] for a in pumps["items"]} == {"pump"}


# --- sensors ----------------------------------------------------------------------------------------------------
async def test_sensors_filters_sort_pages_and_last_reading(settings: Settings, seeded: Seeded) -> None:
    async with serve_app(settings) as (_, client):
        everything = await _all_pages(client, settings, "/api/v1/sensors", asset_id=seeded.main_asset)
        vib = (
            await _get(client, settings, "/api/v1/sensors", asset_id=seeded.main_asset, type="vibration")
        ).json()
        inactive = (
            await _get(client, settings, "/api/v1/sensors", asset_id=seeded.main_asset, status="inactive")
        ).json()
        by_last = (
            await _get(
                client, settings, "/api/v1/sensors", asset_id=seeded.main_asset, sort="-last_reading_at"
            )
        ).json()
    assert [s["sensor_id"] for s in everything] == sorted(seeded.sensors)
    for item in everything:
        readings = seeded.readings.get(item["sensor_id"])
        if readings:
            ts, value = max(readings)
            assert _ts(item["last_reading_at"]) == ts and item["last_reading_value"] == value
        else:
            assert item["last_reading_at"] is None and item["last_reading_value"] is None
    assert vib["total"] == 4 and {s["type"] for s in vib["items"]} == {"vibration"}
    assert [s["sensor_id"] for s in inactive["items"]] == [seeded.sensors[6]]
    ordered = [s["sensor_id"] for s in by_last["items"]]
    assert ordered[0] == seeded.sensors[1]  # the most recent reading
    assert set(ordered[-2:]) == {seeded.sensors[2], seeded.sensors[6]}  # no readings: last


async def test_get_sensor_and_unknown_sensor(settings: Settings, seeded: Seeded) -> None:
    async with serve_app(settings) as (_, client):
        found = await _get(client, settings, f"/api/v1/sensors/{seeded.busy}")
        missing = await _get(client, settings, f"/api/v1/sensors/{seeded.tag}-nope")
        missing_readings = await _get(client, settings, f"/api/v1/sensors/{seeded.tag}-nope/readings")
    assert found.status_code == 200
    assert found.json()["sensor_id"] == seeded.busy and found.json()["asset_id"] == seeded.main_asset
    for response in (missing, missing_readings):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 404 and "does not exist" in response.json()["detail"]


# --- readings ---------------------------------------------------------------------------------------------------
async def _follow(
    client: httpx.AsyncClient, settings: Settings, url: str, **params: Any
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await _get(client, settings, url, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000


async def test_raw_readings_cursor_round_trip_covers_every_row_once(
    settings: Settings, seeded: Seeded
) -> None:
    start, end = T0 + timedelta(minutes=13, seconds=5), T0 + timedelta(hours=3, minutes=1)
    expected = [(ts, v) for ts, v in seeded.readings[seeded.busy] if start <= ts < end]
    async with serve_app(settings) as (_, client):
        pages = await _follow(
            client,
            settings,
            f"/api/v1/sensors/{seeded.busy}/readings",
            start=_iso(start),
            end=_iso(end),
            limit=47,
        )
    assert all(len(p) == 47 for p in pages[:-1]) and 0 < len(pages[-1]) <= 47
    got = [(_ts(p["timestamp"]), p["value"]) for page in pages for p in page]
    assert got == expected
    assert all(p["count"] is None and p["quality"] == 1.0 for page in pages for p in page)


def _python_buckets(
    rows: list[tuple[datetime, float]], start: datetime, end: datetime, width: timedelta, agg: str
) -> list[tuple[datetime, float, int]]:
    groups: dict[datetime, list[float]] = defaultdict(list)
    for ts, value in rows:
        if start <= ts < end:
            groups[EPOCH + ((ts - EPOCH) // width) * width].append(value)
    fn = {"avg": lambda v: sum(v) / len(v), "min": min, "max": max, "count": lambda v: float(len(v))}[agg]
    return [(b, fn(v), len(v)) for b, v in sorted(groups.items())]


@pytest.mark.parametrize("bucket", ["1m", "5m", "1h", "1d"])
async def test_bucket_aggregates_equal_a_python_computation(
    settings: Settings, seeded: Seeded, bucket: str
) -> None:
    start, end = T0 + timedelta(minutes=7, seconds=3), T0 + timedelta(hours=26, minutes=11)
    async with serve_app(settings) as (_, client):
        for agg in ("avg", "min", "max", "count"):
            response = await _get(
                client,
                settings,
                f"/api/v1/sensors/{seeded.busy}/readings",
                start=_iso(start),
                end=_iso(end),
                bucket=bucket,
                agg=agg,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["source"] in {"date_bin", "time_bucket", "hourly_aggregate"}
            assert body["bucket"] == bucket and body["agg"] == agg and body["next_cursor"] is None
            expected = _python_buckets(seeded.readings[seeded.busy], start, end, WIDTHS[bucket], agg)
            got = [(_ts(p["timestamp"]), p["value"], p["count"]) for p in body["items"]]
            assert [g[0] for g in got] == [e[0] for e in expected]
            assert [g[2] for g in got] == [e[2] for e in expected]
            for (_, value, _), (_, want, _) in zip(got, expected, strict=True):
                assert math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-9)


async def test_bucketed_cursor_round_trip(settings: Settings, seeded: Seeded) -> None:
    start, end = T0, T0 + timedelta(hours=5)
    url = f"/api/v1/sensors/{seeded.busy}/readings"
    async with serve_app(settings) as (_, client):
        whole = (
            await _get(client, settings, url, start=_iso(start), end=_iso(end), bucket="5m", agg="max")
        ).json()
        pages = await _follow(
            client, settings, url, start=_iso(start), end=_iso(end), bucket="5m", agg="max", limit=7
        )
    assert len(whole["items"]) == 60
    assert [p for page in pages for p in page] == whole["items"]
    assert len(pages) == math.ceil(60 / 7)


async def test_default_range_is_the_last_24_hours(settings: Settings, seeded: Seeded) -> None:
    async with serve_app(settings) as (_, client):
        body = (await _get(client, settings, f"/api/v1/sensors/{seeded.sensors[1]}/readings")).json()
    assert [p["value"] for p in body["items"]] == [2.0, 3.0]
    assert _ts(body["end"]) - _ts(body["start"]) == timedelta(hours=24)
    assert body["source"] == "raw" and body["bucket"] is None


async def test_point_limit(settings: Settings, seeded: Seeded) -> None:
    small = settings.model_copy(update={"query_max_points": 50})
    url = f"/api/v1/sensors/{seeded.busy}/readings"
    span = {"start": _iso(T0), "end": _iso(T0 + timedelta(hours=10))}
    async with serve_app(small) as (_, client):
        capped = await _get(client, small, url, **span)
        too_many = await _get(client, small, url, limit=51, **span)
        pages = await _follow(client, small, url, **span)
    assert capped.status_code == 200
    assert len(capped.json()["items"]) == 50 and capped.json()["limit"] == 50 and capped.json()["next_cursor"]
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["loc"] == ["query", "limit"]
    expected = [ts for ts, _ in seeded.readings[seeded.busy] if T0 <= ts < T0 + timedelta(hours=10)]
    assert [_ts(p["timestamp"]) for page in pages for p in page] == expected


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-01-05T00:00:00"},  # naive
        {"start": "2026-01-05T00:00:00", "end": "2026-01-06T00:00:00"},  # naive both
        {"start": "2026-01-06T00:00:00Z", "end": "2026-01-05T00:00:00Z"},  # reversed
        {"start": "2026-01-05T00:00:00Z", "end": "2026-01-05T00:00:00Z"},  # empty
        {"start": "2999-01-01T00:00:00Z"},  # after the default end (now)
        {"bucket": "2h"},
        {"bucket": "1h", "agg": "median"},
        {"agg": "avg"},  # agg without bucket
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJ2IjoxfQ"},  # valid base64 of {"v":1}, no timestamp
        {"limit": 0},
    ],
)
async def test_invalid_readings_queries_are_422(
    settings: Settings, seeded: Seeded, params: dict[str, Any]
) -> None:
    async with serve_app(settings) as (_, client):
        response = await _get(client, settings, f"/api/v1/sensors/{seeded.busy}/readings", **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- anomalies and alerts ---------------------------------------------------------------------------------------
async def test_anomalies_filters_sort_and_pages(settings: Settings, seeded: Seeded) -> None:
    busy, other = seeded.busy, seeded.sensors[1]
    url = "/api/v1/anomalies"
    async with serve_app(settings) as (_, client):
        newest_first = await _all_pages(client, settings, url, sensor_id=busy)
        by_score = (await _get(client, settings, url, sensor_id=busy, sort="-score")).json()["items"]
        model = (await _get(client, settings, url, sensor_id=busy, method="model")).json()
        high = (await _get(client, settings, url, sensor_id=other, min_score=3.5)).json()
        window = (
            await _get(
                client,
                settings,
                url,
                sensor_id=busy,
                start=_iso(T0 + timedelta(minutes=20)),
                end=_iso(T0 + timedelta(minutes=60)),
            )
        ).json()
        reversed_window = await _get(client, settings, url, start=_iso(T0 + timedelta(hours=1)), end=_iso(T0))
    times = [_ts(a["timestamp"]) for a in newest_first]
    assert len(times) == 6 and times == sorted(times, reverse=True)
    assert len({a["id"] for a in newest_first}) == 6
    scores = [a["score"] for a in by_score]
    assert scores == sorted(scores, reverse=True)
    assert model["total"] == 2 and {a["method"] for a in model["items"]} == {"model"}  # i = 0, 6
    assert {a["score"] for a in high["items"]} == {3.5, 4.5} and high["total"] == 2  # i = 3 and 9
    assert [a["value"] for a in window["items"]] == [4.0, 2.0]  # minutes 40 and 20; 60 excluded
    assert reversed_window.status_code == 422


async def test_alerts_filters_sort_and_pages(settings: Settings, seeded: Seeded) -> None:
    url = "/api/v1/alerts"
    rule0, rule1 = f"{seeded.tag}-rule-0", f"{seeded.tag}-rule-1"
    async with serve_app(settings) as (_, client):
        mine0 = await _all_pages(client, settings, url, rule=rule0)
        mine1 = await _all_pages(client, settings, url, rule=rule1, sort="anomaly_count")
        open_ = (await _get(client, settings, url, rule=rule0, status="open")).json()
        critical = (await _get(client, settings, url, rule=rule1, severity="critical")).json()
        per_sensor = (await _get(client, settings, url, rule=rule0, sensor_id=seeded.busy)).json()
        bad = await _get(client, settings, url, status="closed")
    assert len(mine0) + len(mine1) == len(seeded.alert_ids)
    assert {a["id"] for a in mine0 + mine1} == set(seeded.alert_ids)
    opened = [_ts(a["opened_at"]) for a in mine0]
    assert opened == sorted(opened, reverse=True)
    counts = [a["anomaly_count"] for a in mine1]
    assert counts == sorted(counts)
    assert open_["total"] == 1 and open_["items"][0]["status"] == "open"
    assert {a["severity"] for a in critical["items"]} == {"critical"} and critical[
        "total"
    ] == 3  # i=3, 7, ack
    assert {a["sensor_id"] for a in per_sensor["items"]} == {seeded.busy}
    assert per_sensor["total"] == 3  # resolved i = 0 and 6 (even rule, i % 3 == 0), and the open one
    assert bad.status_code == 422


# --- scopes -----------------------------------------------------------------------------------------------------
async def test_every_query_route_needs_the_read_scope(settings: Settings, seeded: Seeded) -> None:
    urls = [
        "/api/v1/assets",
        "/api/v1/sensors",
        f"/api/v1/sensors/{seeded.busy}",
        f"/api/v1/sensors/{seeded.busy}/readings",
        "/api/v1/anomalies",
        "/api/v1/alerts",
    ]
    async with serve_app(settings) as (_, client):
        ingest_key = await create_key(client, settings, "ingest")
        read_key = await create_key(client, settings, "read")
        for url in urls:
            assert (await client.get(url)).status_code == 401, url
            assert (await client.get(url, headers=ingest_key.headers)).status_code == 403, url
            assert (await client.get(url, headers=read_key.headers)).status_code == 200, url
