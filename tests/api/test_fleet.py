"""Fleet management routes: assets created and changed, sensors registered and linked to assets (admin scope),
with 404/409/422 problems and the links visible through the query API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from core.config import Settings
from tests.api.auth_support import bootstrap_headers, create_key, serve_app


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings) as (_, http):
        http.headers.update(bootstrap_headers(settings))
        yield http


def _tag() -> str:
    return f"fl-{uuid.uuid4().hex[:8]}"


async def test_asset_create_get_change_and_conflicts(client: httpx.AsyncClient) -> None:
    name = _tag()
    created = await client.post("/api/v1/assets", json={"name": name, "site": "plant-a", "kind": "pump"})
    assert created.status_code == 201, created.text
    asset = created.json()
    assert (asset["name"], asset["site"], asset["kind"]) == (name, "plant-a", "pump")

    got = await client.get(f"/api/v1/assets/{asset['id']}")
    assert got.status_code == 200 and got.json() == asset

    again = await client.post("/api/v1/assets", json={"name": name})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")

    changed = await client.patch(f"/api/v1/assets/{asset['id']}", json={"site": None, "kind": "compressor"})
    assert changed.status_code == 200
    assert (changed.json()["site"], changed.json()["kind"], changed.json()["name"]) == (
        None,
        "compressor",
        name,
    )

    other = (await client.post("/api/v1/assets", json={"name": _tag()})).json()
    clash = await client.patch(f"/api/v1/assets/{other['id']}", json={"name": name})
    assert clash.status_code == 409
    no_name = await client.patch(f"/api/v1/assets/{other['id']}", json={"name": None})
    assert no_name.status_code == 422
    assert (await client.get(f"/api/v1/assets/{other['id']}")).json()["name"] == other["name"]

    assert (await client.get("/api/v1/assets/987654321")).status_code == 404
    assert (await client.patch("/api/v1/assets/987654321", json={"site": "x"})).status_code == 404
    assert (await client.post("/api/v1/assets", json={"name": " "})).status_code == 422
    assert (await client.post("/api/v1/assets", json={"name": _tag(), "colour": "red"})).status_code == 422


async def test_sensor_registration_and_linking(client: httpx.AsyncClient) -> None:
    asset = (await client.post("/api/v1/assets", json={"name": _tag()})).json()
    sensor_id = f"{_tag()}-vib"
    body = {"sensor_id": sensor_id, "type": "vibration", "unit": "mm/s", "asset_id": asset["id"]}
    created = await client.post("/api/v1/sensors", json=body)
    assert created.status_code == 201, created.text
    sensor = created.json()
    assert (sensor["asset_id"], sensor["type"], sensor["status"]) == (asset["id"], "vibration", "active")
    assert sensor["last_reading_at"] is None

    assert (await client.post("/api/v1/sensors", json=body)).status_code == 409
    unknown_asset = await client.post(
        "/api/v1/sensors", json={"sensor_id": f"{_tag()}-t", "type": "temperature", "asset_id": 987654321}
    )
    assert unknown_asset.status_code == 422
    assert "asset 987654321 does not exist" in unknown_asset.json()["detail"]

    listed = await client.get("/api/v1/sensors", params={"asset_id": asset["id"]})
    assert [s["sensor_id"] for s in listed.json()["items"]] == [sensor_id]

    unlinked = await client.patch(
        f"/api/v1/sensors/{sensor_id}", json={"asset_id": None, "status": "inactive"}
    )
    assert unlinked.status_code == 200
    assert (unlinked.json()["asset_id"], unlinked.json()["status"]) == (None, "inactive")
    assert (await client.get("/api/v1/sensors", params={"asset_id": asset["id"]})).json()["items"] == []

    assert (await client.patch(f"/api/v1/sensors/{sensor_id}", json={"status": "broken"})).status_code == 422
    assert (
        await client.patch(f"/api/v1/sensors/{sensor_id}", json={"asset_id": 987654321})
    ).status_code == 422
    assert (await client.patch("/api/v1/sensors/no-such-sensor", json={"unit": "K"})).status_code == 404
    assert (await client.patch("/api/v1/sensors/no-such-sensor", json={})).status_code == 404


async def test_sensor_units_are_spelled_as_the_platform_converts_them(client: httpx.AsyncClient) -> None:
    """Readings in another unit are converted to the sensor's: its unit must be one the platform understands,
    stored in the canonical spelling (unit-aware alert rules compare it)."""
    sensor_id = f"{_tag()}-temp"
    created = await client.post("/api/v1/sensors", json={"sensor_id": sensor_id, "type": "temperature", "unit": "degC"})
    assert created.status_code == 201 and created.json()["unit"] == "°C"
    refused = await client.post(
        "/api/v1/sensors", json={"sensor_id": f"{_tag()}-x", "type": "temperature", "unit": "C"}
    )
    assert refused.status_code == 422 and "°C" in refused.text  # C is the coulomb: the hint says °C
    assert (await client.patch(f"/api/v1/sensors/{sensor_id}", json={"unit": "florps"})).status_code == 422
    patched = await client.patch(f"/api/v1/sensors/{sensor_id}", json={"unit": "degF"})
    assert patched.status_code == 200 and patched.json()["unit"] == "°F"


async def test_a_sensor_registered_by_ingest_is_linked_to_an_asset(client: httpx.AsyncClient) -> None:
    sensor_id = f"{_tag()}-temp"
    reading = {"sensor_id": sensor_id, "value": 21.5, "timestamp": datetime.now(UTC).isoformat()}
    ingested = await client.post("/api/v1/data/ingest", json=reading)
    assert ingested.status_code in (201, 202), ingested.text
    assert (await client.get(f"/api/v1/sensors/{sensor_id}")).json()["asset_id"] is None

    asset = (await client.post("/api/v1/assets", json={"name": _tag()})).json()
    linked = await client.patch(f"/api/v1/sensors/{sensor_id}", json={"asset_id": asset["id"]})
    assert linked.status_code == 200
    assert linked.json()["asset_id"] == asset["id"]
    assert linked.json()["last_reading_value"] == 21.5


async def test_changes_need_the_admin_scope(client: httpx.AsyncClient, settings: Settings) -> None:
    reader = await create_key(client, settings, "read")
    denied = await client.post("/api/v1/assets", json={"name": _tag()}, headers=reader.headers)
    assert denied.status_code == 403
    denied = await client.patch("/api/v1/sensors/x", json={"unit": "K"}, headers=reader.headers)
    assert denied.status_code == 403
    asset = (await client.post("/api/v1/assets", json={"name": _tag()})).json()
    assert (await client.get(f"/api/v1/assets/{asset['id']}", headers=reader.headers)).status_code == 200
