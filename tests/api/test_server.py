"""The real entry point: ``python -m apps.api`` serving over TCP with uvicorn, JSON logs on stderr."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import api_subprocess

pytestmark = pytest.mark.slow


@pytest.fixture
def api_process(database_url: str, unused_port: int, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    server = api_subprocess(
        database_url, unused_port, tmp_path, log_level="INFO", extra_env={"SM_LOG_JSON": "true"}
    )
    with server as (base_url, _proc, log_path):
        yield base_url, log_path


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
