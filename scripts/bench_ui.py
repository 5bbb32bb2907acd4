"""Console render timings (issue 7): every page of the Streamlit console against an API serving 15 sensors × 30 days
of 1-minute readings (648,000 rows), rendered with Streamlit's AppTest.

    python scripts/bench_ui.py [--days 30] [--repeats 3] [--keep-db]

1. A fresh database (created and migrated here, dropped at the end unless --keep-db) gets the demo fleet generated
   at a 1-minute interval (core.simulation: 15 sensors, 43,200 readings each, with its injected faults), plus
   anomalies, alerts and work orders so that every page has rows to show.
2. The API runs as its own process (`python -m apps.cli serve-api`, one uvicorn worker) on a free loopback port;
   MLflow is not running (the ML endpoints answer 503 quickly, as in a stack without MLflow).
3. Each page is rendered in-process with AppTest: **first** = first render in a fresh session with empty caches,
   **warm** = median of the next renders (the console's read cache, TTL 15 s, answers), **uncached** = median of
   renders with the read cache cleared before each (every API call made again, as after the TTL expires).
   The sensor explorer is also timed with 4 sensors over 30 days (1-hour rollups).

Target: every page under 2 s after the first load. Prints the table and the machine's load (`uptime`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

if __package__ in (None, ""):
    import _bootstrap  # noqa: F401  (project root on sys.path)

import httpx

from core.config import PROJECT_ROOT, Settings, get_settings, load_settings, to_libpq_url
from ui.settings import get_console_settings

APP = str(PROJECT_ROOT / "ui" / "streamlit_app.py")
TARGET_S = 2.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def _fill(settings: Settings, days: int) -> dict[str, int]:
    """Demo fleet at 1-minute resolution for ``days`` days, then anomalies/alerts/work orders on top."""
    import asyncpg

    from core.db.session import create_engine, create_session_factory, unit_of_work
    from core.simulation.seed import seed_demo_fleet

    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            report = await seed_demo_fleet(
                session, readings_per_sensor=days * 24 * 60, interval=timedelta(minutes=1), force=True
            )
    finally:
        await engine.dispose()
    now = datetime.now(UTC)
    conn = await asyncpg.connect(to_libpq_url(settings.database_url))
    try:
        async with conn.transaction():
            sensors = [
                r["sensor_id"] for r in await conn.fetch("SELECT sensor_id FROM sensors ORDER BY sensor_id")
            ]
            anomalies = 0
            for n, sensor_id in enumerate(sensors):
                for k in range(20):  # 20 anomalies a sensor over the period
                    at = now - timedelta(minutes=k * days * 72 + n)  # spread over the whole period
                    await conn.execute(
                        "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) "
                        "VALUES ($1, $2, 0.0, $3, 'robust_z')",
                        sensor_id, at, 6.0 + k % 5,
                    )  # fmt: skip
                    anomalies += 1
            alerts = 0
            for n, sensor_id in enumerate(sensors[:10]):
                status = ("open", "acknowledged", "resolved")[n % 3]
                opened = now - timedelta(hours=2 + n * 7)
                alert_id = await conn.fetchval(
                    "INSERT INTO alerts (sensor_id, rule, severity, status, opened_at, acknowledged_at, resolved_at) "
                    "VALUES ($1, 'bench-rule', $2, $3, $4, $5, $6) RETURNING id",
                    sensor_id, ("high", "critical", "medium")[n % 3], status, opened,
                    opened + timedelta(minutes=10) if status != "open" else None,
                    opened + timedelta(hours=1) if status == "resolved" else None,
                )  # fmt: skip
                alerts += 1
                await conn.execute(
                    "INSERT INTO maintenance_tasks (sensor_id, alert_id, title, priority, status) "
                    "VALUES ($1, $2, $3, 'high', $4)",
                    sensor_id, alert_id, f"Inspect {sensor_id}", ("open", "in_progress", "done")[n % 3],
                )  # fmt: skip
    finally:
        await conn.close()
    return {"readings": report.readings_inserted, "anomalies": anomalies, "alerts": alerts, "tasks": alerts}


def _start_api(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "MLFLOW_"))}
    env.update(
        DATABASE_URL=database_url, SM_API_PORT=str(port), SM_API_HOST="127.0.0.1", SM_ENV="development",
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{_free_port()}", SM_READY_CHECK_MLFLOW="false",
        SM_ALERT_NO_DATA_CHECK_INTERVAL_S="0", SM_DRIFT_CHECK_INTERVAL_S="0", SM_LOG_LEVEL="WARNING",
    )  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "apps.cli", "serve-api"], cwd=PROJECT_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the API exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the API did not start within 120 s")
        time.sleep(0.3)


def _console_key(api_url: str) -> str:
    """A key with the console's scopes (read, operate, admin), created with the API's bootstrap key."""
    response = httpx.post(
        f"{api_url}/api/v1/admin/api-keys", json={"name": "console-bench", "scopes": ["read", "operate", "admin"]},
        headers={"X-API-Key": load_settings(env="development").api_key.get_secret_value()}, timeout=10,
        trust_env=False,
    )  # fmt: skip
    if response.status_code != 201:
        raise SystemExit(f"could not create the console's key: HTTP {response.status_code} {response.text[:200]}")
    return str(response.json()["key"])


def _explorer_30_days(at) -> None:
    at.multiselect[0].set_value(["sensor-001", "sensor-002", "sensor-006", "sensor-011"])
    at.selectbox[0].set_value("Last 30 days")


PAGES: list[tuple[str, str, Callable | None]] = [
    ("Fleet overview", "views/fleet.py", None),
    ("Sensor explorer (1 sensor, 24 h, 1-min rollup)", "views/sensor_explorer.py", None),
    ("Sensor explorer (4 sensors, 30 days, 1-h rollup)", "views/sensor_explorer.py", _explorer_30_days),
    ("Alerts", "views/alerts.py", None),
    ("Incidents", "views/incidents.py", None),
    ("Work orders", "views/work_orders.py", None),
    ("Models", "views/models.py", None),
    ("Gauntlets and experiments", "views/gauntlets.py", None),
    ("Ingest", "views/ingest.py", None),
    ("Master dataset", "views/master_dataset.py", None),
    ("Admin", "views/admin.py", None),
    ("Platform status", "views/overview.py", None),
]


def _time_page(page: str, setup: Callable | None, repeats: int) -> tuple[float, float, float, int, int]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def timed(at: AppTest) -> float:
        started = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - started
        if at.exception:
            raise SystemExit(f"{page}: {at.exception[0].message}")
        return elapsed

    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(page)
    first = timed(at)
    if setup is not None:  # the widget change is the "first load" of that view
        setup(at)
        first = timed(at)
    warm = statistics.median(timed(at) for _ in range(repeats))
    uncached = []
    for _ in range(repeats):
        st.cache_data.clear()
        uncached.append(timed(at))
    return first, warm, statistics.median(uncached), len(at.error), len(at.get("plotly_chart"))


def main(argv: list[str] | None = None) -> int:
    from core.db.admin import create_database, drop_database, upgrade

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)

    admin_url = load_settings().test_admin_database_url
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {_uptime()}")
    started = time.monotonic()
    url = create_database(admin_url)
    upgrade(url)
    api = None
    try:
        settings = load_settings(database_url=url, db_pool_size=2)
        counts = asyncio.run(_fill(settings, args.days))
        print(f"database {url.rsplit('/', 1)[-1]}: {counts} in {time.monotonic() - started:.0f} s")
        api, api_url = _start_api(url)
        os.environ.update(API_BASE_URL=api_url, SM_ENV="development", SM_CONSOLE_API_KEY=_console_key(api_url))
        get_settings.cache_clear()
        get_console_settings.cache_clear()
        print(f"API {api_url}; timing {len(PAGES)} views, {args.repeats} repeats each ...", flush=True)
        rows = []
        for name, page, setup in PAGES:
            first, warm, uncached, errors, charts = _time_page(page, setup, args.repeats)
            rows.append((name, first, warm, uncached, errors, charts))
            print(f"  {name}: first {first:.2f} s, warm {warm:.2f} s, uncached {uncached:.2f} s", flush=True)
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        if not args.keep_db:
            drop_database(admin_url, url)

    print()
    header = (
        "| page | first load (s) | after first load, cached (s) | cache cleared (s) "
        "| < 2 s | charts | errors shown |"
    )
    print(header)
    print("|---|---:|---:|---:|---|---:|---:|")
    for name, first, warm, uncached, errors, charts in rows:
        ok = "yes" if max(warm, uncached) < TARGET_S else "no"
        print(f"| {name} | {first:.2f} | {warm:.2f} | {uncached:.2f} | {ok} | {charts} | {errors} |")
    print(f"\n{_uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
