"""Maintenance-loop benchmark (`make bench-loop`): ingest acknowledgement → alert visible in the API, under load.

A fresh database, the API as a subprocess on a free port (rate limit off, MLflow check off, MLflow URI on a closed
port), the live simulator (``python -m apps.cli simulate``, the same code as the demo) sending ``--rate``
readings/s in the background, and a probe that, once a second, POSTs one threshold-violating reading for a
dedicated probe sensor (each with its own threshold rule, ``open_after_k`` 1) and measures the time from the 202
to the alert being listed by ``GET /api/v1/alerts?sensor_id=`` (polled every 20 ms). Only 2xx answers count.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import _bootstrap  # noqa: F401  (puts the project on sys.path when run by path)
import httpx
import typer
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
Produced by `make bench-loop` (`scripts/bench_loop.py`) in one run: a fresh database migrated with
`alembic upgrade head`, the API started with `python -m apps.cli serve-api` on 127.0.0.1 (in-process bus and
agents, rate limit off, MLflow readiness check off and `MLFLOW_TRACKING_URI` on a closed port, so the anomaly agent
uses its streaming baseline), then the live demo simulator (`python -m apps.cli simulate --fleet sim --faults`,
the code `make up` runs) sending {rate:,} readings/s from {sensors} sensors in batches of up to 1,000 by
{senders} concurrent senders, for {duration:.0f} s. After a {warmup:.0f} s warm-up a probe, in its own process
(this script), once a second POSTs one reading of value 1,000 for a dedicated probe sensor `probe-NNN` (registered
beforehand with a normal reading and a sensor-specific threshold rule `max {probe_max:g}`, `open_after_k` 1) and
measures the time from the ingest acknowledgement (the 202 received) to the alert being listed by
`GET /api/v1/alerts?sensor_id=probe-NNN` (polled every 20 ms, 10 s timeout). The background rate counts only
readings answered 2xx (the simulator's `accepted`). Client, simulator, API and PostgreSQL share the machine."""


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


