"""MQTT ingest benchmark (`make bench-mqtt`): readings/s from MQTT publish (QoS 1) to stored row, beside HTTP batch
ingest measured in the same run, on a fresh database.

(a) HTTP: N readings POSTed in batches of 1,000 by 8 concurrent clients to the API on loopback;
(b) MQTT, batches: N readings published as messages of 100 readings (QoS 1) to a private Mosquitto on loopback,
    stored by `python -m apps.cli mqtt-bridge`: from the first publish to the last row in the database;
(c) MQTT, single readings: M messages of one reading each (published by `mosquitto_pub -l`, one process per
    sensor: paho in Python publishes only ~3,000 messages/s), measured the same way;
(d) the ratio b/a (target ≥ 0.5).

The batches' publisher is one paho-mqtt client in a thread (at most 1,000 messages in flight); each phase reports
when its publisher finished, to show whether it, and not the bridge, limited the phase. The API keeps running
during the MQTT phases (its relay and agents handle the bridge's events, as deployed). Rows are counted in the
database (polled every 50 ms); every phase must store exactly what it sent. Client, API, bridge, broker and
PostgreSQL share the machine.
"""

from __future__ import annotations

import asyncio
import getpass
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import _bootstrap  # noqa: F401  (puts the project on sys.path when run by path)
import aiohttp
import asyncpg
import orjson
import paho.mqtt.client as mqtt
import typer
from bench_ingest import _free_port, _machine, _server_version, _wait_healthy
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.progress import Progress

from core.config import PROJECT_ROOT as ROOT
from core.config import load_settings, to_libpq_url
from core.db.admin import create_database, drop_database, upgrade

console = Console(highlight=False)
INGEST = "/api/v1/data/ingest"
METHOD = """\
Produced by `make bench-mqtt` (`scripts/bench_mqtt.py`) in one run: a fresh database migrated with
`alembic upgrade head`; (a) the API (`python -m apps.cli serve-api`, one uvicorn worker per core, rate limit off)
on 127.0.0.1 takes N readings in batches of 1,000 from 8 aiohttp clients; then a private Mosquitto 2.0 on a free
127.0.0.1 port (the queue limits of infrastructure/mosquitto/mosquitto.conf) and one `python -m apps.cli
mqtt-bridge` process (default settings: batches of up to 500 messages or 20 ms, Receive Maximum 2,000) take
(b) N readings as messages of 100 readings (one paho-mqtt publisher thread) and (c) M single-reading messages
(`mosquitto_pub -l`, one process per sensor), all QoS 1, while the API keeps running (its relay and agents handle
the bridge's events, as deployed). MQTT throughput runs from the first publish until the database holds every row
of the phase (polled every 50 ms); only 2xx answers count for HTTP, and every phase must store exactly what it
sent. Client, API, bridge, broker and PostgreSQL share the machine. The bridge stores one batch at a time
(one transaction in flight), while the HTTP phase keeps 8 requests in flight on one uvicorn worker per core; on
this 2-core machine the API's agents, scoring the readings of every phase, share the CPU with the bridge, the
broker and PostgreSQL."""


@dataclass
class Phase:
    readings: int = 0
    messages: int = 0
    seconds: float = 0.0
    publish_seconds: float = 0.0
    stored: int = 0
    errors: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


