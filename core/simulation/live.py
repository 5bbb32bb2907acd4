"""Live demo simulator: realistic readings streamed in real time through the ingest API, faults on a schedule.

The physics are the demo fleet's (:mod:`core.simulation.catalogue`): ``baseline + daily cycle + AR(1) noise``
per sensor type, with per-sensor baseline, amplitude and peak hour drawn from the seed. Time is real: reading
``k`` of a sensor is stamped ``t0 + k · period`` (``period = sensors / rate``), so every reading has a distinct
timestamp and the rate holds however the ticks fall.

Faults (``--faults``): :mod:`core.simulation.live_faults`.

Sending (:class:`LiveSimulator`): each tick the readings that are due are cut into batches and queued; ``senders``
concurrent workers POST them. A batch that fails (API down, 5xx, 429) is retried with exponential backoff until
it is answered — nothing is dropped silently; what is still unsent at the stop is reported as ``unsent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from core.simulation.catalogue import DEMO_SENSORS, PROFILES, SensorSpec, SensorTypeProfile
from core.simulation.live_faults import (
    LiveFault,
    fault_effect,
)

if TYPE_CHECKING:
    import httpx

INGEST_PATH = "/api/v1/data/ingest"
#: One item of the ingest API's JSON body: ``sensor_id``, ``timestamp`` (ISO 8601), ``value``, ``unit``, ``quality``.
IngestItem = dict[str, Any]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(text: str) -> float:
    """``"50/s"``, ``"600/min"``, ``"3600/h"`` → readings per second (> 0)."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"invalid rate {text!r}: expected N/s, N/min or N/h")
    rate = float(match.group(1)) / _UNIT_S[match.group(2).lower()]
    if rate <= 0:
        raise ValueError("the rate must be positive")
    return rate


# --- fleet --------------------------------------------------------------------------------------------------
def live_fleet(sensors: int, fleet: str = "demo") -> tuple[SensorSpec, ...]:
    """``sensors`` sensor specs: the demo fleet's ``sensor-001``… (then ``sim-016``… beyond its 15) or, with
    ``fleet="sim"``, ``sim-001``… with the five types in turn."""
    if sensors < 1:
        raise ValueError("at least one sensor")
    if fleet not in ("demo", "sim"):
        raise ValueError("fleet must be 'demo' or 'sim'")
    types = list(PROFILES.values())
    out: list[SensorSpec] = list(DEMO_SENSORS[:sensors]) if fleet == "demo" else []
    for n in range(len(out) + 1, sensors + 1):
        p = types[(n - 1) % len(types)]
        out.append(SensorSpec(f"sim-{n:03d}", "SIM", p.type, p.unit, "simulated"))
    return tuple(out)


# --- physics ------------------------------------------------------------------------------------------------
class LiveSensor:
    """One sensor's healthy signal (demo physics) plus the faults scheduled for it."""

    def __init__(self, spec: SensorSpec, number: int, seed: int, faults: Sequence[LiveFault] = ()) -> None:
        self.spec = spec
        self.profile: SensorTypeProfile = PROFILES[spec.type]
        p = self.profile
        # The sensor's own parameters come from the stream the seeded history was generated with
        # (core.simulation.generator: default_rng([seed, number]), same draws in the same order), so the live
        # signal continues the seeded sensor's level, daily amplitude and peak hour — models and baselines
        # trained on the seed (or data/sensor_data.csv) see the same sensor. The noise has its own stream.
        params = np.random.default_rng([seed, number])
        self.baseline = p.baseline + params.uniform(-p.baseline_spread, p.baseline_spread)
        self.amplitude = p.amplitude * params.uniform(0.85, 1.15)
        self.peak = p.peak_hour + params.uniform(-1.0, 1.0)
        self.rng = np.random.default_rng([seed, number, 7])
        self.noise = p.noise_sd * float(self.rng.standard_normal())
        self.innovation = p.noise_sd * math.sqrt(1.0 - p.ar_phi * p.ar_phi)
        self.faults = [f for f in faults if f.sensor_id == spec.sensor_id]
        self.index = 0
        self.last_healthy: float | None = None
        self._held: tuple[LiveFault, float] | None = None

    def next_value(self, moment: datetime, elapsed: float) -> float:
        p = self.profile
        hour = moment.hour + moment.minute / 60 + moment.second / 3600
        self.noise = p.ar_phi * self.noise + self.innovation * float(self.rng.standard_normal())
        value = (
            self.baseline + self.amplitude * math.cos(2 * math.pi * (hour - self.peak) / 24.0) + self.noise
        )
        fault = next((f for f in self.faults if f.active(elapsed)), None)
        if fault is None:
            self._held = None
        elif fault.kind == "stuck":
            if self._held is None or self._held[0] is not fault:
                held = self.last_healthy if self.last_healthy is not None else value
                self._held = (fault, round(held, p.decimals))
            self.index += 1
            return self._held[1]
        else:
            value = fault_effect(fault, elapsed, value, self.noise, self.index)
        if p.floor is not None:
            value = max(value, p.floor)
        value = round(value, p.decimals)
        if fault is None:
            self.last_healthy = value
        self.index += 1
        return value


def due_count(elapsed: float, period: float) -> int:
    """Readings of one sensor due after ``elapsed`` seconds (reading ``k`` is due at ``k · period``)."""
    return math.floor(elapsed / period + 1e-9) + 1 if elapsed >= 0 else 0


