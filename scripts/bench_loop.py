"""Maintenance-loop benchmark (`make bench-loop [BUS=nats WORKERS=2]`): ingest acknowledgement → alert visible in
the API, and readings fully processed per second, under load, per bus and rate.

Per scenario (bus × rate): a fresh database, the API as a subprocess on a free port (rate limit off, MLflow check
off, MLflow URI on a closed port); with ``--bus nats`` also a private ``nats-server -js`` on a free port with a
temporary store and ``--workers`` ``python -m apps.cli worker`` processes; the live simulator (``python -m apps.cli
simulate``, the same code as the demo) sending the rate in the background, and a probe that, once a second, POSTs
one threshold-violating reading for a dedicated probe sensor (each with its own threshold rule, ``open_after_k`` 1)
and measures the time from the 202 to the alert being listed by ``GET /api/v1/alerts?sensor_id=`` (polled every
20 ms). Only 2xx answers count. "Fully processed": the readings accepted, divided by the time from the simulator's
start until ``GET /api/v1/admin/events`` is idle (every event handled by every agent: the backlog is included).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import _bootstrap  # noqa: F401  (puts the project on sys.path when run by path)
import httpx
import typer
from bench.nats_local import nats_server
from bench_ingest import _free_port, _machine, _server_version, _wait_healthy
from rich.console import Console

from core.config import PROJECT_ROOT as ROOT
from core.config import load_settings, to_libpq_url
from core.db.admin import create_database, drop_database, upgrade

console = Console(highlight=False)
INGEST = "/api/v1/data/ingest"
PROBE_MAX = 100.0
#: Everything from this heading on in an existing report is kept when a new run is written.
HISTORY_HEADING = "## Result and findings"

METHOD = """\
Produced by `make bench-loop` (`scripts/bench_loop.py`; `make bench-loop BUS=nats WORKERS=2 RATES=5000,20000` for
the table below) in one run of several scenarios, each on a fresh database migrated with `alembic upgrade head`:
the API started with `python -m apps.cli serve-api` on 127.0.0.1 (rate limit off, MLflow readiness check off and
`MLFLOW_TRACKING_URI` on a closed port, so the anomaly agent uses its streaming baseline) — on the in-process bus
with the agents inside it, or with `SM_BUS_URL` on a private `nats-server -js` (free port, temporary store) and
{workers} `python -m apps.cli worker` processes running the agents — then the live demo simulator (`python -m
apps.cli simulate --fleet sim --faults`, the code `make up` runs) sending the scenario's rate from {sensors}
sensors in batches of up to 1,000 by {senders} concurrent senders, for {duration:.0f} s. "Fully processed" is the
readings accepted divided by the time from the simulator's start until `GET /api/v1/admin/events` answers idle
three times in a row (every event handled by every agent, backlog included). After a {warmup:.0f} s warm-up a
probe, in its own process (this script), once a second POSTs one reading of value 1,000 for a dedicated probe
sensor `probe-NNN` (registered beforehand with a normal reading and a sensor-specific threshold rule
`max {probe_max:g}`, `open_after_k` 1) and measures the time from the ingest acknowledgement (the 202 received)
to the alert being listed by `GET /api/v1/alerts?sensor_id=probe-NNN` (polled every 20 ms, 10 s timeout). The
background rate counts only readings answered 2xx (the simulator's `accepted`). Client, simulator, API, workers,
NATS and PostgreSQL share the machine."""


async def _setup_probes(base: str, key: str, n: int) -> None:
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        now = datetime.now(UTC).isoformat()
        body = [{"sensor_id": f"probe-{i:03d}", "timestamp": now, "value": 1.0} for i in range(n)]
        resp = await client.post(INGEST, json=body)
        resp.raise_for_status()
        for i in range(n):
            rule = {"name": f"probe-{i:03d}-max", "kind": "threshold", "sensor_id": f"probe-{i:03d}",
                    "params": {"max": PROBE_MAX}, "severity": "low", "open_after_k": 1, "window_readings": 1,
                    "resolve_after_m": 1}  # fmt: skip
            resp = await client.post("/api/v1/alert-rules", json=rule)
            if resp.status_code >= 300:
                raise RuntimeError(f"creating the probe rule failed: {resp.status_code} {resp.text[:300]}")


async def _probe(
    base: str, key: str, n: int, interval_s: float, timeouts: list[str], backlog: list[str]
) -> list[float]:
    latencies: list[float] = []
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        for i in range(n):
            t_start = time.perf_counter()
            metrics = await client.get("/metrics")
            found = dict(
                re.findall(
                    r"^(sm_bus_queue_depth_items|sm_outbox_unpublished_rows) (\S+)$",
                    metrics.text,
                    re.MULTILINE,
                )
            )
            backlog.append(f"{float(found.get('sm_bus_queue_depth_items', 'nan')):.0f}/"
                           f"{float(found.get('sm_outbox_unpublished_rows', 'nan')):.0f}")  # fmt: skip
            sensor = f"probe-{i:03d}"
            body = {"sensor_id": sensor, "timestamp": datetime.now(UTC).isoformat(), "value": 1000.0}
            resp = await client.post(INGEST, json=body)
            t_ack = time.perf_counter()
            if resp.status_code != 202:
                timeouts.append(f"{sensor}: ingest answered {resp.status_code}")
                continue
            deadline = t_ack + 10.0
            while True:
                got = await client.get("/api/v1/alerts", params={"sensor_id": sensor})
                if got.status_code == 200 and got.json()["items"]:
                    latencies.append(time.perf_counter() - t_ack)
                    break
                if time.perf_counter() > deadline:
                    timeouts.append(f"{sensor}: no alert within 10 s")
                    break
                await asyncio.sleep(0.02)
            rest = interval_s - (time.perf_counter() - t_start)
            if rest > 0:
                await asyncio.sleep(rest)
    return latencies


_BUS_METRICS = re.compile(
    r"^(sm_bus_events_published_total|sm_bus_handler_latency_seconds_(?:sum|count)|sm_bus_queue_depth_items"
    r"|sm_outbox_unpublished\w*)(\{[^}]*\})? (\S+)$"
)


def _bus_metrics(base: str, key: str) -> dict[str, float]:
    """The bus's counters from ``/metrics`` (events published by type, handler time, queue depth)."""
    try:
        text = httpx.get(base + "/metrics", headers={"X-API-Key": key}, timeout=10).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _BUS_METRICS.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def _bus_lines(after_probe: dict[str, float], end: dict[str, float]) -> list[str]:
    lines = ["", "Bus at the end of the probe → at the end of the run (from `/metrics`):", ""]
    lines += ["| series | end of probe | end of run |", "|---|---|---|"]
    for key in sorted(set(after_probe) | set(end)):
        if "_count" in key:
            continue
        a, b = after_probe.get(key, float("nan")), end.get(key, float("nan"))
        lines.append(f"| `{key}` | {a:,.1f} | {b:,.1f} |")
    handlers = sorted({k.split("{", 1)[1] for k in end if k.startswith("sm_bus_handler_latency_seconds_sum")})
    for labels in handlers:
        total = end.get("sm_bus_handler_latency_seconds_sum{" + labels, 0.0)
        count = end.get("sm_bus_handler_latency_seconds_count{" + labels, 0.0)
        if count:
            lines.append(f"| mean attempt of {{{labels} | | {1000 * total / count:,.1f} ms ({count:,.0f}) |")
    return lines


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))]