def main(
    rate: Annotated[int, typer.Option(help="background readings/s")] = 5000,
    duration: Annotated[float, typer.Option(help="seconds the simulator runs")] = 34.0,
    warmup: Annotated[float, typer.Option(help="seconds before the first probe")] = 3.0,
    samples: Annotated[int, typer.Option(help="probe samples (one a second)")] = 25,
    sensors: Annotated[int, typer.Option(help="simulated sensors")] = 50,
    senders: Annotated[int, typer.Option(help="concurrent senders of the simulator")] = 4,
    workers: Annotated[int, typer.Option(help="uvicorn workers of the API")] = 1,
    faults: Annotated[bool, typer.Option("--faults/--no-faults", help="simulator injects faults")] = True,
    output: Annotated[Path | None, typer.Option(help="also write the report (markdown) here")] = None,
    profile_api: Annotated[
        Path | None, typer.Option(help="run the API under cProfile and write its stats here (1 worker)")
    ] = None,
) -> None:
    load_before = os.getloadavg()
    settings = load_settings()
    admin = settings.database_url if settings.database_url_is_explicit else settings.test_admin_database_url
    db_url = create_database(to_libpq_url(admin), prefix="sm_benchloop")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    key = settings.api_key.get_secret_value()
    api = sim = None
    timeouts: list[str] = []
    try:
        upgrade(db_url)
        env = {**os.environ, "DATABASE_URL": db_url, "SM_API_PORT": str(port), "SM_API_HOST": "127.0.0.1",
               "SM_READY_CHECK_MLFLOW": "false", "SM_RATE_LIMIT": "", "SM_LOG_LEVEL": "WARNING",
               "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_free_port()}", "SM_API_WORKERS": str(workers),
               "SM_ENV": "development"}  # fmt: skip
        command = ["-m", "apps.cli", "serve-api"]
        if profile_api:  # stats of the API's main thread from its start to the end of the probe (about)
            command = [
                str(ROOT / "scripts" / "bench" / "profile_api.py"),
                str(profile_api),
                str(warmup + samples + 8),
            ]
        api = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env)
        _wait_healthy(base, api)
        asyncio.run(_setup_probes(base, key, samples))
        console.print(f"simulator: {rate:,} readings/s from {sensors} sensors for {duration:.0f} s; "
                      f"probe: {samples} samples after {warmup:.0f} s")  # fmt: skip
        sim = subprocess.Popen(
            [sys.executable, "-m", "apps.cli", "simulate", "--fleet", "sim", "--sensors", str(sensors),
             "--rate", f"{rate}/s", "--duration", str(duration), "--faults" if faults else "--no-faults",
             "--first-fault", "5", "--fault-every", "10", "--fault-duration", "8", "--senders", str(senders),
             "--api-url", base, "--api-key", key],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        time.sleep(warmup)
        backlog: list[str] = []
        latencies = asyncio.run(_probe(base, key, samples, 1.0, timeouts, backlog))
        bus_after_probe = _bus_metrics(base, key)
        sim_out, _ = sim.communicate(timeout=duration + 120)
        summary = re.search(r"SIMULATE accepted=(\d+) sent=(\d+) duplicates=(\d+) rejected=(\d+) "
                            r"errors=(\d+) unsent=(\d+)", sim_out)  # fmt: skip
        if not summary or sim.returncode != 0:
            raise RuntimeError(f"the simulator failed (exit {sim.returncode}):\n{sim_out[-3000:]}")
        accepted, sent, dups, rejected, errors, unsent = map(int, summary.groups())
        alerts = httpx.get(base + "/api/v1/alerts", params={"limit": 1}, headers={"X-API-Key": key}).json()
        version = asyncio.run(_server_version(db_url))
        bus_end = _bus_metrics(base, key)
    finally:
        for proc in (sim, api):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        drop_database(to_libpq_url(admin), db_url)

    lat_ms = sorted(x * 1000 for x in latencies)
    p50, p95 = _pct(lat_ms, 0.50), _pct(lat_ms, 0.95)
    achieved = accepted / duration
    ok = p95 <= 1000 and len(lat_ms) >= 20
    lines = [
        (
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_machine()}; PostgreSQL {version}; API with "
            f"{workers} uvicorn worker{'s' if workers > 1 else ''}; client, simulator, API and database on the same "
            "machine. Load average (1/5/15 min) before the run "
            + "/".join(f"{x:.2f}" for x in load_before)
            + ", after it "
            + "/".join(f"{x:.2f}" for x in os.getloadavg())
            + "."
        ),
        "",
        "| measure | result | target |",
        "|---|---|---|",
        (
            f"| background: readings accepted (2xx) by the API in {duration:.0f} s | {accepted:,} "
            f"({achieved:,.0f} readings/s) | {rate:,} readings/s |"
        ),
        (
            f"| ingest 202 → alert visible in `GET /api/v1/alerts`, {len(lat_ms)} samples | p50 {p50:.0f} ms, "
            f"p95 {p95:.0f} ms, max {max(lat_ms, default=float('nan')):.0f} ms | p95 ≤ 1,000 ms "
            f"({'meets' if ok else 'MISSES'}) |"
        ),
        "",
        f"Simulator: sent {sent:,}, accepted {accepted:,}, duplicates {dups}, rejected {rejected}, failed attempts "
        f"(retried) {errors}, unsent at stop {unsent}. Alerts in the database at the end: {alerts['total']:,} "
        f"(probes and the simulator's injected faults). Probe latencies (ms): "
        + ", ".join(f"{x:.0f}" for x in lat_ms)
        + ".",
    ]
    if timeouts:
        lines += ["", "Probe failures: " + "; ".join(timeouts)]
    lines += [
        "",
        "Backlog seen by each probe just before its ingest (bus queue depth / unpublished outbox rows as last "
        "counted by the relay), in order: " + ", ".join(backlog) + ".",
    ]
    lines += _bus_lines(bus_after_probe, bus_end)
    text = "\n".join(lines)
    console.print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        method = METHOD.format(rate=rate, sensors=sensors, senders=senders, duration=duration, warmup=warmup,
                               probe_max=PROBE_MAX)  # fmt: skip
        # The latest run replaces the head of the report; the findings and history below it are kept.
        previous = output.read_text() if output.exists() else ""
        kept = previous[previous.index(HISTORY_HEADING) :] if HISTORY_HEADING in previous else ""
        output.write_text(
            f"# Maintenance-loop benchmark\n\n{method}\n\n{text}\n" + (f"\n{kept}" if kept else "")
        )
    if timeouts or len(lat_ms) < 20:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