def _items(prefix: str, n: int, sensors: int, start: datetime) -> list[dict[str, object]]:
    return [
        {"sensor_id": f"{prefix}-{i % sensors:03d}", "timestamp": (start + timedelta(seconds=i // sensors)).isoformat(),
         "value": 20.0 + (i % 600) * 0.01, "quality": 1.0}
        for i in range(n)
    ]  # fmt: skip


async def _count(url: str, prefix: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM sensor_readings WHERE sensor_id LIKE $1", prefix + "-%"))
    finally:
        await conn.close()


async def _wait_stored(url: str, prefix: str, expected: int, progress: Progress, label: str) -> float:
    """Poll until ``expected`` rows of ``prefix`` are stored; the monotonic time it happened."""
    task = progress.add_task(label, total=expected)
    conn = await asyncpg.connect(url)
    last_change, last = time.monotonic(), -1
    try:
        while True:
            stored = int(
                await conn.fetchval("SELECT count(*) FROM sensor_readings WHERE sensor_id LIKE $1", prefix + "-%")
            )
            now = time.monotonic()
            progress.update(task, completed=stored)
            if stored >= expected:
                return now
            if stored != last:
                last, last_change = stored, now
            elif now - last_change > 60:
                raise RuntimeError(f"{label}: stuck at {stored:,} of {expected:,} rows for 60 s")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


# --- HTTP ------------------------------------------------------------------------------------------------------
async def _http(base: str, key: str, bodies: list[bytes], clients: int, res: Phase) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            async with session.post(base + INGEST, data=queue.get_nowait(), headers=headers) as resp:
                payload = await resp.read()
                if resp.status == 202:
                    res.stored += orjson.loads(payload)["accepted"]
                else:
                    res.errors[resp.status] = res.errors.get(resp.status, 0) + 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        res.seconds = time.perf_counter() - t0


# --- MQTT ------------------------------------------------------------------------------------------------------
def _mosquitto(root: Path, port: int) -> subprocess.Popen[bytes]:
    (root / "data").mkdir(parents=True)
    conf = root / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\npersistence true\n"
        f"persistence_location {root / 'data'}/\nmax_queued_messages 0\nmax_queued_bytes 536870912\n"
        f"max_inflight_messages 0\nlog_dest file {root / 'mosquitto.log'}\n"
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {(root / 'mosquitto.log').read_text()[-2000:]}") from None
            time.sleep(0.05)


def _mosquitto_pub(port: int, messages: list[tuple[str, bytes]]) -> float:
    """``mosquitto_pub -l`` (one message per line, QoS 1, 1,000 in flight) for each topic's messages, in parallel."""
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload in messages:
        by_topic.setdefault(topic, []).append(payload)
    binary = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
    t0 = time.perf_counter()
    procs = [
        (subprocess.Popen([binary, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-M", "1000", "-l", "-t", topic],
                          stdin=subprocess.PIPE), payloads)
        for topic, payloads in by_topic.items()
    ]  # fmt: skip
    feeders = [threading.Thread(target=proc.communicate, args=(b"\n".join(p) + b"\n",)) for proc, p in procs]
    for feeder in feeders:
        feeder.start()
    for feeder in feeders:
        feeder.join()
    if any(proc.returncode for proc, _ in procs):
        raise RuntimeError("mosquitto_pub failed")
    return time.perf_counter() - t0


class Publisher:
    """One paho client in its network thread; ``send`` publishes QoS 1 keeping at most 1,000 messages in flight."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher", protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, messages: list[tuple[str, bytes]]) -> float:
        """Publish every message; seconds until the broker acknowledged the last one."""
        t0 = time.perf_counter()
        infos = []
        for n, (topic, payload) in enumerate(messages):
            infos.append(self.client.publish(topic, payload, qos=1))
            if n % 2000 == 1999:
                infos[-1000].wait_for_publish(30)
        for info in infos:
            info.wait_for_publish(60)
        if not all(info.is_published() for info in infos):
            raise RuntimeError("the broker did not acknowledge every message")
        return time.perf_counter() - t0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _mqtt_phase(url: str, publisher: Publisher, prefix: str, items: list[dict[str, object]], per_message: int,
                label: str) -> Phase:  # fmt: skip
    by_sensor: dict[str, list[dict[str, object]]] = {}
    for item in items:
        by_sensor.setdefault(str(item["sensor_id"]), []).append(item)
    # the topic names the message's sensor: one sensor per message, the sensors' messages interleaved
    chunks = [
        [(sensor, rows[i : i + per_message]) for i in range(0, len(rows), per_message)]
        for sensor, rows in by_sensor.items()
    ]
    messages = [
        (f"sm/bench/{sensor}/readings", orjson.dumps(chunk[0] if per_message == 1 else chunk))
        for group in itertools.zip_longest(*chunks)
        for sensor, chunk in (c for c in group if c is not None)
    ]
    res = Phase(readings=len(items), messages=len(messages))
    timing: dict[str, float] = {}

    def publish() -> None:
        if per_message == 1:  # paho in Python publishes ~3,000 messages/s: the C client, one process per sensor
            timing["publish"] = _mosquitto_pub(publisher.port, messages)
        else:
            timing["publish"] = publisher.send(messages)

    with Progress(console=console, transient=True) as progress:
        t0 = time.monotonic()
        thread = threading.Thread(target=publish, name="publisher")
        thread.start()
        done = asyncio.run(_wait_stored(url, prefix, len(items), progress, label))
        thread.join()
    res.seconds = done - t0
    res.publish_seconds = timing.get("publish", float("nan"))
    res.stored = asyncio.run(_count(url, prefix))
    return res


def report(http: Phase, batches: Phase, singles: Phase, version: str, machine: str, workers: int) -> str:
    ratio = batches.rate / http.rate if http.rate else 0.0
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}; {version}; API with {workers} uvicorn "
        "worker(s), one bridge process, Mosquitto 2.0 and PostgreSQL on the same machine.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| (a) HTTP batches of 1,000 by 8 clients: {http.stored:,} of {http.readings:,} stored | "
        f"{http.rate:,.0f} readings/s | |",
        f"| (b) MQTT messages of 100 readings, QoS 1: {batches.stored:,} of {batches.readings:,} stored "
        f"({batches.messages:,} messages; publisher done after {batches.publish_seconds:.1f} s of "
        f"{batches.seconds:.1f} s) | {batches.rate:,.0f} readings/s | |",
        f"| (c) MQTT single readings, QoS 1: {singles.stored:,} of {singles.readings:,} stored (publisher done after "
        f"{singles.publish_seconds:.1f} s of {singles.seconds:.1f} s) | {singles.rate:,.0f} readings/s | |",
        f"| (d) ratio b/a | {ratio:.2f} | ≥ 0.5 ({verdict}) |",
    ]
    if http.errors:
        lines += ["", f"Non-2xx HTTP responses (not counted): {http.errors}"]
    return "\n".join(lines)


def main(
    readings: Annotated[int, typer.Option(help="readings of (a) and of (b)")] = 200_000,
    singles: Annotated[int, typer.Option(help="single-reading messages of (c)")] = 30_000,
    output: Annotated[Path | None, typer.Option(help="also write the report (markdown) here")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn workers of the API")] = os.cpu_count() or 1,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="BENCH_DATABASE_URL", help="server for the throw-away database (default: the test admin server)"
        ),
    ] = None,
) -> None:
    settings = load_settings()
    admin = database_url or (
        settings.database_url if settings.database_url_is_explicit else settings.test_admin_database_url
    )
    db_url = create_database(to_libpq_url(admin), prefix="sm_bench_mqtt")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    http, batch_phase, single_phase = Phase(readings=readings), Phase(), Phase()
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    try:
        upgrade(db_url)
        base_env = {**os.environ, "DATABASE_URL": db_url, "SM_READY_CHECK_MLFLOW": "false", "SM_LOG_LEVEL": "WARNING",
                    "SM_RATE_LIMIT": "", "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # fmt: skip
        port = _free_port()
        api = subprocess.Popen([sys.executable, "-m", "apps.cli", "serve-api"], cwd=ROOT,
                               env={**base_env, "SM_API_PORT": str(port), "SM_API_HOST": "127.0.0.1",
                                    "SM_API_WORKERS": str(workers)})  # fmt: skip
        procs.append(api)
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, api)
        http_items = _items("http", readings, 100, start)
        bodies = [orjson.dumps(http_items[i : i + 1000]) for i in range(0, len(http_items), 1000)]
        console.print(f"(a) HTTP: {readings:,} readings in {len(bodies):,} batches, 8 clients")
        asyncio.run(_http(base, settings.api_key.get_secret_value(), bodies, 8, http))
        # the API keeps running: its relay publishes the bridge's events to its agents, as deployed

        broker_port = _free_port()
        procs.append(_mosquitto(tmp, broker_port))
        log = (tmp / "bridge.log").open("wb")
        bridge = subprocess.Popen([sys.executable, "-m", "apps.cli", "mqtt-bridge"], cwd=ROOT, stdout=log, stderr=log,
                                  env={**base_env, "SM_MQTT_PORT": str(broker_port), "SM_LOG_JSON": "false",
                                       "SM_LOG_LEVEL": "INFO"})  # fmt: skip
        procs.append(bridge)
        deadline = time.monotonic() + 60
        while "MQTT bridge running" not in (tmp / "bridge.log").read_text():
            if bridge.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bridge did not start: {(tmp / 'bridge.log').read_text()[-2000:]}")
            time.sleep(0.1)
        publisher = Publisher(broker_port)
        try:
            warm = _items("warm", 1000, 10, start - timedelta(hours=1))
            _mqtt_phase(db_url, publisher, "warm", warm, 100, "warm-up")
            console.print(f"(b) MQTT: {readings:,} readings in messages of 100")
            batch_phase = _mqtt_phase(
                db_url, publisher, "mqttb", _items("mqttb", readings, 100, start), 100, "(b) batches"
            )
            console.print(f"(c) MQTT: {singles:,} single-reading messages")
            single_items = _items("mqtts", singles, 100, start)
            single_phase = _mqtt_phase(db_url, publisher, "mqtts", single_items, 1, "(c) singles")
        finally:
            publisher.close()
        version = asyncio.run(_server_version(db_url))
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        drop_database(to_libpq_url(admin), db_url)
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(http, batch_phase, single_phase, version, _machine(), workers)
    console.print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(f"# MQTT ingest benchmark\n\n{METHOD}\n\n## Plain PostgreSQL\n\n{text}\n")
    failed = [(name, p) for name, p in (("a", http), ("b", batch_phase), ("c", single_phase)) if p.stored != p.readings]
    if failed:
        console.print(
            f"[red]phases that did not store what they sent: {[(n, p.stored, p.readings) for n, p in failed]}[/]"
        )
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
