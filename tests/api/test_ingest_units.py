"""Units at ingest through the real HTTP API: converted into the sensor's unit and stored so, or rejected per item
with the reason; atomic mode; unit-less readings; a sensor without a unit adopts the first one; auto-registration
picks the reading's or the catalogue's unit; concurrent adoption and registration."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from core.config import Settings, to_libpq_url
from core.db.session import create_engine, create_session_factory, unit_of_work
from core.ingest.repository import IngestRepository
from core.ingest.schemas import ValidReading
from core.ingest.sensors import (
    Registration,
    Resolved,
    register,
    resolve_sensors,
    with_sensors_registered,
)
from tests.api.ingest_support import (
    BASE,
    count_readings,
    execute,
    fetchval,
    headers,
    outbox_rows,
    post,
    reading,
    register_sensor,
)


async def add_sensor(database_url: str, sensor_id: str, sensor_type: str, unit: str | None) -> None:
    await execute(
        database_url,
        "INSERT INTO sensors (sensor_id, type, unit) VALUES ($1, $2, $3)",
        sensor_id,
        sensor_type,
        unit,
    )


async def api_values(client: httpx.AsyncClient, settings: Settings, sensor_id: str) -> list[float]:
    """The sensor's readings, oldest first, as the query API returns them."""
    response = await client.get(f"/api/v1/sensors/{sensor_id}/readings", headers=headers(settings))
    assert response.status_code == 200, response.text
    return [point["value"] for point in response.json()["items"]]


async def api_unit(client: httpx.AsyncClient, settings: Settings, sensor_id: str) -> str | None:
    response = await client.get(f"/api/v1/sensors/{sensor_id}", headers=headers(settings))
    assert response.status_code == 200, response.text
    return response.json()["unit"]  # type: ignore[no-any-return]


async def stored_units(database_url: str, sensor_id: str) -> list[str | None]:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        rows = await conn.fetch(
            "SELECT unit FROM sensor_readings WHERE sensor_id = $1 ORDER BY timestamp", sensor_id
        )
        return [row["unit"] for row in rows]
    finally:
        await conn.close()


async def sensor_row(database_url: str, sensor_id: str) -> tuple[str, str | None]:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        row = await conn.fetchrow("SELECT type, unit FROM sensors WHERE sensor_id = $1", sensor_id)
        assert row is not None, sensor_id
        return row["type"], row["unit"]
    finally:
        await conn.close()


