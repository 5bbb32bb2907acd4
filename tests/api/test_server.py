"""The real entry point: ``python -m apps.api`` serving over TCP with uvicorn, JSON logs on stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.config import PROJECT_ROOT
from tests.api.conftest import CLOSED_HTTP_URL

pytestmark = pytest.mark.slow

STARTUP_DEADLINE_S = 30.0


def _clean_environment() -> dict[str, str]:
    """The parent's environment without settings that would leak into the child."""
    names = {"DATABASE_URL", "MLFLOW_TRACKING_URI", "REDIS_URL", "API_BASE_URL"}
    return {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k.upper() not in names}


@pytest.fixture
def api_process(database_url: str, unused_port: int, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    env = _clean_environment() | {
        "DATABASE_URL": database_url,
        "MLFLOW_TRACKING_URI": CLOSED_HTTP_URL,
        "SM_ENV": "test",
        "SM_API_HOST": "127.0.0.1",
        "SM_API_PORT": str(unused_port),
        "SM_READY_CHECK_MLFLOW": "false",
        "SM_LOG_JSON": "true",
        "SM_LOG_LEVEL": "INFO",
        "SM_LOG_DIR": str(tmp_path / "logs"),
        "SM_DATA_DIR": str(tmp_path / "data"),
    }
    log_path = tmp_path / "api.stderr"
    base_url = f"http://127.0.0.1:{unused_port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "apps.api"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"api exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"api not up within {STARTUP_DEADLINE_S} s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base_url, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def test_python_m_apps_api_serves_and_logs_json(api_process: tuple[str, Path]) -> None:
    base_url, log_path = api_process
    liveness = httpx.get(f"{base_url}/health", headers={"X-Request-ID": "uvicorn-probe-1"}, timeout=5)
    assert liveness.status_code == 200
    assert liveness.headers["x-request-id"] == "uvicorn-probe-1"

    ready = httpx.get(f"{base_url}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["components"]["database"]["status"] == "ok"

    missing = httpx.get(f"{base_url}/nope", headers={"X-Request-ID": "uvicorn-probe-2"}, timeout=5)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    deadline = time.monotonic() + 10
    while True:  # the access line is written after the response; poll the log with a deadline
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        probe = [line for line in lines if line.get("correlation_id") == "uvicorn-probe-2"]
        if probe or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raw = log_path.read_text()
    assert all(line.startswith("{") for line in raw.splitlines() if line.strip()), raw  # JSON lines only
    assert probe, raw
    access = next(line for line in probe if line["logger"] == "apps.api.access")
    assert access["status"] == 404 and access["path"] == "/nope"
    assert any(line["logger"] == "uvicorn.error" for line in lines), "uvicorn's own lines are routed too"
    assert not any(line["logger"] == "uvicorn.access" for line in lines), "one access log: ours"
    assert not any("color_message" in line for line in lines)
