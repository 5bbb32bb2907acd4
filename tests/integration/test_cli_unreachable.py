"""CLI commands that need MLflow, the API or PostgreSQL fail fast when it is not there: exit code 1 and one line
naming the address they tried (no traceback, no minutes of client retries). Real processes, real closed ports
on 127.0.0.1 (and a socket that accepts but never answers). Time is not asserted here: the operator's figure is
measured with ``time`` (docs/operations: see the CLI section)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from tests.support.servers import silent_listener

pytestmark = pytest.mark.slow

#: a bound for a hung child only (the test fails then); the commands end long before
CHILD_TIMEOUT_S = 120


def _closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released: connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed() -> dict[str, str]:
    mlflow, api, db = _closed_port(), _closed_port(), _closed_port()
    return {
        "mlflow": f"http://127.0.0.1:{mlflow}",
        "api": f"http://127.0.0.1:{api}",
        "db": f"127.0.0.1:{db}",
    }


@pytest.fixture
def silent_server() -> Iterator[str]:
    """``http://127.0.0.1:port`` of a socket that accepts connections and never answers (a hung server)."""
    with silent_listener(name="silent-server") as (host, port):
        yield f"http://{host}:{port}"


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "MLFLOW_"))}
    for name in ("DATABASE_URL", "API_BASE_URL", "REDIS_URL"):
        base.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "apps.cli", *args],
        cwd=PROJECT_ROOT,
        env=base
        | {"SM_DATA_DIR": str(cwd / "data"), "SM_LOG_DIR": str(cwd / "logs"), "COLUMNS": "200"}
        | env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )


def _assert_one_line_failure(result: subprocess.CompletedProcess[str], expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"exit {result.returncode}:\n{output}"
    assert expected in output, output
    assert "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if "cannot reach" in line]
    assert line.startswith("error: cannot reach"), line
    assert "`make up` starts it" in line


MLFLOW_COMMANDS = [
    ["models", "list"],
    ["models", "compare", "anomaly_demo"],
    ["models", "promote", "anomaly_demo", "1"],
    ["models", "promote", "anomaly_demo", "1", "--force"],
]


@pytest.mark.parametrize("args", MLFLOW_COMMANDS, ids=" ".join)
def test_mlflow_commands_fail_fast_naming_the_address(
    args: list[str], closed: dict[str, str], tmp_path: Path
) -> None:
    result = _run(args, {"MLFLOW_TRACKING_URI": closed["mlflow"]}, tmp_path)
    _assert_one_line_failure(result, f"cannot reach MLflow at {closed['mlflow']} (connection refused)")


def test_models_list_gives_up_on_a_server_that_never_answers(silent_server: str, tmp_path: Path) -> None:
    result = _run(["models", "list"], {"MLFLOW_TRACKING_URI": silent_server}, tmp_path)
    _assert_one_line_failure(result, f"cannot reach MLflow at {silent_server} (connected, but no answer")


def _backtest_args(tmp_path: Path, api_url: str) -> list[str]:
    csv = tmp_path / "plant.csv"
    csv.write_text("timestamp,B1_rms\n2003-10-22T12:06:24,0.1\n2003-10-22T12:16:24,0.2\n")
    return [
        "backtest", str(csv), "--time-column", "timestamp", "--columns", "_rms", "--asset-pattern", "(B1)",
        "--sensor-type", "acceleration:g", "--report", str(tmp_path / "out.json"), "--no-plot",
        "--api-url", api_url,
    ]  # fmt: skip


@pytest.mark.parametrize("command", ["simulate live", "simulate history", "simulate default url", "backtest"])
def test_api_commands_fail_fast_naming_the_address(
    command: str, closed: dict[str, str], tmp_path: Path
) -> None:
    url = closed["api"]
    env: dict[str, str] = {}
    if command == "simulate live":
        args = ["simulate", "--duration", "5", "--api-url", url]
    elif command == "simulate history":
        args = ["simulate", "--hours", "0.01", "--api-url", url]
    elif command == "simulate default url":
        args, env = ["simulate", "--duration", "5"], {"API_BASE_URL": url}
    else:
        args = _backtest_args(tmp_path, url)
    result = _run(args, env, tmp_path)
    _assert_one_line_failure(result, f"cannot reach the API at {url} (connection refused)")
    if command == "backtest":
        assert not (tmp_path / "out.json").exists()


def test_simulate_gives_up_on_a_server_that_never_answers(silent_server: str, tmp_path: Path) -> None:
    result = _run(["simulate", "--duration", "5", "--api-url", silent_server], {}, tmp_path)
    _assert_one_line_failure(result, f"cannot reach the API at {silent_server} (connected, but no answer")


DATABASE_COMMANDS = [
    ["export-labels"],
    ["dead-letters", "list"],
    ["dead-letters", "replay", "1"],
    ["keys", "list"],
    ["ingest-csv", "{csv}"],
    ["purge-idempotency"],
]


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_database_commands_fail_fast_naming_the_address(
    args: list[str], closed: dict[str, str], tmp_path: Path
) -> None:
    csv = tmp_path / "readings.csv"
    csv.write_text(
        "sensor_id,sensor_type,value,unit,timestamp,quality\ns1,temperature,1.0,C,2024-01-01T00:00:00Z,1\n"
    )
    args = [arg.format(csv=csv) for arg in args]
    url = f"postgresql://postgres@{closed['db']}/sm_nowhere"
    result = _run(args, {"DATABASE_URL": url}, tmp_path)
    _assert_one_line_failure(
        result, f"cannot reach PostgreSQL at {closed['db']}/sm_nowhere (connection refused)"
    )
    assert "postgres@" not in result.stdout + result.stderr  # the user (and any password) is not echoed
