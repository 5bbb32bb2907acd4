"""``python -m apps.cli backtest`` end to end: a synthetic wide CSV (2 pumps × temperature and vibration, 1-minute
cadence, naive 2003 timestamps in Europe/Berlin, PumpA's temperature above the default 85 °C rule for its last 40
minutes) replayed through the real API — its own embedded database and API (removed afterwards, also on Ctrl-C),
or a running API given with ``--api-url``."""

from __future__ import annotations

import csv
import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from core.config import PROJECT_ROOT
from tests.support.cli import cli_environment, run_cli

pytestmark = pytest.mark.slow

ROWS = 300
HOT_ROWS = 40
T0 = datetime(2003, 3, 1, 8, 0)  # naive, read in Europe/Berlin (CET, UTC+1)
T0_UTC = datetime(2003, 3, 1, 7, 0, tzinfo=UTC)
END = T0_UTC + timedelta(minutes=ROWS - 1)
FIRST_HOT = T0_UTC + timedelta(minutes=ROWS - HOT_ROWS)
EMPTY_EVERY = 50  # PumpB_vib has no value every 50th row
SENSORS = ("PumpA_temp", "PumpA_vib", "PumpB_temp", "PumpB_vib")
NO_MLFLOW = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
RUN_DEADLINE_S = 90.0


