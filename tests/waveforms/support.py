"""Helpers of the waveform tests: a registered waveform sensor on a fresh asset, simulated snapshots."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import httpx
import numpy as np

from core.ml.vibration.simulator import simulate_signal

FS = 12_000.0
RPM = 1797.0


def samples_base64(fault: str, *, seed: int, n_samples: int = 24_000) -> str:
    """A simulated 6205 recording (fault ``outer``/``inner``/``ball``/``none``) as base64 float32."""
    x = simulate_signal(fault, fs=FS, rpm=RPM, n_samples=n_samples, rng=seed)
    return base64.b64encode(x.astype("<f4").tobytes()).decode()


def snapshot(sensor_id: str, at: datetime, fault: str = "none", *, seed: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "sensor_id": sensor_id,
        "timestamp": at.isoformat(),
        "sample_rate_hz": FS,
        "rpm": RPM,
        "samples_base64": samples_base64(fault, seed=seed),
        **extra,
    }


async def make_waveform_sensor(client: httpx.AsyncClient, **extra: Any) -> tuple[int, str]:
    """(asset id, sensor id) of a new asset with a registered 6205 waveform sensor (admin key on ``client``)."""
    tag = uuid.uuid4().hex[:10]
    asset = await client.post("/api/v1/assets", json={"name": f"wf-{tag}", "kind": "pump"})
    assert asset.status_code == 201, asset.text
    body = {
        "sensor_id": f"wf-{tag}",
        "asset_id": asset.json()["id"],
        "bearing": "6205",
        "mounting": "motor DE, radial",
        "nominal_rpm": RPM,
        **extra,
    }
    created = await client.post("/api/v1/waveform-sensors", json=body)
    assert created.status_code == 201, created.text
    return asset.json()["id"], body["sensor_id"]


def float32_rms(encoded: str) -> float:
    x = np.frombuffer(base64.b64decode(encoded), dtype="<f4").astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))
