"""`python -m apps.cli simulate` against a real API subprocess on a test database: what it prints as accepted is
exactly what is stored."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.config import PROJECT_ROOT
from tests.integration.conftest import fetch

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def api(migrated_database_url: str):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": migrated_database_url, "SM_API_PORT": str(port),
           "SM_API_HOST": "127.0.0.1", "SM_READY_CHECK_MLFLOW": "false", "SM_RATE_LIMIT": "",
           "MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "SM_LOG_LEVEL": "WARNING", "SM_ENV": "development"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "apps.cli", "serve-api"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, "the API exited"
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        yield base, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _summary(out: str) -> tuple[int, ...]:
    """The counts of the CLI's ``SIMULATE accepted=… unsent=…`` line."""
    summary = re.search(
        r"SIMULATE accepted=(\d+) sent=(\d+) duplicates=(\d+) rejected=(\d+) errors=(\d+) unsent=(\d+)", out
    )
    assert summary, out
    return tuple(map(int, summary.groups()))


def test_simulate_stores_exactly_what_it_reports_accepted(api, migrated_database_url: str) -> None:
    base, env = api
    done = subprocess.run(
        [sys.executable, "-m", "apps.cli", "simulate", "--duration", "3", "--rate", "20/s", "--faults",
         "--first-fault", "1", "--api-url", base],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    accepted, sent, duplicates, rejected, errors, unsent = _summary(out)
    assert 50 <= accepted <= 70, out  # 20/s for 3 s, the first reading at t=0
    assert (sent, duplicates, rejected, errors, unsent) == (accepted, 0, 0, 0, 0), out
    assert "fault schedule" in out and "drift on sensor-001" in out, out
    rows = fetch(
        migrated_database_url, "SELECT sensor_id, count(*) AS n FROM sensor_readings GROUP BY sensor_id"
    )
    assert sum(r["n"] for r in rows) == accepted
    assert {r["sensor_id"] for r in rows} == {f"sensor-{i:03d}" for i in range(1, 16)}


def _api_that_goes_away() -> tuple[str, threading.Thread]:
    """A loopback "API" that answers the simulator's start-up probe once and is gone before the answer is sent
    (its listening socket closed): every ingest request after it is refused."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    def answer_once() -> None:
        listener.settimeout(120)
        try:
            conn, _ = listener.accept()
        finally:
            listener.close()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=answer_once, name="api-goes-away", daemon=True)
    thread.start()
    return url, thread


def test_simulate_with_the_api_down_reports_unsent_readings() -> None:
    """The API disappears after the start (an API down at start is refused at once: test_cli_unreachable.py)."""
    url, server = _api_that_goes_away()
    done = subprocess.run(
        [sys.executable, "-m", "apps.cli", "simulate", "--duration", "1", "--rate", "10/s", "--api-url", url],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    server.join(timeout=5)
    out = done.stdout + done.stderr
    accepted, sent, _, _, errors, unsent = _summary(out)
    assert accepted == sent == 0 and errors > 0 and unsent >= 10, out
    assert "ConnectError" in out


def test_simulate_in_simulated_time_stores_the_generated_span(api, migrated_database_url: str) -> None:
    """``--start/--hours/--cadence``: the span's readings, exactly as the generator makes them, sent as history."""
    from core.simulation.live import live_fleet
    from core.simulation.simulated import FaultTiming, SimulatedFleet, simulated_schedule

    base, env = api
    start = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    done = subprocess.run(
        [sys.executable, "-m", "apps.cli", "simulate", "--start", start.isoformat(), "--hours", "0.5",
         "--cadence", "10", "--faults", "--first-fault", "600", "--fault-every", "900", "--fault-duration", "300",
         "--batch-size", "150", "--api-url", base],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert _summary(out) == (180 * 15, 180 * 15, 0, 0, 0, 0), out
    assert "drift on sensor-001" in out and "spike on sensor-006" in out, out
    rows = fetch(
        migrated_database_url,
        "SELECT sensor_id, timestamp, value FROM sensor_readings ORDER BY timestamp, sensor_id",
    )
    specs = live_fleet(15)
    faults = simulated_schedule(specs, 1800.0, FaultTiming(600.0, 900.0, 300.0))
    expected = SimulatedFleet(specs, start, 1800.0, faults=faults).readings_until(
        start + timedelta(minutes=30)
    )
    expected.sort(key=lambda r: (r["timestamp"], r["sensor_id"]))
    assert [(r["sensor_id"], r["timestamp"], r["value"]) for r in rows] == [
        (r["sensor_id"], datetime.fromisoformat(r["timestamp"]), r["value"]) for r in expected
    ]
    assert rows[0]["timestamp"] == start + timedelta(seconds=10) and rows[-1][
        "timestamp"
    ] == start + timedelta(minutes=30)