@dataclass
class Scenario:
    bus: str
    rate: int
    workers: int
    accepted: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: int = 0
    unsent: int = 0
    processed_s: float = float("nan")
    latencies_ms: list[float] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    backlog: list[str] = field(default_factory=list)
    alerts: int = 0
    bus_after_probe: dict[str, float] = field(default_factory=dict)
    bus_end: dict[str, float] = field(default_factory=dict)
    version: str = ""

    @property
    def label(self) -> str:
        if self.bus == "inprocess":
            return "in-process"
        return f"NATS JetStream, {self.workers} worker{'s' if self.workers != 1 else ''}"


def _wait_idle(base: str, key: str, limit_s: float = 600.0) -> float:
    """Seconds (monotonic) at which the events endpoint answered idle three times in a row."""
    streak, deadline = 0, time.monotonic() + limit_s
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        while time.monotonic() < deadline:
            resp = client.get("/api/v1/admin/events")
            streak = streak + 1 if resp.status_code == 200 and resp.json()["idle"] else 0
            if streak >= 3:
                return time.monotonic()
            time.sleep(0.1)
    raise RuntimeError(f"the agents did not settle within {limit_s:.0f} s")


def run_scenario(sc: Scenario, *, duration: float, warmup: float, samples: int, sensors: int, senders: int,
                 api_workers: int, faults: bool, profile_api: Path | None) -> Scenario:  # fmt: skip
    settings = load_settings()
    admin = settings.database_url if settings.database_url_is_explicit else settings.test_admin_database_url
    db_url = create_database(to_libpq_url(admin), prefix="sm_benchloop")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    key = settings.api_key.get_secret_value()
    procs: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    bus_server = contextlib.ExitStack()
    try:
        upgrade(db_url)
        env = {**os.environ, "DATABASE_URL": db_url, "SM_API_PORT": str(port), "SM_API_HOST": "127.0.0.1",
               "SM_READY_CHECK_MLFLOW": "false", "SM_RATE_LIMIT": "", "SM_LOG_LEVEL": "WARNING",
               "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_free_port()}", "SM_API_WORKERS": str(api_workers),
               "SM_ENV": "development"}  # fmt: skip
        env.pop("SM_BUS_URL", None)
        if sc.bus == "nats":
            env["SM_BUS_URL"] = bus_server.enter_context(nats_server())
        command = ["-m", "apps.cli", "serve-api"]
        if profile_api:  # stats of the API's main thread from its start to the end of the probe (about)
            command = [str(ROOT / "scripts" / "bench" / "profile_api.py"), str(profile_api),
                       str(warmup + samples + 8)]  # fmt: skip
        api = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env)
        procs.append(api)
        _wait_healthy(base, api)
        for _ in range(sc.workers if sc.bus == "nats" else 0):
            procs.append(subprocess.Popen([sys.executable, "-m", "apps.cli", "worker"], cwd=ROOT, env=env))
        asyncio.run(_setup_probes(base, key, samples))
        if sc.bus == "nats":
            _wait_idle(base, key, 60)  # the workers took their partitions and handled the probes' registration
        console.print(f"[bold]{sc.label}[/]: simulator {sc.rate:,} readings/s from {sensors} sensors for "
                      f"{duration:.0f} s; probe: {samples} samples after {warmup:.0f} s")  # fmt: skip
        started = time.monotonic()
        sim = subprocess.Popen(
            [sys.executable, "-m", "apps.cli", "simulate", "--fleet", "sim", "--sensors", str(sensors),
             "--rate", f"{sc.rate}/s", "--duration", str(duration), "--faults" if faults else "--no-faults",
             "--first-fault", "5", "--fault-every", "10", "--fault-duration", "8", "--senders", str(senders),
             "--api-url", base, "--api-key", key],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        procs.append(sim)
        time.sleep(warmup)
        sc.latencies_ms = sorted(
            x * 1000 for x in asyncio.run(_probe(base, key, samples, 1.0, sc.timeouts, sc.backlog))
        )
        sc.bus_after_probe = _bus_metrics(base, key)
        sim_out, _ = sim.communicate(timeout=duration + 120)
        summary = re.search(r"SIMULATE accepted=(\d+) sent=(\d+) duplicates=(\d+) rejected=(\d+) "
                            r"errors=(\d+) unsent=(\d+)", sim_out)  # fmt: skip
        if not summary or sim.returncode != 0:
            raise RuntimeError(f"the simulator failed (exit {sim.returncode}):\n{sim_out[-3000:]}")
        sc.accepted, sc.sent, sc.duplicates, sc.rejected, sc.errors, sc.unsent = map(int, summary.groups())
        sc.processed_s = _wait_idle(base, key) - started
        alerts = httpx.get(base + "/api/v1/alerts", params={"limit": 1}, headers={"X-API-Key": key}).json()
        sc.alerts = int(alerts["total"])
        sc.version = asyncio.run(_server_version(db_url))
        sc.bus_end = _bus_metrics(base, key)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        drop_database(to_libpq_url(admin), db_url)
        bus_server.close()
    return sc


def _row(sc: Scenario, duration: float) -> str:
    lat = sc.latencies_ms
    p50, p95 = _pct(lat, 0.50), _pct(lat, 0.95)
    target = 500 if sc.bus == "nats" and sc.rate <= 5000 else None
    verdict = f" ({'meets' if p95 <= target and len(lat) >= 20 else 'MISSES'} p95 ≤ {target} ms)" if target else ""
    return (
        f"| {sc.label} | {sc.rate:,} | {sc.accepted:,} ({sc.accepted / duration:,.0f}/s) | "
        f"{sc.accepted / sc.processed_s:,.0f}/s (idle after {sc.processed_s:.1f} s) | "
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(lat, default=float('nan')):.0f} ms, "
        f"{len(lat)} samples{verdict} |"
    )