async def test_other_units_are_converted_or_rejected_per_item(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    sid = f"{prefix}-vib"
    await add_sensor(database_url, sid, "vibration", "mm/s")
    body = [
        reading(sid, minutes_ago=50, value=1.0, unit="in/s"),
        reading(sid, minutes_ago=40, value=2.0, unit="mm/s"),
        reading(sid, minutes_ago=30, value=3.0, unit="g"),
        reading(sid, minutes_ago=20, value=4.0),
        reading(sid, minutes_ago=15, value=5.0, unit="furlongz"),
        reading(sid, minutes_ago=10, value=0.12, unit="in/s"),  # the README's example
    ]
    response = await post(client, settings, body)
    assert response.status_code == 202, response.text
    data = response.json()
    assert data["accepted"] == 4 and data["duplicates"] == 0
    assert data["rejected"] == [
        {"index": 2, "reason": f"unit: 'g' cannot be converted to {sid}'s unit 'mm/s'"},
        {"index": 4, "reason": f"unit: 'furlongz' is not a unit the platform knows ({sid}'s unit is 'mm/s')"},
    ]
    assert await api_values(client, settings, sid) == pytest.approx([25.4, 2.0, 4.0, 3.048], rel=1e-12)
    # converted readings carry the sensor's unit; the unit-less one is the sensor's unit (stored without one)
    assert await stored_units(database_url, sid) == ["mm/s", "mm/s", None, "mm/s"]
    assert await api_unit(client, settings, sid) == "mm/s"


async def test_atomic_stores_nothing_when_a_unit_does_not_convert(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    sid = f"{prefix}-temp"
    await add_sensor(database_url, sid, "temperature", "°C")
    body = [
        reading(sid, minutes_ago=3, value=212.0, unit="°F"),
        reading(sid, minutes_ago=2, value=20.0, unit="C"),
        reading(f"{prefix}-new", minutes_ago=1, value=1.0, unit="V"),
    ]
    response = await post(client, settings, body, atomic="true")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [r["index"] for r in problem["rejected"]] == [1]
    assert problem["rejected"][0]["reason"].startswith(f"unit: 'C' cannot be converted to {sid}'s unit '°C'")
    assert await count_readings(database_url, prefix) == 0
    assert (
        await fetchval(database_url, "SELECT count(*) FROM sensors WHERE sensor_id = $1", f"{prefix}-new")
        == 0
    )

    del body[1]
    response = await post(client, settings, body, atomic="true")
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 2
    assert await api_values(client, settings, sid) == pytest.approx([100.0], abs=1e-9)
    assert await outbox_rows(database_url, response.json()["event_id"]) == 1


async def test_single_readings_through_group_commit(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    """One reading per request takes the group committer (and its sensor cache): same rules."""
    sid = f"{prefix}-temp"
    await add_sensor(database_url, sid, "temperature", "°C")
    first = await post(client, settings, reading(sid, minutes_ago=3, value=21.5, unit="°C"))
    assert first.status_code == 202 and first.json()["accepted"] == 1, first.text
    kelvin = await post(client, settings, reading(sid, minutes_ago=2, value=300.0, unit="K"))  # cached sensor
    assert kelvin.status_code == 202 and kelvin.json()["accepted"] == 1, kelvin.text
    bad = await post(client, settings, reading(sid, minutes_ago=1, value=1.0, unit="bar"))
    assert bad.status_code == 422, bad.text
    assert bad.json()["rejected"] == [
        {"index": 0, "reason": f"unit: 'bar' cannot be converted to {sid}'s unit '°C'"}
    ]
    assert await api_values(client, settings, sid) == pytest.approx([21.5, 26.85], abs=1e-9)
    assert await stored_units(database_url, sid) == ["°C", "°C"]


async def test_sensor_without_unit_adopts_the_first_one(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    sid = f"{prefix}-nounit"
    await register_sensor(database_url, sid, "vibration")  # registered by hand without a unit
    assert (await sensor_row(database_url, sid))[1] is None
    first = await post(client, settings, [reading(sid, minutes_ago=9, value=7.0)])
    assert first.status_code == 202 and first.json()["accepted"] == 1
    assert await api_unit(client, settings, sid) is None  # a unit-less reading gives it none
    body = [
        reading(sid, minutes_ago=8, value=1.0, unit="in/s"),
        reading(sid, minutes_ago=7, value=25.4, unit="mm/s"),
        reading(sid, minutes_ago=6, value=230.0, unit="V"),
    ]
    response = await post(client, settings, body)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 2
    assert response.json()["rejected"] == [
        {"index": 2, "reason": f"unit: 'V' cannot be converted to {sid}'s unit 'in/s'"}
    ]
    assert await api_unit(client, settings, sid) == "in/s"
    assert await api_values(client, settings, sid) == pytest.approx([7.0, 1.0, 1.0], rel=1e-12)
    later = await post(client, settings, reading(sid, minutes_ago=5, value=50.8, unit="mm/s"))
    assert later.status_code == 202 and later.json()["accepted"] == 1
    assert (await api_values(client, settings, sid))[-1] == pytest.approx(2.0, rel=1e-12)


async def test_auto_registration_takes_the_reading_unit_else_the_catalogue_unit(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    body = [
        reading(f"{prefix}-vib", minutes_ago=5, metadata={"sensor_type": "vibration"}),
        reading(
            f"{prefix}-temp", minutes_ago=5, value=212.0, unit="degF", metadata={"sensor_type": "temperature"}
        ),
        reading(f"{prefix}-acc", minutes_ago=5, value=0.5, metadata={"sensor_type": "acceleration"}),
        reading(f"{prefix}-acc", minutes_ago=4, value=9.80665, unit="m/s²"),
        reading(f"{prefix}-kurt", minutes_ago=5, value=0.2, metadata={"sensor_type": "kurtosis"}),
        reading(f"{prefix}-flow", minutes_ago=5, value=3.0, metadata={"sensor_type": "flow"}),
        reading(f"{prefix}-late", minutes_ago=5, value=3.0),
        reading(f"{prefix}-late", minutes_ago=4, value=4.0, unit="l/min"),
        reading(f"{prefix}-late", minutes_ago=3, value=1.0, unit="l/s"),
    ]
    response = await post(client, settings, body)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(body) and response.json()["rejected"] == []
    assert await sensor_row(database_url, f"{prefix}-vib") == ("vibration", "mm/s")  # catalogue unit
    assert await sensor_row(database_url, f"{prefix}-temp") == (
        "temperature",
        "°F",
    )  # the reading's, normalised
    assert await sensor_row(database_url, f"{prefix}-acc") == ("acceleration", "g")  # g = standard gravity
    assert await sensor_row(database_url, f"{prefix}-kurt") == ("kurtosis", "")  # dimensionless
    assert await sensor_row(database_url, f"{prefix}-flow") == ("flow", None)  # not in the catalogue
    assert await sensor_row(database_url, f"{prefix}-late") == ("unknown", "l/min")  # first unit received
    assert await api_values(client, settings, f"{prefix}-temp") == [212.0]
    assert await api_values(client, settings, f"{prefix}-acc") == pytest.approx([0.5, 1.0], rel=1e-12)
    assert await api_values(client, settings, f"{prefix}-late") == pytest.approx([3.0, 4.0, 60.0], rel=1e-12)


async def test_a_non_finite_converted_value_is_rejected(
    client: httpx.AsyncClient, settings: Settings, database_url: str, prefix: str
) -> None:
    sid = f"{prefix}-vib"
    await add_sensor(database_url, sid, "vibration", "mm/s")
    response = await post(
        client, settings, [reading(sid, value=1e308, unit="in/s"), reading(sid, 2, value=1.0)]
    )
    assert response.status_code == 202, response.text
    assert response.json()["rejected"] == [
        {"index": 0, "reason": f"value: 1e+308 in/s is not finite in {sid}'s unit 'mm/s'"}
    ]
    assert await count_readings(database_url, prefix) == 1


def _valid(sensor_id: str, value: float, unit: str | None, minutes: int) -> ValidReading:
    return ValidReading(0, sensor_id, value, BASE.replace(minute=minutes), unit, None, None)


@pytest.mark.parametrize("registered", [False, True])
async def test_concurrent_first_unit_loses_to_the_committed_one(
    settings: Settings, database_url: str, prefix: str, registered: bool
) -> None:
    """Two batches give one sensor its first unit (adoption of a unit-less sensor, or registration of a new
    one): the batch whose registration commits second finds the sensor's unit set, plans again with it and
    converts into it instead of storing its own."""
    sid = f"{prefix}-race"
    if registered:
        await register_sensor(database_url, sid, "vibration")
    winner = (
        Registration([], {sid: "in/s"}) if registered else Registration([(sid, None, "in/s")], {})
    )
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    plans: list[Resolved] = []

    async def work() -> Resolved:
        async with unit_of_work(factory) as session:
            resolved = await resolve_sensors(
                IngestRepository(session), [_valid(sid, 25.4, "mm/s", 2)], auto_register=True
            )
            plans.append(resolved)
            if len(plans) == 1:  # the other batch commits its registration between this plan and its own
                await register(factory, winner)
            resolved.require_registered()
            return resolved

    try:
        lost = await with_sensors_registered(factory, work)
    finally:
        await engine.dispose()
    assert plans[0].pending is not None and plans[0].units[sid] == "mm/s"  # planned with its own unit first
    assert len(plans) == 2 and lost.pending is None
    assert lost.units[sid] == "in/s"
    assert [(r.value, r.unit) for r in lost.readings] == [(pytest.approx(1.0, rel=1e-12), "in/s")]
    assert (await sensor_row(database_url, sid))[1] == "in/s"
