"""The console shows the diagnosis behind a bearing-fault alert: on the Alerts page and under the evidence of its
work order (the API's own agents diagnose a simulated outer-race snapshot; the console reads it over HTTP)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.ui.conftest import ConsoleApi, assert_clean, console, console_api, open_page, texts  # noqa: F401
from tests.waveforms.support import RPM, snapshot


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code in (201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


def _until(probe: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_alert_and_work_order_pages_show_the_diagnosis(console: ConsoleApi) -> None:  # noqa: F811
    tag = uuid.uuid4().hex[:8]
    asset = _created(console.call("POST", "/api/v1/assets", json={"name": f"ui-wf-{tag}", "kind": "motor"}))
    sensor_id = f"ui-wf-{tag}"
    _created(
        console.call(
            "POST",
            "/api/v1/waveform-sensors",
            json={"sensor_id": sensor_id, "asset_id": asset["id"], "bearing": "6205", "nominal_rpm": RPM},
        )
    )
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    _created(console.call("POST", "/api/v1/data/waveforms", json=snapshot(sensor_id, at, "outer", seed=31)))

    def diagnosed() -> dict[str, Any] | None:
        items = console.get(f"/api/v1/sensors/{sensor_id}/diagnoses")["items"]
        return items[0] if items and items[0]["alert_id"] else None

    diagnosis = _until(diagnosed, "the diagnosis")
    alert_id = diagnosis["alert_id"]

    def task() -> dict[str, Any] | None:
        tasks = console.get("/api/v1/maintenance/tasks", status="open", limit=200)["items"]
        return next((t for t in tasks if t["alert_id"] == alert_id), None)

    work_order = _until(task, "the work order")

    page = open_page("views/alerts.py")
    next(w for w in page.text_input if w.key == "alerts_sensor").set_value(sensor_id).run()
    assert_clean(page)
    assert next(w for w in page.selectbox if w.key == "alerts_selected").value == alert_id
    assert "#### Diagnosis behind this alert" in texts(page.markdown)
    assert any(m.label == "fault" and m.value == "outer race" for m in page.metric)
    summary = next(c for c in texts(page.caption) if c.startswith("outer race · score"))
    assert "bearing 6205 at 1797 rpm" in summary and "BPFO 107.4 Hz" in summary

    page = open_page("views/work_orders.py")
    next(w for w in page.selectbox if w.key == "wo_selected").set_value(work_order["id"]).run()
    assert_clean(page)
    assert f"Diagnosis behind alert #{alert_id} ({sensor_id})" in texts(page.markdown)
    assert any(c.startswith("outer race · score") for c in texts(page.caption))
