"""The `make up` path end to end: embedded PostgreSQL, migrations, MLflow, API, seed, UI — then a clean stop.
The second run, in the background, scales out: SM_WORKERS=1 and SM_API_WORKERS=2 start the embedded NATS server
and a worker process, which consumes the simulator's events; `down` stops all of it.

Runs `python -m apps.cli up` as a user would (DATABASE_URL unset), on free ports and a throw-away data
directory inside the project (the embedded server wants its parents readable).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from core.config import PROJECT_ROOT
from core.simulation import generate_demo_fleet

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture()
def stack_env() -> dict[str, str]:
    data_dir = PROJECT_ROOT / ".data" / f"test-stack-{uuid.uuid4().hex[:8]}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "MLFLOW_TRACKING_URI", "API_BASE_URL")
    }
    env.update(
        SM_DATA_DIR=str(data_dir),
        SM_LOG_DIR=str(data_dir / "logs"),
        SM_API_PORT=str(_free_port()),
        SM_UI_PORT=str(_free_port()),
        SM_MLFLOW_PORT=str(_free_port()),
        SM_ENV="development",
    )
    yield env
    shutil.rmtree(data_dir, ignore_errors=True)


def _wait_state(env: dict[str, str], proc: subprocess.Popen[str], timeout: float) -> dict:
    state_path = Path(env["SM_DATA_DIR"]) / "run" / "stack.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"`up` exited early with {proc.returncode}:\n{proc.stdout.read()}")
        if state_path.exists():
            state = json.loads(state_path.read_text() or "{}")
            if state.get("status") == "ready":
                return state
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"stack not ready within {timeout} s:\n{proc.stdout.read()}")


# The seed's readings lie on its 5-minute grid; the live simulator's (SM_DEMO, on by default) are stamped in
# real time between the grid points.
ON_GRID = "timestamp = date_bin('5 minutes', timestamp, TIMESTAMPTZ 'epoch')"


async def _reading_count(socket_dir: str, where: str = ON_GRID) -> int:
    conn = await asyncpg.connect(f"postgresql://postgres@/smart_maintenance?host={socket_dir}")
    try:
        return await conn.fetchval(f"SELECT count(*) FROM sensor_readings WHERE {where}")
    finally:
        await conn.close()


def _socket_dir(env: dict[str, str]) -> str:
    pid_file = Path(env["SM_DATA_DIR"]) / "pg" / "postmaster.pid"
    return pid_file.read_text().splitlines()[4]


def _workers_of(env: dict[str, str]) -> list[int]:
    """Pids of `python -m apps.cli worker` processes of the stack whose SM_DATA_DIR is env's."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline[-3:] != ["-m", "apps.cli", "worker"] and cmdline[-2:] != ["apps.cli", "worker"]:
            continue
        try:
            if proc.environ().get("SM_DATA_DIR") == env["SM_DATA_DIR"]:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_consumed(url: str, timeout: float) -> dict[str, int]:
    """Wait until the bus's stream holds messages and a consumer acknowledged one: the worker consumes what the
    API's relay publishes (the simulator's readings)."""
    import nats

    from core.config import Settings

    stream = Settings.model_fields["bus_stream"].default

    async def state() -> dict[str, int]:
        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            consumers = await js.consumers_info(stream)
            return {
                "messages": info.state.messages,
                "pending": sum((c.num_pending or 0) + (c.num_ack_pending or 0) for c in consumers),
                "acked": max([(c.ack_floor.stream_seq if c.ack_floor else 0) or 0 for c in consumers], default=0),
            }
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = asyncio.run(state())
        except Exception as exc:  # noqa: BLE001 - the stream appears with the first publish
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last["messages"] and last["acked"]:  # the simulator keeps publishing: pending varies
                return last
        time.sleep(0.5)
    raise AssertionError(f"the worker did not consume the stream within {timeout:.0f} s: {last}")


