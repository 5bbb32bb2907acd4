"""Servers for tests, all on 127.0.0.1: an ASGI app under uvicorn in a thread, a TCP socket that accepts and never
answers, and ``python -m apps.api`` as a child process with a clean environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import PROJECT_ROOT

#: A URL nobody listens on: connecting fails immediately with "connection refused".
CLOSED_HTTP_URL = "http://127.0.0.1:9"


@contextmanager
def serve_app_in_thread(
    app: Any, *, name: str, startup_timeout_s: float = 60.0, shutdown_timeout_s: float = 60.0, **config: Any
) -> Iterator[str]:
    """``app`` under uvicorn (lifespan on, warnings only, no access log unless ``config`` says otherwise) in a
    thread of its own on a free 127.0.0.1 port; yields ``http://127.0.0.1:{port}``. ``config`` goes to
    ``uvicorn.Config`` over those defaults. Fails if the server is not serving within ``startup_timeout_s`` or its
    thread dies first (with the exception it raised)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on"} | config
    # run off the main thread, uvicorn leaves the signal handlers to the test runner
    server = uvicorn.Server(uvicorn.Config(app, **options))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if errors or not thread.is_alive():
                raise AssertionError(f"uvicorn ({name}) failed to start: {errors}")
            if time.monotonic() > deadline:
                raise AssertionError(f"uvicorn ({name}) did not start within {startup_timeout_s} s")
            time.sleep(0.05)  # polling for start-up, not a wait standing in for a result
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=shutdown_timeout_s)
        sock.close()


@contextmanager
def silent_listener(*, name: str = "silent-tcp") -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a 127.0.0.1 socket that accepts connections and never answers (a hung server)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:  # TimeoutError included: look at the stop flag again
                continue

    thread = threading.Thread(target=accept_loop, name=name, daemon=True)
    thread.start()
    host, port = sock.getsockname()[:2]
    try:
        yield str(host), int(port)
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        sock.close()


def clean_environment() -> dict[str, str]:
    """The parent's environment without settings that would leak into a child (SM_*, the ecosystem's URLs)."""
    names = {"DATABASE_URL", "MLFLOW_TRACKING_URI", "REDIS_URL", "API_BASE_URL"}
    return {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k.upper() not in names}


@contextmanager
def api_subprocess(
    database_url: str,
    port: int,
    tmp_path: Path,
    *,
    log_level: str = "WARNING",
    extra_env: Mapping[str, str] | None = None,
    startup_timeout_s: float = 30.0,
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``python -m apps.api`` on 127.0.0.1:``port`` (test settings, MLflow closed and not in the readiness check,
    logs and data under ``tmp_path``), its output in ``tmp_path / "api.stderr"``; yields its base URL, the process
    and that log once ``/health`` answers 200. Terminated (SIGTERM, then killed) at the end."""
    env = clean_environment() | {
        "DATABASE_URL": database_url,
        "MLFLOW_TRACKING_URI": CLOSED_HTTP_URL,
        "SM_ENV": "test",
        "SM_API_HOST": "127.0.0.1",
        "SM_API_PORT": str(port),
        "SM_READY_CHECK_MLFLOW": "false",
        "SM_LOG_LEVEL": log_level,
        "SM_LOG_DIR": str(tmp_path / "logs"),
        "SM_DATA_DIR": str(tmp_path / "data"),
    }
    env |= dict(extra_env or {})
    log_path = tmp_path / "api.stderr"
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "apps.api"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"api exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"api not up within {startup_timeout_s} s:\n{log_path.read_text()}")
            time.sleep(0.1)  # polling for start-up, not a wait standing in for a result
        yield base_url, proc, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
