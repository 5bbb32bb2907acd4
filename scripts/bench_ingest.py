"""Ingest benchmark (`make bench-ingest`): the API on loopback against a fresh database, measured in one run.

(a) readings/s for N readings POSTed as batches of 1,000 by 8 concurrent clients, all stored (count checked);
(b) readings/s of a raw asyncpg COPY of the same rows into the same table of the same database;
(c) the ratio a/b;
(d) single-reading POSTs by 64 concurrent clients for 20 s: requests/s (2xx only) and p50/p99 latency;
(e) peak RSS of the API process (and its children).

Only successful (2xx) requests count as throughput; any other status is reported as an error, and the stored
row counts are checked against the 2xx counts. The batches of (a) cross a UTC midnight, so on TimescaleDB the
run creates 1-day chunks while 8 clients write.

Server: ``--database-url`` (or ``BENCH_DATABASE_URL``), else ``DATABASE_URL`` when set, else the test admin server;
the throw-away database is created there. On a server with TimescaleDB the migrations make ``sensor_readings`` a
hypertable. ``--output`` keeps one section per kind of server (plain PostgreSQL, TimescaleDB) in the file: a run
replaces its own section and leaves the other. All traffic goes to 127.0.0.1. The client, the API and PostgreSQL
share the machine. The API runs with ``--workers`` uvicorn workers (default: one per core, as deployed). Phase (d)
uses wrk (Debian package, a C load generator, see scripts/bench/single_reading.lua) when it is installed, so
that the client takes little of the machine's CPU; otherwise an aiohttp client, which costs the API CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import _bootstrap  # noqa: F401  (puts the project on sys.path when run by path)
import aiohttp
import asyncpg
import orjson
import psutil
import typer
from bench.ingest_profile import CpuMeter, PySpy, summarise
from bench.ingest_report import PLAIN_SECTION, TIMESCALE_SECTION, WORKERS_SECTION, Results, merge_report, report
from bench.nats_local import nats_server
from bench.settle import _caught_up, _caught_up_api
from rich.console import Console
from rich.progress import Progress

from core.config import PROJECT_ROOT as ROOT
from core.config import load_settings, to_libpq_url
from core.db.admin import create_database, drop_database, upgrade

console = Console(highlight=False)
INGEST = "/api/v1/data/ingest"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rows(n: int, sensors: int, start: datetime) -> list[tuple[str, datetime, float]]:
    per_sensor = n // sensors
    return [
        (f"bench-{s:03d}", start + timedelta(seconds=i), 20.0 + (i % 600) * 0.01 + s * 0.1)
        for s in range(sensors)
        for i in range(per_sensor)
    ]


def _bodies(rows: list[tuple[str, datetime, float]], batch: int) -> list[bytes]:
    def item(s: str, t: datetime, v: float) -> dict[str, object]:
        return {"sensor_id": s, "timestamp": t.isoformat(), "value": v, "quality": 1.0}

    return [orjson.dumps([item(*row) for row in rows[i : i + batch]]) for i in range(0, len(rows), batch)]


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.NoSuchProcess:
                return
            time.sleep(0.1)


async def _post_batches(base: str, key: str, bodies: list[bytes], clients: int, res: Results) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("(a) batches", total=len(bodies))

        async def worker(session: aiohttp.ClientSession) -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(base + INGEST, data=body, headers=headers) as resp:
                    payload = await resp.read()
                    if resp.status == 202:
                        res.batch_readings += orjson.loads(payload)["accepted"]
                    else:
                        res.batch_errors[resp.status] = res.batch_errors.get(resp.status, 0) + 1
                progress.advance(task)

        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as session:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(session) for _ in range(clients)))
            res.batch_seconds = time.perf_counter() - t0


async def _post_singles(
    base: str, key: str, clients: int, seconds: float, start: datetime, prefix: str, res: Results
) -> None:
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def worker(session: aiohttp.ClientSession, n: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            stamp = (start + timedelta(milliseconds=i)).isoformat()
            body = orjson.dumps(
                {"sensor_id": f"{prefix}-{n:03d}", "timestamp": stamp, "value": float(i % 100)}
            )
            i += 1
            t0 = time.perf_counter()
            async with session.post(base + INGEST, data=body, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    res.single_ok += 1
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    res.single_errors[resp.status] = res.single_errors.get(resp.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session, n) for n in range(clients)))
        res.single_seconds = time.perf_counter() - t0
    latencies.sort()
    if latencies:
        res.single_p50_ms = statistics.median(latencies)
        res.single_p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def _singles_wrk(base: str, key: str, clients: int, seconds: float, prefix: str, res: Results) -> None:
    script = ROOT / "scripts" / "bench" / "single_reading.lua"
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--timeout", "5s", "-s", str(script), base]
    out = subprocess.run(cmd, env={**os.environ, "SM_BENCH_API_KEY": key, "SM_BENCH_PREFIX": prefix},
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    line = next(row for row in out.splitlines() if row.startswith("BENCH "))
    stats = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
    errors = {k: stats[k] for k in ("non2xx", "connect", "read", "write", "timeout") if stats[k]}
    res.single_client = "wrk"
    res.single_errors = dict(errors)
    res.single_ok = stats["requests"] - stats["non2xx"]
    res.single_seconds = stats["duration_us"] / 1e6
    res.single_p50_ms = stats["p50_us"] / 1000
    res.single_p99_ms = stats["p99_us"] / 1000


async def _count(url: str, where: str = "") -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM sensor_readings {where}")
    finally:
        await conn.close()


async def _raw_copy(url: str, rows: list[tuple[str, datetime, float]], batch: int, res: Results) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM sensor_readings WHERE sensor_id LIKE 'bench-%'")
        await conn.execute("VACUUM ANALYZE sensor_readings")
        records = [(t, s, v, None, 1.0) for s, t, v in rows]
        t0 = time.perf_counter()
        for i in range(0, len(records), batch):
            async with conn.transaction():
                await conn.copy_records_to_table("sensor_readings", records=records[i : i + batch],
                                                 columns=["timestamp", "sensor_id", "value", "unit",
                                                          "quality"])  # fmt: skip
        res.copy_seconds = time.perf_counter() - t0
        res.copy_rows = len(records)
    finally:
        await conn.close()


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited with {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("API not healthy in time")


def _machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )


def main(
    readings: Annotated[int, typer.Option(help="readings for (a) and (b)")] = 1_000_000,
    single_seconds: Annotated[float, typer.Option(help="duration of (d)")] = 20.0,
    output: Annotated[Path | None, typer.Option(help="also write the report (markdown) here")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn workers of the API")] = os.cpu_count() or 1,
    client: Annotated[
        str, typer.Option(help="single-reading client: auto (wrk if installed), wrk, aiohttp")
    ] = "auto",
    profile: Annotated[
        Path | None,
        typer.Option(help="write a py-spy profile of every uvicorn worker per phase (raw stacks and a summary) here"),
    ] = None,
    py_spy: Annotated[str, typer.Option(help="the py-spy executable (for --profile)")] = "py-spy",
    bus: Annotated[
        str, typer.Option(help="inprocess (the agents in the API), or nats: a private NATS JetStream server and "
                          "--bus-workers `apps.cli worker` processes run them")
    ] = "inprocess",
    bus_workers: Annotated[int, typer.Option(help="worker processes with --bus nats")] = 2,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="BENCH_DATABASE_URL",
            help="server to benchmark on (a throw-away database is created there); default DATABASE_URL, else "
            "the test admin server",
        ),
    ] = None,
) -> None:
    settings = load_settings()
    admin = database_url or (
        settings.database_url if settings.database_url_is_explicit else settings.test_admin_database_url
    )
    db_url = create_database(to_libpq_url(admin), prefix="sm_bench")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    key = settings.api_key.get_secret_value()
    if bus not in ("inprocess", "nats"):
        raise typer.BadParameter("inprocess or nats", param_hint="--bus")
    res = Results(workers=workers)
    nats = contextlib.ExitStack()
    worker_procs: list[subprocess.Popen[bytes]] = []
    worker_rss: list[RssSampler] = []
    use_wrk = client == "wrk" or (client == "auto" and shutil.which("wrk") is not None)
    proc = None
    try:
        upgrade(db_url)
        env = {**os.environ, "DATABASE_URL": db_url, "SM_API_PORT": str(port), "SM_API_HOST": "127.0.0.1",
               "SM_READY_CHECK_MLFLOW": "false", "SM_RATE_LIMIT": "", "SM_LOG_LEVEL": "WARNING",
               "SM_API_WORKERS": str(workers)}  # fmt: skip
        if bus == "nats":
            env["SM_BUS_URL"] = nats.enter_context(nats_server())
        else:
            env.pop("SM_BUS_URL", None)
        proc = subprocess.Popen([sys.executable, "-m", "apps.cli", "serve-api"], cwd=ROOT, env=env)
        _wait_healthy(base, proc)
        for _ in range(bus_workers if bus == "nats" else 0):
            worker_procs.append(subprocess.Popen([sys.executable, "-m", "apps.cli", "worker"], cwd=ROOT, env=env))
            worker_rss.append(RssSampler(worker_procs[-1].pid))
            worker_rss[-1].start()
        sampler = RssSampler(proc.pid)
        sampler.start()
        meter = CpuMeter(proc.pid)
        spy = PySpy(shutil.which(py_spy) or py_spy, profile, proc.pid) if profile else None
        # (d) first, on the fresh database: after (a) autovacuum works through a million new rows for a while.
        # A 3-second warm-up (connection pools, sensor registration; its rows are not counted) precedes it.
        label = "wrk" if use_wrk else "aiohttp"
        console.print(f"(d) single readings, 64 clients, 3 s warm-up then {single_seconds:.0f} s ({label})")
        _singles(use_wrk, base, key, 3.0, "warmup", Results())
        with _phase("d", meter, spy, res):
            _singles(use_wrk, base, key, single_seconds, "single", res)
        res.single_stored = asyncio.run(_count(db_url, "WHERE sensor_id LIKE 'single-%'"))
        # across yesterday's UTC midnight: on TimescaleDB, chunks are created while the clients write
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1, hours=1)
        rows = _rows(readings, 100, start)
        bodies = _bodies(rows, 1000)
        console.print(f"(a) POSTing {len(rows):,} readings in {len(bodies):,} batches with 8 clients")
        with _phase("a", meter, spy, res):
            asyncio.run(_post_batches(base, key, bodies, 8, res))
        batches_done = time.perf_counter()
        res.stored = asyncio.run(_count(db_url, "WHERE sensor_id LIKE 'bench-%'"))
        res.catch_up_s = (
            _caught_up_api(base, key, batches_done) if bus == "nats" else asyncio.run(_caught_up(db_url, batches_done))
        )
        sampler.stop_event.set()
        res.peak_rss_mb = sampler.peak / 2**20
        for sampler_w in worker_rss:
            sampler_w.stop_event.set()
        for worker in worker_procs:
            worker.terminate()
            worker.wait(timeout=60)
        proc.terminate()
        proc.wait(timeout=30)
        console.print("(b) raw COPY of the same rows")
        asyncio.run(_raw_copy(db_url, rows, 10_000, res))
        version = asyncio.run(_server_version(db_url))
    finally:
        for p in [*worker_procs, proc]:
            if p and p.poll() is None:
                p.kill()
        nats.close()
        drop_database(to_libpq_url(admin), db_url)
    text = report(res, len(rows), version, _machine())
    if bus == "nats":
        text += (
            f"\nThe agents ran in {bus_workers} `python -m apps.cli worker` processes on a private NATS JetStream "
            "server (`SM_BUS_URL`), not in the API: (e) is the API's RSS; the workers' peak RSS was "
            + ", ".join(f"{w.peak / 2**20:.0f} MB" for w in worker_rss)
            + ". Client, API, workers, NATS and PostgreSQL share the machine; the workers ran at niceness "
            + f"+{load_settings().worker_nice} (`SM_WORKER_NICE`: ingest gets the CPU first, the agents catch up "
            + "after the burst).\n"
        )
    console.print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        section = (
            TIMESCALE_SECTION if "TimescaleDB" in version else WORKERS_SECTION if bus == "nats" else PLAIN_SECTION
        )
        existing = output.read_text() if output.exists() else None
        output.write_text(merge_report(existing, section, text))
    if res.stored != res.batch_readings or res.stored != len(rows):
        console.print(
            f"[red]stored {res.stored:,} != accepted {res.batch_readings:,} / sent {len(rows):,}[/]"
        )
        raise typer.Exit(1)
    # Requests still in flight when the client stops are stored but not counted: at most one per connection.
    if not 0 <= res.single_stored - res.single_ok <= 64:
        console.print(f"[red]single readings: stored {res.single_stored:,}, 2xx answers {res.single_ok:,}[/]")
        raise typer.Exit(1)


@contextlib.contextmanager
def _phase(name: str, meter: CpuMeter, spy: PySpy | None, res: Results) -> Iterator[None]:
    """CPU split of the phase into ``res.cpu``; with ``spy``, its workers' py-spy profile and summary."""
    if spy is not None:
        spy.start(name)
    meter.start()
    yield
    res.cpu[f"({name})"] = meter.stop()
    if spy is not None:
        files = spy.stop()
        summary = summarise(files)
        (spy.out_dir / f"{name}-summary.txt").write_text(summary + "\n")
        console.print(f"py-spy ({name}): {len(files)} profiles, summary in {spy.out_dir}/{name}-summary.txt")


def _singles(use_wrk: bool, base: str, key: str, seconds: float, prefix: str, res: Results) -> None:
    if use_wrk:
        _singles_wrk(base, key, 64, seconds, prefix, res)
    else:
        start = datetime.now(UTC) - timedelta(hours=2 if prefix == "single" else 3)
        asyncio.run(_post_singles(base, key, 64, seconds, start, prefix, res))


async def _server_version(url: str) -> str:
    """``PostgreSQL 15.19`` or ``PostgreSQL 18.6, TimescaleDB 2.29.2 (sensor_readings a hypertable)``."""
    conn = await asyncpg.connect(url)
    try:
        version = f"PostgreSQL {await conn.fetchval('SHOW server_version')}"
        timescale = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        if timescale is None:
            return version
        chunks = await conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'sensor_readings'"
        )
        return f"{version}, TimescaleDB {timescale} (sensor_readings a hypertable; {chunks} chunks after the run)"
    finally:
        await conn.close()


if __name__ == "__main__":
    typer.run(main)