def test_make_up_runs_the_stack_and_stops_cleanly(stack_env: dict[str, str]) -> None:
    api, ui, mlflow = (int(stack_env[k]) for k in ("SM_API_PORT", "SM_UI_PORT", "SM_MLFLOW_PORT"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.cli", "up"], cwd=PROJECT_ROOT, env=stack_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        state = _wait_state(stack_env, proc, timeout=300)
        assert state["urls"]["api"] == f"http://127.0.0.1:{api}"

        ready = httpx.get(f"http://127.0.0.1:{api}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert httpx.get(f"http://127.0.0.1:{mlflow}/health", timeout=10).status_code == 200
        experiments = httpx.post(
            f"http://127.0.0.1:{mlflow}/api/2.0/mlflow/experiments/search",
            json={"max_results": 5},
            timeout=10,
        )
        assert experiments.status_code == 200, experiments.text
        page = httpx.get(f"http://127.0.0.1:{ui}/", timeout=10)
        assert page.status_code == 200 and "streamlit" in page.text.lower()
        assert httpx.get(f"http://127.0.0.1:{ui}/_stcore/health", timeout=10).text.strip() == "ok"

        seeded = asyncio.run(_reading_count(_socket_dir(stack_env)))
        assert seeded == len(generate_demo_fleet(seed=42).readings) == 9_000  # 15 sensors x 600 readings
        # the live demo simulator streams readings through the ingest API
        deadline = time.monotonic() + 60
        while (live := asyncio.run(_reading_count(_socket_dir(stack_env), f"NOT ({ON_GRID})"))) == 0:
            assert time.monotonic() < deadline, "the simulator stored no reading within 60 s"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out
    assert "Smart Maintenance is up" in out
    assert "API key" in out
    assert "Failed to stop server" not in out, out
    assert "stopped simulator" in out, out
    sim_log = (Path(stack_env["SM_LOG_DIR"]) / "simulator.log").read_text()
    accepted = re.search(r"SIMULATE accepted=(\d+) .* unsent=(\d+)", sim_log)
    snapshots = re.search(r"WAVEFORMS sent=\d+ accepted=(\d+)", sim_log)
    assert accepted and snapshots, sim_log
    # every accepted vibration snapshot also stores its two feature readings (<sensor>.rms, <sensor>.kurtosis)
    assert int(accepted.group(1)) + 2 * int(snapshots.group(1)) >= live > 0, sim_log
    for port in (api, ui, mlflow):
        assert not _listening(port), f"port {port} still open after Ctrl-C"
    assert not (Path(stack_env["SM_DATA_DIR"]) / "pg" / "postmaster.pid").exists(), "PostgreSQL left running"
    assert not (Path(stack_env["SM_DATA_DIR"]) / "run" / "stack.json").exists()

    # Second run, in the background and scaled out: the data is kept (the seed is skipped), the embedded NATS server
    # and a worker run beside 2 API processes, and `down` stops all of it.
    nats_port = _free_port()
    scaled_env = {**stack_env, "SM_WORKERS": "1", "SM_API_WORKERS": "2", "SM_NATS_PORT": str(nats_port)}
    up = subprocess.run(
        [sys.executable, "-m", "apps.cli", "up", "--detach"], cwd=PROJECT_ROOT, env=scaled_env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert (
            f"runs 2 API processes, 1 worker, bus: NATS JetStream at nats://127.0.0.1:{nats_port} (embedded, store "
            f"{Path(stack_env['SM_DATA_DIR']).relative_to(PROJECT_ROOT) / 'nats'})" in " ".join(up.stdout.split())
        ), up.stdout
        assert httpx.get(f"http://127.0.0.1:{api}/health/ready", timeout=10).status_code == 200
        assert asyncio.run(_reading_count(_socket_dir(stack_env))) == seeded
        assert _workers_of(stack_env), "no worker process runs"
        consumed = _wait_consumed(f"nats://127.0.0.1:{nats_port}", timeout=90)
        assert consumed["acked"] >= 1, consumed
        # a command in another shell (DATABASE_URL unset) finds the running stack's embedded database
        keys = subprocess.run(
            [sys.executable, "-m", "apps.cli", "keys", "list"], cwd=PROJECT_ROOT, env=stack_env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert keys.returncode == 0 and "bootstrap" in keys.stdout, keys.stdout + keys.stderr
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "apps.cli", "down"], cwd=PROJECT_ROOT, env=stack_env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stack stopped" in down.stdout
    for port in (api, ui, mlflow, nats_port):
        assert not _listening(port)
    assert not _workers_of(stack_env), "a worker process outlived `down`"
    assert not (Path(stack_env["SM_DATA_DIR"]) / "pg" / "postmaster.pid").exists()
    assert (Path(stack_env["SM_DATA_DIR"]) / "nats" / "jetstream").is_dir(), "the embedded NATS store"
    assert (Path(stack_env["SM_LOG_DIR"]) / "worker-1.log").exists()
