"""The back-test's API client against a scripted HTTP server on loopback: retries (connection errors, 5xx, 429
with Retry-After, 409 of an ingest in flight), clear errors on other 4xx, conflicting sensors; and the settle
loop's deadline."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from apps.cli.backtest.client import ApiError, PlatformClient, SetupConflict
from apps.cli.backtest.platform import deferred_signals, retention_days
from apps.cli.backtest.runner import Options, Run, SettleTimeout
from core.backtest.frame import ReplayFrame
from core.backtest.specs import SensorPlan

Reply = tuple[int, dict[str, Any], dict[str, str]]


class Script:
    """Replies per (method, path): a list consumed in order (the last one repeats)."""

    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, path)] = list(replies)

    def reply(self, method: str, path: str) -> Reply:
        queue = self.replies.get((method, path.split("?", 1)[0]), [(404, {"detail": "no route"}, {})])
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            script.requests.append((self.command, self.path, dict(self.headers), body))
            status, payload, headers = script.reply(self.command, self.path)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _client(url: str, **options: Any) -> PlatformClient:
    return PlatformClient(url, "key", retry_base_s=0.01, retry_max_s=0.05, **options)


INGESTED = (202, {"accepted": 1, "duplicates": 0, "rejected": []}, {})


def test_ingest_retries_5xx_429_and_409_with_the_same_idempotency_key(server: tuple[str, Script]) -> None:
    url, script = server
    script.on(
        "POST", "/api/v1/data/ingest",
        (503, {"detail": "database unavailable"}, {}), (429, {"detail": "slow down"}, {"Retry-After": "0"}),
        (409, {"detail": "in flight"}, {}), INGESTED,
    )  # fmt: skip
    retries: list[str] = []
    client = _client(url, on_retry=retries.append)
    answer = client.ingest(
        [{"sensor_id": "s", "value": 1.0, "timestamp": "2003-01-01T00:00:00+00:00"}], "k-1", "b"
    )
    assert answer["accepted"] == 1
    assert len(script.requests) == 4 and len(retries) == 3
    assert {r[2]["Idempotency-Key"] for r in script.requests} == {"k-1"}
    assert all(r[1] == "/api/v1/data/ingest?backfill=true" for r in script.requests)
    assert all(r[2]["X-API-Key"] == "key" for r in script.requests)
    assert json.loads(script.requests[0][3])[0]["sensor_id"] == "s"


def test_other_4xx_ends_the_run_with_the_problem_detail(server: tuple[str, Script]) -> None:
    url, script = server
    script.on("POST", "/api/v1/data/ingest", (422, {"detail": "readings failed validation"}, {}))
    with pytest.raises(ApiError, match="ingest of batch 3: HTTP 422: readings failed validation"):
        _client(url).ingest([], "k", "batch 3")
    assert len(script.requests) == 1  # never retried


def test_persistent_5xx_and_no_server_give_up_after_the_attempts(server: tuple[str, Script]) -> None:
    url, script = server
    script.on("GET", "/api/v1/admin/events", (500, {"detail": "boom"}, {}))
    with pytest.raises(ApiError, match="HTTP 500 after 3 attempts: boom"):
        _client(url, attempts=3).events_status()
    with pytest.raises(ApiError, match="ConnectError after 2 attempts"):
        _client("http://127.0.0.1:9", attempts=2).events_status()


def test_events_status_explains_refused_keys_and_old_platforms(server: tuple[str, Script]) -> None:
    url, script = server
    script.on("GET", "/api/v1/admin/events", (403, {"detail": "the key lacks the admin scope"}, {}))
    with pytest.raises(ApiError, match="needs a key with the admin scope"):
        _client(url).events_status()
    script.on("GET", "/api/v1/admin/events", (404, {"detail": "Not Found"}, {}))
    with pytest.raises(ApiError, match="older than the back-test"):
        _client(url).events_status()


def test_existing_assets_are_reused_and_conflicting_sensors_listed(server: tuple[str, Script]) -> None:
    url, script = server
    script.on("GET", "/api/v1/assets", (200, {"items": [{"id": 4, "name": "B1"}], "total": 1}, {}))
    script.on("POST", "/api/v1/assets", (201, {"id": 5, "name": "B2"}, {}))
    client = _client(url)
    assert client.ensure_assets(["B1", "B2"]) == {"B1": 4, "B2": 5}
    assert [r[3] for r in script.requests if r[0] == "POST"] == [b'{"name":"B2"}']
    script.on("POST", "/api/v1/sensors", (409, {"detail": "exists"}, {}))
    script.on("GET", "/api/v1/sensors/B1_rms", (200, {"sensor_id": "B1_rms", "type": "vibration", "unit": "mm/s",
                                                      "asset_id": 4}, {}))  # fmt: skip
    plan = SensorPlan("B1_rms", "B1", "acceleration", "g")
    with pytest.raises(SetupConflict, match=r"B1_rms: type 'vibration' \(spec 'acceleration'\), unit 'mm/s'"):
        client.ensure_sensors([plan], {"B1": 4})
    same = SensorPlan("B1_rms", "B1", "vibration", None)  # no unit in the spec: any registered unit is fine
    assert client.ensure_sensors([same], {"B1": 4}) == 1


def test_settle_gives_up_at_the_deadline_with_the_last_answer(
    server: tuple[str, Script], tmp_path: Path
) -> None:
    url, script = server
    busy = {"outbox_pending": 0, "bus": {"queued": 0, "running": 2}, "idle": False}
    script.on("GET", "/api/v1/admin/events", (200, busy, {}))
    options = Options(csv=tmp_path / "f.csv", time_column="t", columns=".", asset_pattern="(.)",
                      sensor_types=["x"], report=tmp_path / "r.json", settle_timeout_s=0.3,
                      poll_interval_s=0.05)  # fmt: skip
    frame = ReplayFrame(sensors=[], times=[datetime(2003, 1, 1, tzinfo=UTC)], values=np.zeros((1, 0)),
                        end=datetime(2003, 1, 1, tzinfo=UTC), rows_in_file=1, rows_after_end=0, empty_cells=0,
                        nonfinite_cells=0)  # fmt: skip
    run = Run(options, frame, Console(file=io.StringIO()))
    with pytest.raises(SettleTimeout, match="did not settle within 0.3 s .*running 2"):
        run.settle(_client(url))
    idle = {"outbox_pending": 0, "bus": {"queued": 0, "running": 0}, "idle": True}
    script.on(
        "GET", "/api/v1/admin/events", (200, busy, {}), (200, idle, {}), (200, idle, {}), (200, idle, {})
    )
    polls_before = len(script.requests)
    run.settle(_client(url))
    assert len(script.requests) - polls_before == 4  # busy, then three idle answers in a row


def test_retention_covers_the_oldest_reading_and_signals_are_held() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retention_days(datetime(2025, 12, 31, tzinfo=UTC), now) == 8
    oldest = datetime(2003, 10, 22, tzinfo=UTC)
    assert retention_days(oldest, now) == (now - oldest).days + 7
    with pytest.raises(KeyboardInterrupt), deferred_signals():
        os.kill(os.getpid(), signal.SIGTERM)  # held until the block ends
        held = True
    assert held
