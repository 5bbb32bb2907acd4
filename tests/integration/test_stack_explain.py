"""`make up` explains a start failure in one line (``apps.cli.stack_explain``): on the real output of the real
commands failing — a port in use, a configuration the API refuses, an unreachable database, the simulator's key
rejected by a running API — plus `up` itself failing on an unreachable database, and the fallbacks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from apps.cli.stack_explain import explain, last_error_line, not_healthy
from core.config import PROJECT_ROOT, Settings
from tests.support.servers import serve_app_in_thread

CLOSED_DB = "postgresql://postgres@127.0.0.1:9/nowhere"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k not in ("DATABASE_URL",)}
    env.update({"SM_ENV": "development", "SM_LOG_JSON": "true", **extra})
    return env


def _run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "apps.cli", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


@contextmanager
def _listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_api_port_in_use(database_url: str) -> None:
    with _listening() as port:
        done = _run("serve-api", env=_env(DATABASE_URL=database_url, SM_API_PORT=str(port)))
    line = explain("api", done.stdout + done.stderr, exit_code=done.returncode, log="logs/api.log")
    assert line.startswith("api exited with code"), line
    assert f"port {port} is already in use" in line and "SM_API_PORT" in line and "make down" in line, line
    assert "\n" not in line


def test_ui_port_in_use() -> None:
    with _listening() as port:
        done = _run("serve-ui", env=_env(SM_UI_PORT=str(port)), timeout=60)
    line = explain("ui", done.stdout + done.stderr, exit_code=done.returncode)
    assert f"port {port} is already in use" in line and "SM_UI_PORT" in line, (line, done.stdout, done.stderr)


def test_api_refusing_its_configuration() -> None:
    done = _run("serve-api", env=_env(SM_ENV="production", SM_API_KEY="weak", DATABASE_URL=CLOSED_DB))
    assert done.returncode == 2
    line = explain("api", done.stdout + done.stderr, exit_code=done.returncode)
    assert line.startswith("api exited with code 2: its configuration was refused: refusing to start"), line
    assert "SM_API_KEY is shorter than" in line and "fix it in .env" in line and "\n" not in line, line
    assert "weak" not in line.replace("weak secret", "")  # the secret itself is never echoed


def test_database_unreachable_for_the_migrations() -> None:
    done = _run("migrate", env=_env(DATABASE_URL=CLOSED_DB))
    assert done.returncode != 0
    line = explain("migrations", done.stdout + done.stderr, exit_code=done.returncode)
    assert "the database is not reachable" in line and "DATABASE_URL" in line, line
    assert "Connect call failed" in line or "Connection refused" in line, line


@contextmanager
def _serve_api(settings: Settings) -> Iterator[str]:
    from apps.api.main import create_app

    with serve_app_in_thread(create_app(settings), name="explain-uvicorn") as base_url:
        yield base_url


def test_simulator_key_rejected_by_the_api(settings: Settings) -> None:
    """The real failure of `make up` after the simulator's key was revoked or changed on one side only."""
    with _serve_api(settings) as base_url:
        env = _env(API_BASE_URL=base_url, SM_SIMULATOR_API_KEY="sm_not-the-registered-simulator-key")
        done = _run("simulate", "--duration", "5", "--rate", "20/s", env=env, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "SM_SIMULATOR_API_KEY was rejected" in output  # the simulator's own hint
    line = explain("simulator", output, exit_code=done.returncode, log="logs/simulator.log")
    assert line.startswith(
        "simulator exited with code 1: the simulator's key SM_SIMULATOR_API_KEY was rejected (401): "
        "The API key is not valid.; set SM_SIMULATOR_API_KEY in .env"
    ), line
    assert "make up" in line and "\n" not in line


def test_up_explains_an_unreachable_database(tmp_path: Path) -> None:
    """`up` itself, end to end up to the failing step: one line naming the step, the reason and the action."""
    data = PROJECT_ROOT / ".data" / f"test-explain-{os.getpid()}"
    env = _env(
        DATABASE_URL=CLOSED_DB, SM_DATA_DIR=str(data), SM_LOG_DIR=str(tmp_path / "logs"),
        SM_API_PORT=str(_free_port()), SM_UI_PORT=str(_free_port()), SM_MLFLOW_PORT=str(_free_port()),
        COLUMNS="200",
    )  # fmt: skip
    try:
        done = _run("up", env=env, timeout=120)
    finally:
        import shutil

        shutil.rmtree(data, ignore_errors=True)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    [line] = [ln for ln in out.splitlines() if ln.startswith("migrations exited with code")]
    assert "the database is not reachable" in line and "check DATABASE_URL" in line, out
    assert "stopping" in out and "Traceback" not in out.split(line)[-1]


@pytest.mark.parametrize(
    ("tail", "code", "expected"),
    [
        ("Killed", -9, "api was killed (SIGKILL: out of memory?); see logs/api.log; free memory"),
        (
            '{"level": "ERROR", "logger": "x", "message": "boom: the thing broke"}\n'
            '{"level": "INFO", "message": "bye"}',
            1,
            "api exited with code 1: boom: the thing broke; see logs/api.log; fix that and run `make up` again.",
        ),
        (
            "Traceback (most recent call last):\n  File x\nRuntimeError: model store corrupt\n",
            3,
            "api exited with code 3: RuntimeError: model store corrupt; see logs/api.log;",
        ),
        ("", 0, "api exited with code 0 without an error message; see logs/api.log; run `make up` again"),
        (
            "ModuleNotFoundError: No module named 'lightgbm'",
            1,
            "a dependency is missing (No module named 'lightgbm')",
        ),
        ("OSError: [Errno 28] No space left on device", 1, "the disk is full"),
    ],
)
def test_fallbacks_name_the_service_the_end_the_error_and_the_log(
    tail: str, code: int, expected: str
) -> None:
    line = explain("api", tail, exit_code=code, log="logs/api.log")
    assert expected in line, line
    assert "\n" not in line


def test_database_rules_do_not_blame_the_database_for_the_ui() -> None:
    line = explain("ui", "ConnectionRefusedError: [Errno 111] Connection refused", exit_code=1)
    assert "database" not in line and "ConnectionRefusedError" in line, line


def test_not_healthy_in_time_quotes_the_last_answer_and_error() -> None:
    line = not_healthy(
        "mlflow", "http://127.0.0.1:5000/health", 120, "ConnectError",
        "INFO starting\nalembic.util.exc.CommandError: Can't locate revision\n", "logs/mlflow.log",
    )  # fmt: skip
    assert line.startswith("mlflow did not become healthy within 120 s at http://127.0.0.1:5000/health"), line
    assert "Can't locate revision" in line and "logs/mlflow.log" in line
    assert last_error_line("ok\nall fine\n") is None