# --- sending ------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    sent: int = 0  # readings POSTed and answered (202)
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # failed attempts (retried), by cause
    batches: int = 0
    generated: int = 0
    unsent: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.accepted / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rej = ", ".join(f"{r}: {n}" for r, n in self.rejected.most_common(3))
        err = ", ".join(f"{r}: {n}" for r, n in self.errors.most_common(3))
        return (
            f"sent={self.sent} accepted={self.accepted} duplicates={self.duplicates} "
            f"rejected={self.rejected_total}{f' ({rej})' if rej else ''} "
            f"errors={sum(self.errors.values())}{f' ({err})' if err else ''} "
            f"backlog={self.generated - self.sent - self.unsent} rate={self.rate():.1f}/s"
        )


class FatalSendError(RuntimeError):
    """The API refuses the simulator itself (bad key, 4xx on the whole batch): retrying cannot help."""


def backoff_s(attempt: int, base: float = 0.5, cap: float = 10.0) -> float:
    return min(cap, base * 2.0 ** max(0, attempt - 1))


def _reason(text: str) -> str:
    return text.split(":", 1)[0].strip() or text[:40]


class LiveSimulator:
    """Stream the fleet's readings to ``api_url`` at ``rate`` readings/s until ``stop()`` or ``duration_s``."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        sensors: Sequence[SensorSpec],
        rate: float,
        *,
        faults: Sequence[LiveFault] = (),
        seed: int = 42,
        batch_size: int = 1000,
        senders: int = 4,
        tick_s: float = 0.1,
        client: httpx.AsyncClient | None = None,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.specs = tuple(sensors)
        self.rate = rate
        self.period = len(self.specs) / rate
        self.faults = list(faults)
        self.live = [LiveSensor(s, n, seed, self.faults) for n, s in enumerate(self.specs, start=1)]
        self.batch_size = batch_size
        self.senders = senders
        self.tick_s = tick_s
        self.stats = Stats()
        self.t0 = datetime.now(UTC)
        self._client = client
        self._stop = asyncio.Event()
        self._queue: asyncio.Queue[list[IngestItem]] = asyncio.Queue()
        self._log = on_log or (lambda _msg: None)
        self.fatal: str | None = None

    def stop(self) -> None:
        self._stop.set()

    def due(self, elapsed: float) -> list[IngestItem]:
        """The readings due at ``elapsed`` seconds that were not generated yet (all sensors)."""
        out: list[IngestItem] = []
        target = due_count(elapsed, self.period)
        for sensor in self.live:
            while sensor.index < target:
                at = sensor.index * self.period
                moment = self.t0 + timedelta(seconds=at)
                value = sensor.next_value(moment, at)
                out.append({"sensor_id": sensor.spec.sensor_id, "timestamp": moment.isoformat(),
                            "value": value, "unit": sensor.spec.unit, "quality": 1.0})  # fmt: skip
        out.sort(key=lambda r: r["timestamp"])
        return out

    async def _post(self, client: httpx.AsyncClient, batch: list[IngestItem]) -> None:
        import httpx

        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await client.post(
                    self.api_url + INGEST_PATH, json=batch, headers={"X-API-Key": self.api_key}
                )
            except httpx.HTTPError as exc:
                cause = type(exc).__name__
            else:
                if resp.status_code in (200, 201, 202):
                    body = resp.json()
                    self.stats.sent += len(batch)
                    self.stats.batches += 1
                    self.stats.accepted += int(body.get("accepted", 0))
                    self.stats.duplicates += int(body.get("duplicates", 0))
                    for item in body.get("rejected", []):
                        self.stats.rejected[_reason(str(item.get("reason", "?")))] += 1
                    return
                cause = f"HTTP {resp.status_code}"
                if resp.status_code in (401, 403):
                    raise FatalSendError(f"the API refused the key ({cause}): {resp.text[:200]}")
                if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
                    # the whole batch is invalid: count every reading as rejected, never retry it
                    self.stats.sent += len(batch)
                    self.stats.rejected[cause] += len(batch)
                    return
            self.stats.errors[cause] += 1
            wait = backoff_s(attempt)
            if attempt == 1 or attempt % 5 == 0:
                self._log(f"ingest failed ({cause}), attempt {attempt}; retrying in {wait:.1f}s")
            if self._stop.is_set() and attempt >= 3:
                raise asyncio.CancelledError
            await asyncio.sleep(wait)

    async def _sender(self, client: httpx.AsyncClient) -> None:
        while True:
            batch = await self._queue.get()
            try:
                await self._post(client, batch)
            except asyncio.CancelledError:
                self.stats.unsent += len(batch)
                raise
            except FatalSendError as exc:
                self.stats.unsent += len(batch)
                self.fatal = str(exc)
                self._stop.set()
            finally:
                self._queue.task_done()

    async def run(self, duration_s: float | None = None, drain_timeout_s: float = 15.0) -> Stats:
        import httpx

        client = self._client or httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        self.t0 = datetime.now(UTC)
        self.stats.started = time.monotonic()
        start = time.monotonic()
        workers = [asyncio.create_task(self._sender(client)) for _ in range(self.senders)]
        try:
            while not self._stop.is_set():
                elapsed = time.monotonic() - start
                if duration_s is not None and elapsed >= duration_s:
                    elapsed = duration_s - 1e-9
                    self._enqueue(self.due(elapsed))
                    break
                self._enqueue(self.due(elapsed))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.tick_s)
            # drain what is queued (bounded), then report the rest as unsent
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_timeout_s if self.fatal is None else 0.01)
        finally:
            self._stop.set()
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            while not self._queue.empty():
                self.stats.unsent += len(self._queue.get_nowait())
            if self._client is None:
                await client.aclose()
        return self.stats

    def _enqueue(self, readings: list[IngestItem]) -> None:
        self.stats.generated += len(readings)
        for i in range(0, len(readings), self.batch_size):
            self._queue.put_nowait(readings[i : i + self.batch_size])
