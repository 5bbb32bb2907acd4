"""The console in a real browser: Debian's headless Chromium (Selenium + chromedriver) loads the fleet overview,
the sensor explorer and an incident (linked as ``incidents?incident=N``) from a Streamlit server (``apps.cli`` ui
command line) talking to the seeded API of
tests/ui/conftest.py, waits for their content and saves screenshots (scripts/ui_screenshots.py does the same
against a `make up` stack and writes docs/ui/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By

from apps.cli.commands import ui_command
from core.config import PROJECT_ROOT, load_settings
from scripts.ui_screenshots import CHROMEDRIVER, CHROMIUM, capture, chromium, wait_for
from tests.ui.conftest import ConsoleApi, free_port
from tests.ui.scenario import Scenario

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason="Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
)


@contextmanager
def console_server(console_api: ConsoleApi, log: Path) -> Iterator[str]:
    """A fresh Streamlit process (the `apps.cli` ui command line) for the session's API, with the console's own
    key; yields its URL once its health check answers, stops it afterwards."""
    port = free_port()
    settings = load_settings(env="test", ui_host="127.0.0.1", ui_port=port)
    drop = ("DATABASE_URL", "MLFLOW_TRACKING_URI", "SM_API_KEY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(SM_ENV="test", API_BASE_URL=console_api.base_url, SM_CONSOLE_API_KEY=console_api.console_key)
    with log.open("wb") as out:
        process = subprocess.Popen(
            ui_command(settings), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"streamlit exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1, trust_env=False).text.strip() == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"streamlit did not start: {log.read_text()[-2000:]}"
            time.sleep(0.2)  # polling the health check of a process starting up (bounded by the deadline)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def ui_url(
    console_api: ConsoleApi, scenario: Scenario, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The console's server, started once the incident scenario exists: the console caches the asset list for
    a while, and a list cached before the scenario's assets existed would name them "—"."""
    with console_server(console_api, tmp_path_factory.mktemp("ui-server") / "streamlit.log") as url:
        yield url


def test_a_deep_link_is_the_first_visit_after_a_restart(console_api: ConsoleApi, tmp_path: Path) -> None:
    """A console just (re)started, whose first visitor opens /alerts: the console's own navigation (sections and
    titles of st.navigation, no raw `pages/` file list), the wide layout, and no "Deploy" button."""

    def ready(driver) -> bool:
        text = driver.find_element(By.TAG_NAME, "body").text
        return (
            "Alerts" in text
            and "Operations" in text
            and "Machine learning" in text
            and bool(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMainBlockContainer"]'))
            and not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]')
        )

    with console_server(console_api, tmp_path / "streamlit.log") as url, chromium() as driver:
        driver.get(f"{url}/alerts")
        wait_for(driver, "the alerts page", ready)
        nav = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarNav"]').text
        for title in ("Fleet overview", "Sensor explorer", "Alerts", "Gauntlets and experiments", "Platform status"):
            assert title in nav, nav
        for raw in ("sensor explorer", "work orders", "master dataset", "streamlit app"):
            assert raw not in nav, nav  # file names as Streamlit's pages/ discovery would show them
        main = driver.find_element(By.CSS_SELECTOR, '[data-testid="stMainBlockContainer"]')
        window = driver.execute_script("return window.innerWidth")
        assert main.size["width"] > 900 and main.size["width"] > 0.6 * (window - 400), main.size  # centered: 736
        assert driver.current_url.rstrip("/").endswith("/alerts")
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAppDeployButton"]')
        assert "Deploy" not in driver.find_element(By.TAG_NAME, "body").text
        driver.save_screenshot(str(tmp_path / "alerts_first_visit.png"))
    assert (tmp_path / "alerts_first_visit.png").read_bytes().startswith(PNG_MAGIC)


def test_fleet_and_sensor_explorer_render_in_chromium(ui_url: str, tmp_path: Path) -> None:
    shots = capture(ui_url, tmp_path, sensor="sensor-006")  # waits for metrics, tables and the Plotly chart
    for name in ("fleet", "sensor_explorer"):
        data = shots[name].read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 30_000, f"{name}: {len(data)} bytes, a blank page?"


def test_an_incident_renders_in_chromium(ui_url: str, scenario: Scenario, tmp_path: Path) -> None:
    """The Incidents page opened from a link: the incident's metrics and its four tables (list, work order,
    alerts, timeline), with the event-time headers; no exception box."""

    def ready(driver) -> bool:
        text = driver.find_element(By.TAG_NAME, "body").text
        return (
            f"Incident #{scenario.press_incident} · ui-press-line" in text
            and "Timeline" in text
            and len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')) >= 4
            and not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]')
        )

    with chromium() as driver:
        driver.get(f"{ui_url}/incidents?incident={scenario.press_incident}")
        wait_for(driver, "the incident", ready)
        driver.save_screenshot(str(tmp_path / "incidents.png"))
    assert (tmp_path / "incidents.png").read_bytes().startswith(PNG_MAGIC)
