"""Live vibration snapshots of the demo: one accelerometer on a motor bearing, sent to ``POST /api/v1/data/waveforms``.

The demo waveform sensor (``DEMO_WAVEFORM_SENSOR``: a 6205 bearing on motor M-301, drive end, 1797 rpm) sends a
snapshot every ``every_s`` seconds (12 kHz, 2 s: 24,000 float32 samples, 96 KB as base64 ~128 KB). With faults on,
a bearing defect develops on a schedule (``fault_at``): healthy for ``first_fault_s``, then an outer-race, inner-race,
ball defect in turn, each for ``fault_duration_s``, one every ``fault_every_s``; between them the bearing is healthy
(a repair). The diagnosis agent names the defect, raises the motor's ``bearing-fault`` alert and the scheduling agent
opens its work order; healthy snapshots after the defect resolve the alert.

The waveform itself comes from ``signal`` (the physics simulator of ``core.ml.vibration.simulator``, passed in by
the CLI: the simulation layer does not import the ML pipelines). A snapshot that fails (API down, 5xx, 429) is
retried with exponential backoff until it is answered or the streamer stops; nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import httpx

WAVEFORMS_PATH = "/api/v1/data/waveforms"
#: fault (``none``, ``outer``, ``inner``, ``ball``), sampling rate, rpm, samples, generator → the waveform.
SignalSource = Callable[[str, float, float, int, np.random.Generator], NDArray[np.float64]]
FAULT_CYCLE = ("outer", "inner", "ball")


@dataclass(frozen=True, slots=True)
class WaveformSensorSpec:
    sensor_id: str
    asset_name: str
    bearing: str
    mounting: str
    nominal_rpm: float


#: The demo's accelerometer (registered by ``python -m apps.cli simulate --waveforms`` when missing).
DEMO_WAVEFORM_SENSOR = WaveformSensorSpec(
    "accel-m301-de", "M-301", "6205", "motor bearing, drive end, radial (accelerometer)", 1797.0
)


@dataclass(frozen=True, slots=True)
class WaveformPlan:
    sensor_id: str = DEMO_WAVEFORM_SENSOR.sensor_id
    sample_rate_hz: float = 12_000.0
    rpm: float = DEMO_WAVEFORM_SENSOR.nominal_rpm
    n_samples: int = 24_000
    every_s: float = 10.0
    faults: bool = True
    first_fault_s: float = 60.0
    fault_every_s: float = 600.0
    fault_duration_s: float = 120.0

    def fault_at(self, elapsed: float) -> str:
        """The bearing's condition ``elapsed`` seconds after the start: ``none`` or the defect in progress."""
        if not self.faults or elapsed < self.first_fault_s:
            return "none"
        k, into = divmod(elapsed - self.first_fault_s, self.fault_every_s)
        return FAULT_CYCLE[int(k) % len(FAULT_CYCLE)] if into < self.fault_duration_s else "none"


@dataclass
class WaveformStats:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    by_fault: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        faults = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_fault.items()))
        return f"snapshots sent={self.sent} accepted={self.accepted} duplicates={self.duplicates} ({faults})"


def encode(samples: NDArray[np.float64]) -> str:
    return base64.b64encode(np.asarray(samples, dtype="<f4").tobytes()).decode("ascii")


class WaveformStreamer:
    """Sends the plan's snapshots in real time until ``stop()`` or the duration (module docstring)."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        plan: WaveformPlan,
        signal: SignalSource,
        *,
        seed: int = 42,
        on_log: Callable[[str], None] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.plan = plan
        self._signal = signal
        self._rng = np.random.default_rng(seed)
        self._log = on_log or (lambda _message: None)
        self._client = client
        self._stopped = asyncio.Event()
        self.stats = WaveformStats()
        self.fatal: str | None = None

    def stop(self) -> None:
        self._stopped.set()

    def snapshot(self, elapsed: float, at: datetime) -> tuple[str, dict[str, Any]]:
        """(the condition, the request body) of the snapshot taken ``elapsed`` s after the start, at ``at``."""
        fault = self.plan.fault_at(elapsed)
        x = self._signal(fault, self.plan.sample_rate_hz, self.plan.rpm, self.plan.n_samples, self._rng)
        body = {
            "sensor_id": self.plan.sensor_id,
            "timestamp": at.astimezone(UTC).isoformat(),
            "sample_rate_hz": self.plan.sample_rate_hz,
            "rpm": self.plan.rpm,
            "samples_base64": encode(x),
        }
        return fault, body

    async def _send(self, client: httpx.AsyncClient, body: dict[str, Any]) -> bool:
        """POST until answered (True) or stopped (False); 4xx other than 429 is fatal (bad key, unregistered)."""
        import httpx

        delay = 0.5
        while not self._stopped.is_set():
            try:
                response = await client.post(
                    self.api_url + WAVEFORMS_PATH, json=body, headers={"X-API-Key": self.api_key}
                )
            except httpx.HTTPError as exc:
                self.stats.errors[type(exc).__name__] += 1
            else:
                if response.status_code == 202:
                    self.stats.accepted += 1
                    self.stats.duplicates += bool(response.json().get("duplicate"))
                    return True
                self.stats.errors[str(response.status_code)] += 1
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    self.fatal = f"the API refused a snapshot: {response.status_code} {response.text[:300]}"
                    self.stop()
                    return False
            try:
                await asyncio.wait_for(self._stopped.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, 30.0)
        return False

    async def run(self, duration: float | None = None) -> WaveformStats:
        import httpx

        client = self._client or httpx.AsyncClient(timeout=httpx.Timeout(30.0))
        started = time.monotonic()
        k = 0
        try:
            while not self._stopped.is_set():
                elapsed = k * self.plan.every_s
                if duration is not None and elapsed >= duration:
                    break
                wait = started + elapsed - time.monotonic()
                if wait > 0:
                    try:
                        await asyncio.wait_for(self._stopped.wait(), timeout=wait)
                        break
                    except TimeoutError:
                        pass
                fault, body = self.snapshot(elapsed, datetime.now(UTC))
                self.stats.sent += 1
                self.stats.by_fault[fault] += 1
                if k == 0 or fault != self.plan.fault_at(max(0.0, elapsed - self.plan.every_s)):
                    self._log(f"waveforms: {self.plan.sensor_id} bearing condition: {fault}")
                await self._send(client, body)
                k += 1
        finally:
            if self._client is None:
                await client.aclose()
        return self.stats


__all__ = [
    "DEMO_WAVEFORM_SENSOR",
    "WAVEFORMS_PATH",
    "SignalSource",
    "WaveformPlan",
    "WaveformSensorSpec",
    "WaveformStats",
    "WaveformStreamer",
    "encode",
]
