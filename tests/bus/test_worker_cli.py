"""``python -m apps.cli worker``: clear refusals and a bounded start when NATS cannot be reached."""

from __future__ import annotations

import time

from tests.support.cli import run_cli


def test_without_a_nats_bus_the_worker_refuses_to_start(admin_database_url: str) -> None:
    done = run_cli(admin_database_url, "worker", timeout=60, SM_BUS_URL="")
    assert done.returncode == 2
    assert "SM_BUS_URL is unset" in done.stderr


def test_an_unknown_agent_is_refused(admin_database_url: str) -> None:
    done = run_cli(admin_database_url, "worker", "--agents", "anomaly,forecasting", timeout=60)
    assert done.returncode == 2
    assert "forecasting" in done.stderr


def test_an_unreachable_nats_fails_the_start_in_bounded_time(admin_database_url: str) -> None:
    started = time.monotonic()
    done = run_cli(
        admin_database_url, "worker", timeout=60, SM_BUS_URL="nats://127.0.0.1:9", SM_BUS_CONNECT_TIMEOUT_S="2"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nats://127.0.0.1:9 (SM_BUS_URL) is unreachable" in done.stdout + done.stderr
    assert time.monotonic() - started < 45
