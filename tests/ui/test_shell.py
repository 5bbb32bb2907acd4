"""The Streamlit shell: renders without the API, and shows readiness from a real API served by uvicorn."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT, Settings, load_settings
from tests.ui.conftest import ConsoleApi, create_console_key, point_console_at, serve_api
from ui.settings import get_console_settings

APP = str(PROJECT_ROOT / "ui" / "streamlit_app.py")
TIMEOUT_S = 30
OVERVIEW = "views/overview.py"  # "Platform status"; the default page is the fleet overview


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The console reads ui.settings: point it at a URL via the environment and drop the cached settings."""
    monkeypatch.setenv("SM_ENV", "test")
    get_console_settings.cache_clear()
    yield monkeypatch
    get_console_settings.cache_clear()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nobody listens once the socket is closed


def _texts(elements) -> list[str]:
    return [str(element.value) for element in elements]


def _run(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_overview_shows_a_clear_error_when_the_api_is_down(api_env: pytest.MonkeyPatch) -> None:
    api_env.setenv("API_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    at = _run(OVERVIEW)
    errors = _texts(at.error)
    assert len(errors) == 1
    assert "The API is down" in errors[0] and "unreachable" in errors[0]
    assert "Traceback" not in errors[0]
    assert not at.success and not at.metric


def test_master_dataset_page_previews_the_sample_served_by_the_api(console: ConsoleApi) -> None:
    at = _run("views/master_dataset.py")
    assert at.title[0].value == "Master dataset"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["readings"] == "9,000" and metrics["sensors"] == "15" and metrics["sensor types"] == "5"
    assert at.multiselect[1].value == ["sensor-001", "sensor-002"]
    assert len(at.get("plotly_chart")) == 2
    at.multiselect[1].set_value(["sensor-006"]).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1


# --- against a real API -------------------------------------------------------------------------------------

HAS_API = importlib.util.find_spec("apps.api.main") is not None


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return load_settings(
        env="test",
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        log_dir=settings.log_dir,
        ready_check_mlflow=False,
        db_pool_size=2,
    )


@pytest.mark.skipif(not HAS_API, reason="apps.api.main.create_app does not exist yet")
def test_overview_shows_readiness_of_a_real_api(api_env: pytest.MonkeyPatch, api_settings: Settings) -> None:
    with serve_api(api_settings) as base_url:
        point_console_at(api_env, base_url, create_console_key(base_url, api_settings))
        at = _run(OVERVIEW)
    assert not at.error
    assert any(text.startswith("API ready") for text in _texts(at.success))
    components = {m.label: m.value for m in at.metric}
    assert components["database"] == "✅ ok"
    assert components["mlflow"].endswith("skipped")


@pytest.mark.skipif(not HAS_API, reason="apps.api.main.create_app does not exist yet")
def test_overview_lists_failing_components_when_not_ready(
    api_env: pytest.MonkeyPatch, api_settings: Settings
) -> None:
    closed_mlflow = api_settings.model_copy(
        update={"ready_check_mlflow": True, "mlflow_tracking_uri": f"http://127.0.0.1:{_closed_port()}"}
    )
    with serve_api(closed_mlflow) as base_url:
        point_console_at(api_env, base_url)  # readiness needs no key
        at = _run(OVERVIEW)
    assert not at.error
    warnings = _texts(at.warning)
    assert len(warnings) == 1 and warnings[0].startswith("API not ready") and "mlflow" in warnings[0]
    components = {m.label: m.value for m in at.metric}
    assert components == {"database": "✅ ok", "mlflow": "❌ failing"}