def main(
    rates: Annotated[str, typer.Option(help="background readings/s, comma-separated: one scenario per rate")] = "5000",
    bus: Annotated[str, typer.Option(help="inprocess, or nats: both buses, in-process first")] = "inprocess",
    workers: Annotated[int, typer.Option(help="worker processes with --bus nats")] = 2,
    duration: Annotated[float, typer.Option(help="seconds the simulator runs")] = 34.0,
    warmup: Annotated[float, typer.Option(help="seconds before the first probe")] = 3.0,
    samples: Annotated[int, typer.Option(help="probe samples (one a second)")] = 25,
    sensors: Annotated[int, typer.Option(help="simulated sensors")] = 50,
    senders: Annotated[int, typer.Option(help="concurrent senders of the simulator")] = 4,
    api_workers: Annotated[int, typer.Option(help="uvicorn workers of the API")] = 1,
    faults: Annotated[bool, typer.Option("--faults/--no-faults", help="simulator injects faults")] = True,
    output: Annotated[Path | None, typer.Option(help="also write the report (markdown) here")] = None,
    profile_api: Annotated[
        Path | None, typer.Option(help="run the API under cProfile and write its stats here (1 worker)")
    ] = None,
) -> None:
    if bus not in ("inprocess", "nats"):
        raise typer.BadParameter("inprocess or nats", param_hint="--bus")
    load_before = os.getloadavg()
    buses = ["inprocess", "nats"] if bus == "nats" else ["inprocess"]
    scenarios = [
        run_scenario(Scenario(b, int(r), workers), duration=duration, warmup=warmup, samples=samples,
                     sensors=sensors, senders=senders, api_workers=api_workers, faults=faults,
                     profile_api=profile_api)  # fmt: skip
        for r in rates.split(",")
        for b in buses
    ]
    lines = [
        (
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_machine()}; PostgreSQL {scenarios[0].version}; "
            f"API with {api_workers} uvicorn worker{'s' if api_workers > 1 else ''}; client, simulator, API, "
            "workers, NATS and database on the same machine. Load average (1/5/15 min) before the run "
            + "/".join(f"{x:.2f}" for x in load_before)
            + ", after it "
            + "/".join(f"{x:.2f}" for x in os.getloadavg())
            + "."
        ),
        "",
        "| bus | rate asked (readings/s) | accepted (2xx) in the run | fully processed | ingest 202 → alert visible |",
        "|---|---|---|---|---|",
        *(_row(sc, duration) for sc in scenarios),
    ]
    for sc in scenarios:
        lines += [
            "",
            f"### {sc.label}, {sc.rate:,} readings/s",
            "",
            f"Simulator: sent {sc.sent:,}, accepted {sc.accepted:,}, duplicates {sc.duplicates}, rejected "
            f"{sc.rejected}, failed attempts (retried) {sc.errors}, unsent at stop {sc.unsent}. Alerts in the "
            f"database at the end: {sc.alerts:,} (probes and the simulator's injected faults). Probe latencies "
            "(ms): " + ", ".join(f"{x:.0f}" for x in sc.latencies_ms) + ".",
        ]
        if sc.timeouts:
            lines += ["", "Probe failures: " + "; ".join(sc.timeouts)]
        lines += [
            "",
            "Backlog seen by each probe just before its ingest (in-process bus queue depth / unpublished outbox "
            "rows as last counted by the API's relay), in order: " + ", ".join(sc.backlog) + ".",
        ]
        lines += _bus_lines(sc.bus_after_probe, sc.bus_end)
    text = "\n".join(lines)
    console.print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        method = METHOD.format(sensors=sensors, senders=senders, duration=duration, warmup=warmup,
                               probe_max=PROBE_MAX, workers=workers)  # fmt: skip
        # The latest run replaces the head of the report; the findings and history below it are kept.
        previous = output.read_text() if output.exists() else ""
        kept = previous[previous.index(HISTORY_HEADING) :] if HISTORY_HEADING in previous else ""
        output.write_text(
            f"# Maintenance-loop benchmark\n\n{method}\n\n{text}\n" + (f"\n{kept}" if kept else "")
        )
    # The first scenario (the lowest rate, in-process) is the platform's promise; an overloaded one is a figure.
    if scenarios[0].timeouts or len(scenarios[0].latencies_ms) < 20:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
