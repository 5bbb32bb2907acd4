"""Waveform sensors and snapshots through the API: registration, snapshot ingest (base64 and JSON numbers),
duplicates, features as readings, and the 4xx problems of invalid requests."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from core.config import Settings
from core.waveforms.schemas import MAX_SAMPLES, MIN_SAMPLES
from tests.api.auth_support import bootstrap_headers, create_key, serve_app
from tests.waveforms.support import FS, float32_rms, make_waveform_sensor, snapshot

PATH = "/api/v1/data/waveforms"


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings) as (_, http):
        http.headers.update(bootstrap_headers(settings))
        yield http


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    return body


async def test_register_a_waveform_sensor_with_its_feature_sensors(client: httpx.AsyncClient) -> None:
    asset_id, sensor_id = await make_waveform_sensor(client, band_low_hz=1000.0, band_high_hz=4500.0)
    got = await client.get(f"/api/v1/waveform-sensors/{sensor_id}")
    assert got.status_code == 200
    body = got.json()
    assert (body["asset_id"], body["bearing"], body["nominal_rpm"], body["unit"]) == (asset_id, "6205", 1797.0, "g")
    assert (body["band_low_hz"], body["band_high_hz"]) == (1000.0, 4500.0)
    assert body["defect_orders"]["bpfo"] == pytest.approx(3.585, abs=1e-3)
    for feature, kind in ((body["rms_sensor_id"], "acceleration"), (body["kurtosis_sensor_id"], "kurtosis")):
        sensor = (await client.get(f"/api/v1/sensors/{feature}")).json()
        assert (sensor["type"], sensor["asset_id"]) == (kind, asset_id)
    assert (await client.get(f"/api/v1/sensors/{sensor_id}")).json()["type"] == "vibration_waveform"

    again = {"sensor_id": sensor_id, "asset_id": asset_id, "bearing": "6205", "nominal_rpm": 1800.0}
    _problem(await client.post("/api/v1/waveform-sensors", json=again), 409)
    unknown = await client.post(
        "/api/v1/waveform-sensors", json={**again, "sensor_id": "x-" + sensor_id, "bearing": "9999"}
    )
    assert "unknown bearing" in str(_problem(unknown, 422)["detail"])
    no_asset = {**again, "sensor_id": "y-" + sensor_id, "asset_id": 2_000_000_000}
    _problem(await client.post("/api/v1/waveform-sensors", json=no_asset), 422)
    band = {**again, "sensor_id": "z-" + sensor_id, "band_low_hz": 4000.0, "band_high_hz": 1000.0}
    _problem(await client.post("/api/v1/waveform-sensors", json=band), 422)
    _problem(await client.get("/api/v1/waveform-sensors/not-registered-here"), 404)
    bearings = (await client.get("/api/v1/waveform-sensors/bearings")).json()
    assert {"6205", "ZA-2115"} <= {b["name"] for b in bearings}


async def test_snapshot_stored_once_with_features_as_readings(client: httpx.AsyncClient) -> None:
    _, sensor_id = await make_waveform_sensor(client)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    body = snapshot(sensor_id, at, "none", seed=3)
    accepted = await client.post(PATH, json=body)
    assert accepted.status_code == 202, accepted.text
    reply = accepted.json()
    assert (reply["sample_count"], reply["duplicate"]) == (24_000, False)
    assert reply["event_id"] is not None
    assert reply["features"]["rms"] == pytest.approx(float32_rms(body["samples_base64"]), rel=1e-6)
    assert abs(reply["features"]["kurtosis"]) < 0.5  # Gaussian-like healthy vibration

    again = await client.post(PATH, json=body)
    assert again.status_code == 202
    assert (again.json()["snapshot_id"], again.json()["duplicate"], again.json()["event_id"]) == (
        reply["snapshot_id"],
        True,
        None,
    )
    readings = await client.get(
        f"/api/v1/sensors/{sensor_id}.rms/readings",
        params={"start": (at - timedelta(minutes=1)).isoformat(), "end": (at + timedelta(minutes=1)).isoformat()},
    )
    assert readings.status_code == 200, readings.text
    items = readings.json()["items"]
    assert len(items) == 1 and items[0]["value"] == pytest.approx(reply["features"]["rms"])

    # the same samples as JSON numbers: same features (a later timestamp, so a new snapshot)
    numbers = np.frombuffer(base64.b64decode(body["samples_base64"]), dtype="<f4").astype(float).tolist()
    as_json = {**body, "timestamp": (at + timedelta(seconds=1)).isoformat(), "samples": numbers}
    del as_json["samples_base64"]
    second = await client.post(PATH, json=as_json)
    assert second.status_code == 202, second.text
    assert second.json()["features"]["rms"] == pytest.approx(reply["features"]["rms"], rel=1e-6)


async def test_invalid_snapshots_are_clear_4xx_problems(client: httpx.AsyncClient, settings: Settings) -> None:
    _, sensor_id = await make_waveform_sensor(client)
    now = datetime.now(UTC)
    good = snapshot(sensor_id, now, "none", seed=4)

    def errors_of(response: httpx.Response) -> str:
        return str(_problem(response, 422))

    assert "exactly one" in errors_of(await client.post(PATH, json={**good, "samples": [0.0] * MIN_SAMPLES}))
    no_samples = {k: v for k, v in good.items() if k != "samples_base64"}
    assert "exactly one" in errors_of(await client.post(PATH, json=no_samples))
    assert "base64" in errors_of(await client.post(PATH, json={**good, "samples_base64": "not base64!"}))
    odd = base64.b64encode(b"\x00" * (4 * MIN_SAMPLES + 2)).decode()
    assert "whole number" in errors_of(await client.post(PATH, json={**good, "samples_base64": odd}))
    short = base64.b64encode(np.zeros(100, dtype="<f4").tobytes()).decode()
    assert "4,096" in errors_of(await client.post(PATH, json={**good, "samples_base64": short}))
    nan = np.zeros(MIN_SAMPLES, dtype="<f4")
    nan[7] = np.nan
    assert "index 7" in errors_of(
        await client.post(PATH, json={**good, "samples_base64": base64.b64encode(nan.tobytes()).decode()})
    )
    too_few = {**no_samples, "samples": [0.1] * 10}
    _problem(await client.post(PATH, json=too_few), 422)
    _problem(await client.post(PATH, json={**good, "sample_rate_hz": 0}), 422)
    _problem(await client.post(PATH, json={**good, "rpm": -5}), 422)
    _problem(await client.post(PATH, json={**good, "colour": "red"}), 422)
    future = {**good, "timestamp": (now + timedelta(hours=1)).isoformat()}
    assert "future" in errors_of(await client.post(PATH, json=future))
    unknown = {**good, "sensor_id": "never-registered-" + sensor_id}
    assert "POST /api/v1/waveform-sensors" in errors_of(await client.post(PATH, json=unknown))
    _problem(await client.post(PATH, content=b"{not json", headers={"content-type": "application/json"}), 422)

    # bounded body: over SM_MAX_REQUEST_BODY_BYTES is a 413 before the body is read
    big = {**no_samples, "samples_base64": "A" * (settings.max_request_body_bytes + 8)}
    _problem(await client.post(PATH, json=big), 413)
    assert MAX_SAMPLES * 4 >= settings.max_request_body_bytes  # the sample bound is not below the body bound

    # scopes: a read-only key may not send snapshots; no key is a 401
    reader = await create_key(client, settings, "read")
    _problem(await client.post(PATH, json=good, headers={"X-API-Key": reader.secret}), 403)
    _problem(await client.post(PATH, json=good, headers={"X-API-Key": ""}), 401)
    assert FS == good["sample_rate_hz"]
