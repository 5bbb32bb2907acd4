"""Screenshots of the console in Debian's headless Chromium (Selenium): the fleet overview and the sensor explorer.

    python scripts/ui_screenshots.py [--ui-url http://127.0.0.1:8501] [--out docs/ui] [--sensor sensor-006]

Against a running stack (`make up`; the UI URL defaults to SM_UI_HOST:SM_UI_PORT). It waits until each page has
rendered its content (metrics and tables on the fleet page, the Plotly chart on the explorer), fails if a page
shows a Python exception, and writes ``fleet.png`` and ``sensor_explorer.png``. tests/ui/test_browser.py uses the
same functions against an API and a Streamlit server it starts itself.

Chromium and ChromeDriver come from Debian (packages ``chromium`` and ``chromium-driver``); nothing is
downloaded. Chromium runs with background networking off (the machine has no internet).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):
    import _bootstrap  # noqa: F401  (project root on sys.path)

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)  # fmt: skip
WAIT_S = 90.0


@contextmanager
def chromium(width: int = 1600, height: int = 1500) -> Iterator[WebDriver]:
    """Headless Debian Chromium driven by Debian's chromedriver, with a throw-away profile."""
    with tempfile.TemporaryDirectory(prefix="sm-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.set_page_load_timeout(WAIT_S)
            yield driver
        finally:
            driver.quit()


def _count(driver: WebDriver, selector: str) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, selector))


def _text(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def wait_for(
    driver: WebDriver, what: str, ready: Callable[[WebDriver], bool], timeout: float = WAIT_S
) -> None:
    """Wait until ``ready``; a Streamlit exception box on the page fails at once."""

    def check(d: WebDriver) -> bool:
        if _count(d, '[data-testid="stException"]'):
            raise AssertionError(f"{what}: the page shows an exception:\n{_text(d)[:2000]}")
        return ready(d)

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.25).until(check)
    except TimeoutException as exc:
        raise AssertionError(
            f"{what} did not render within {timeout:.0f} s at {driver.current_url}; the page says:\n"
            f"{_text(driver)[:2000]}\n--- source:\n{driver.page_source[:1500]}"
        ) from exc


def _settled(driver: WebDriver) -> bool:
    """No spinner, no "running" status widget: the script run is over."""
    return not _count(driver, '[data-testid="stSpinner"]') and not _count(
        driver, '[data-testid="stStatusWidget"]'
    )


def fleet_ready(driver: WebDriver) -> bool:
    return (
        "Fleet overview" in _text(driver)
        and _count(driver, '[data-testid="stMetricValue"]') >= 6
        and _count(driver, '[data-testid="stDataFrame"]') >= 2
        and _settled(driver)
    )


def explorer_ready(driver: WebDriver) -> bool:
    return (
        "Sensor explorer" in _text(driver)
        and _count(driver, ".js-plotly-plot .main-svg") >= 1
        and _count(driver, ".js-plotly-plot .scatterlayer .trace") >= 1
        and _count(driver, '[data-testid="stDataFrame"]') >= 1
        and _settled(driver)
    )


def capture(ui_url: str, out_dir: Path, sensor: str = "sensor-006") -> dict[str, Path]:
    """Load the fleet page and the explorer (for ``sensor``), wait for their content, save PNGs; return paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = {"fleet": out_dir / "fleet.png", "sensor_explorer": out_dir / "sensor_explorer.png"}
    base = ui_url.rstrip("/")
    try:
        with chromium() as driver:
            driver.get(base + "/")
            wait_for(driver, "the fleet overview", fleet_ready)
            time.sleep(1.0)  # let the data grid paint its canvas
            driver.save_screenshot(str(shots["fleet"]))
            driver.get(f"{base}/sensor_explorer?sensor={sensor}")
            wait_for(driver, "the sensor explorer", explorer_ready)
            if sensor not in _text(driver):
                raise AssertionError(f"the explorer does not show {sensor}:\n{_text(driver)[:2000]}")
            time.sleep(1.0)
            driver.save_screenshot(str(shots["sensor_explorer"]))
    except WebDriverException as exc:
        raise SystemExit(f"Chromium/ChromeDriver failed: {exc.msg}") from exc
    return shots


def main(argv: list[str] | None = None) -> int:
    from core.config import PROJECT_ROOT, get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ui-url", default=f"http://{settings.ui_host}:{settings.ui_port}")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "ui")
    parser.add_argument("--sensor", default="sensor-006")
    args = parser.parse_args(argv)
    started = time.monotonic()
    for name, path in capture(args.ui_url, args.out, args.sensor).items():
        print(f"{name}: {path} ({path.stat().st_size / 1024:.0f} KiB)")
    print(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