def write_wide_csv(path: Path) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["time", "note", *SENSORS])
        for i in range(ROWS):
            temp_a = 60 + rng.gauss(0, 0.5) + (30 if i >= ROWS - HOT_ROWS else 0)
            vib_b = "" if i % EMPTY_EVERY == 7 else f"{2.5 + rng.gauss(0, 0.05):.4f}"
            out.writerow([
                (T0 + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S"), "free text",
                f"{temp_a:.3f}", f"{2 + rng.gauss(0, 0.05):.4f}", f"{55 + rng.gauss(0, 0.5):.3f}", vib_b,
            ])  # fmt: skip


def backtest_args(csv_path: Path, report: Path, *extra: str) -> list[str]:
    return [
        "backtest", str(csv_path), "--time-column", "time", "--columns", "_(temp|vib)$",
        "--asset-pattern", "^(Pump[AB])_", "--sensor-type", "_temp$=temperature", "--sensor-type", "vibration",
        "--timezone", "Europe/Berlin", "--report", str(report), *extra,
    ]  # fmt: skip


def backtest_dirs() -> set[Path]:
    return set((PROJECT_ROOT / ".data").glob("backtest-*"))


def leftovers(marker: str) -> list[str]:
    """Processes mentioning ``marker`` (the run's directory): the database in its command line (``-D …/pg``), the
    API in its environment (``SM_DATA_DIR`` lies in that directory)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        try:
            environ = " ".join(proc.environ().values())
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            environ = ""
        if marker in cmdline or marker in environ:
            found.append(f"{proc.info['pid']}: {cmdline[:200]}")
    return found


def _iso(when: datetime) -> str:
    return when.isoformat()


@dataclass
class Outcome:
    done: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    seconds: float
    run_dir: str


@pytest.fixture(scope="module")
def private_run(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Outcome:
    """One run without --api-url (its own embedded PostgreSQL and API)."""
    tmp = tmp_path_factory.mktemp("backtest")
    csv_path, report = tmp / "wide.csv", tmp / "report.json"
    write_wide_csv(csv_path)
    before = backtest_dirs()
    t0 = time.monotonic()
    done = run_cli(database_url, *backtest_args(csv_path, report), timeout=RUN_DEADLINE_S + 30, **NO_MLFLOW)
    seconds = time.monotonic() - t0
    assert done.returncode == 0, done.stdout + done.stderr
    assert backtest_dirs() == before, "the run's directory under .data/ was not removed"
    line = next(x for x in done.stdout.splitlines() if x.startswith("embedded PostgreSQL in "))
    run_dir = line.split(" in ", 1)[1].split(" ", 1)[0]
    return Outcome(done=done, report=json.loads(report.read_text()), seconds=seconds, run_dir=run_dir)


def test_private_platform_run_reports_and_leaves_nothing_behind(private_run: Outcome) -> None:
    report, out = private_run.report, private_run.done.stdout
    assert private_run.seconds < RUN_DEADLINE_S
    assert leftovers(private_run.run_dir) == []
    assert "no MLflow: statistical baseline" in out
    assert set(report) == {"end", "sensors", "work_orders", "replay"}
    assert report["end"] == _iso(END) == "2003-03-01T11:59:00+00:00"  # naive Berlin time read as UTC+1

    replay = report["replay"]
    empty = len(range(7, ROWS, EMPTY_EVERY))
    assert replay["rows_replayed"] == ROWS and replay["empty_cells"] == empty
    assert replay["readings"] == replay["accepted"] == 4 * ROWS - empty
    assert (replay["duplicates"], replay["rejected"], replay["dead_letters"]) == (0, 0, 0)
    assert replay["start"] == _iso(T0_UTC)

    sensors = report["sensors"]
    assert set(sensors) == set(SENSORS)
    for sensor_id, s in sensors.items():
        assert set(s) == {
            "asset", "first_anomaly", "first_alert", "first_work_order", "anomalies", "alerts", "work_orders"
        }  # fmt: skip
        assert s["asset"] == sensor_id.split("_")[0]
    hot = sensors["PumpA_temp"]
    first_anomaly = datetime.fromisoformat(hot["first_anomaly"])
    assert FIRST_HOT <= first_anomaly <= END  # event time, not the wall clock of the run
    assert hot["anomalies"] >= 1
    assert hot["alerts"] >= 1  # temperature-high (> 85 °C, 3 of the last 20 readings)
    assert hot["work_orders"] >= 1  # the scheduling agent opens one for a high alert
    for quiet in ("PumpA_vib", "PumpB_temp", "PumpB_vib"):
        assert (sensors[quiet]["alerts"], sensors[quiet]["work_orders"]) == (0, 0), quiet
    assert report["work_orders"]
    for order in report["work_orders"]:
        assert set(order) == {"id", "asset", "opened_at", "sensors"}
        assert order["asset"] == "PumpA" and "PumpA_temp" in order["sensors"]
    totals = f"anomalies={sum(s['anomalies'] for s in sensors.values())} alerts="
    assert f"BACKTEST rows={ROWS} readings={replay['readings']} accepted={replay['accepted']}" in out
    assert totals in out and "PumpA_temp" in out and "Work orders" in out


def test_private_platform_run_reports_event_times_of_alerts_and_work_orders(private_run: Outcome) -> None:
    hot = private_run.report["sensors"]["PumpA_temp"]
    third_hot = FIRST_HOT + timedelta(minutes=2)  # temperature-high opens on the third matching reading
    assert hot["first_alert"] is not None
    assert FIRST_HOT <= datetime.fromisoformat(hot["first_alert"]) <= END
    assert datetime.fromisoformat(hot["first_alert"]) >= min(
        third_hot, datetime.fromisoformat(hot["first_anomaly"])
    )
    assert hot["first_work_order"] is not None
    assert (
        datetime.fromisoformat(hot["first_alert"]) <= datetime.fromisoformat(hot["first_work_order"]) <= END
    )
    for order in private_run.report["work_orders"]:
        assert (
            order["opened_at"] is not None and FIRST_HOT <= datetime.fromisoformat(order["opened_at"]) <= END
        )
    assert "the API does not send" not in private_run.done.stdout


def test_ctrl_c_stops_the_database_and_the_api(tmp_path: Path, database_url: str) -> None:
    csv_path = tmp_path / "wide.csv"
    write_wide_csv(csv_path)
    before = backtest_dirs()
    env = cli_environment(database_url, **NO_MLFLOW)
    args = backtest_args(csv_path, tmp_path / "report.json")
    proc = subprocess.Popen([sys.executable, "-m", "apps.cli", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (new := [d for d in backtest_dirs() - before if (d / "api.log").exists()]):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the API was never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # while the API starts (or the replay runs)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert backtest_dirs() == before
    assert leftovers(new[0].name) == []


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, database_url: str) -> None:
    csv_path = tmp_path / "wide.csv"
    write_wide_csv(csv_path)
    report = tmp_path / "r.json"
    cases = {
        ("--columns", "_(temp"): "--columns: invalid regular expression",
        ("--columns", "_rms$"): "--columns '_rms$' matches no column",
        ("--timezone", "Mars/Base"): "--timezone 'Mars/Base': unknown time zone",
        ("--asset-pattern", "^(PumpA)_"): "names no asset for 2 selected column(s): PumpB_temp, PumpB_vib",
    }
    for (flag, value), message in cases.items():
        args = backtest_args(csv_path, report)
        args[args.index(flag) + 1] = value
        done = run_cli(database_url, *args)
        assert done.returncode == 2, (flag, done.stdout + done.stderr)
        assert message in done.stdout, done.stdout
        assert len(done.stdout.strip().splitlines()) == 1, done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_path.read_text().replace("2003-03-01 08:05:00", "2003-03-01 25:05:00"))
    done = run_cli(database_url, *backtest_args(bad, report))
    assert done.returncode == 2 and "line 7: cannot parse timestamp '2003-03-01 25:05:00'" in done.stdout
    assert not report.exists()


# --- against a running API (--api-url) -----------------------------------------------------------------------------
@pytest.fixture
def running_api(migrated_database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``python -m apps.cli serve-api`` on a database of its own, accepting 2003 readings."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    key = "backtest-test-key-0123456789abcdef"
    env = cli_environment(
        migrated_database_url, SM_API_PORT=str(port), SM_API_HOST="127.0.0.1", SM_READY_CHECK_MLFLOW="false",
        SM_API_KEY=key, SM_RETENTION_DAYS="20000", SM_ALERT_NO_DATA_CHECK_INTERVAL_S="0",
        SM_LOG_LEVEL="WARNING", SM_DATA_DIR=str(tmp_path / "data"), SM_LOG_DIR=str(tmp_path / "logs"), **NO_MLFLOW,
    )  # fmt: skip
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "apps.cli", "serve-api"], cwd=PROJECT_ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(base + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.1)
        yield base, key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_api_url_reuses_the_fleet_and_refuses_a_conflicting_one(
    running_api: tuple[str, str], tmp_path: Path, database_url: str
) -> None:
    base, key = running_api
    csv_path, report = tmp_path / "wide.csv", tmp_path / "report.json"
    write_wide_csv(csv_path)
    args = backtest_args(csv_path, report, "--api-url", base, "--api-key", key, "--batch-size", "500")

    first = run_cli(database_url, *args, **NO_MLFLOW)
    assert first.returncode == 0, first.stdout + first.stderr
    one = json.loads(report.read_text())
    assert one["replay"]["requests"] == 3  # 1,194 readings in requests of whole rows of at most 500
    assert one["replay"]["accepted"] == one["replay"]["readings"]
    assert one["sensors"]["PumpA_temp"]["alerts"] >= 1 and one["work_orders"]

    again = run_cli(database_url, *args, **NO_MLFLOW)  # same platform: fleet reused, readings are duplicates
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 sensor(s), 4 already registered" in again.stdout
    two = json.loads(report.read_text())
    assert two["replay"]["accepted"] == 0 and two["replay"]["duplicates"] == one["replay"]["readings"]
    assert two["sensors"] == one["sensors"] and two["work_orders"] == one["work_orders"]

    conflicting = list(args)
    conflicting[conflicting.index("_temp$=temperature")] = "_temp$=temperature:K"
    done = run_cli(database_url, *conflicting, **NO_MLFLOW)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "2 sensor(s) already registered differently" in done.stdout
    assert "PumpA_temp: unit '°C' (spec 'K')" in done.stdout

    wrong_key = list(args)
    wrong_key[wrong_key.index(key)] = "not-a-key"
    done = run_cli(database_url, *wrong_key, **NO_MLFLOW)
    assert done.returncode == 1 and "the API key was refused (HTTP 401" in done.stdout, done.stdout
