"""Fleet overview, sensor explorer, alerts and work orders against a real API (tests/ui/conftest.py): each page
shows the seeded data and each action changes what the API answers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import ConsoleApi, assert_clean, open_page, texts


def _by_key(widgets, key: str):
    return next(w for w in widgets if w.key == key)


def _values(array: list | dict) -> list:
    """A trace's x/y: a JSON list, or plotly's typed array ``{"dtype", "bdata"}`` (base64 of the buffer)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def _chart_spec(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def test_fleet_shows_health_counts_and_opens_a_sensor_in_the_explorer(console: ConsoleApi) -> None:
    at = open_page()
    assert at.title[0].value == "Fleet overview"
    metrics = {m.label: m.value for m in at.metric}
    sensors = console.get("/api/v1/sensors", limit=1000)
    assert metrics["sensors"] == str(sensors["total"]) and sensors["total"] >= 15  # the demo fleet and more
    assert metrics["open alerts"] == str(console.get("/api/v1/alerts", status="open")["total"])
    assert int(metrics["alert"]) >= 1 and int(metrics["open work orders"]) >= 2

    table = at.dataframe[1].value.set_index("sensor")
    assert table.loc["sensor-006", "health"] == "■ alert"  # the seeded open high alert
    assert table.loc["sensor-006", "open work orders"] >= 1
    assert table.loc["sensor-001", "health"] == "▲ warning"  # acknowledged alert only
    last = next(s for s in sensors["items"] if s["sensor_id"] == "sensor-002")
    assert table.loc["sensor-002", "last value"].startswith(f"{last['last_reading_value']:.2f}")
    assert table.loc["sensor-002", "explore"] == "sensor_explorer?sensor=sensor-002"
    assets = at.dataframe[0].value
    assert len(assets) == console.get("/api/v1/assets")["total"]

    _by_key(at.selectbox, "fleet_open_sensor").set_value("sensor-006").run()
    _by_key(at.button, "fleet_open").click().run()
    assert_clean(at)
    assert at.title[0].value == "Sensor explorer"
    assert at.multiselect[0].value == ["sensor-006"]


def test_sensor_explorer_draws_rollups_anomalies_alerts_and_thresholds(console: ConsoleApi) -> None:
    at = open_page("views/sensor_explorer.py")
    at.multiselect[0].set_value(["sensor-006"]).run()
    assert_clean(at)
    captions = texts(at.caption)
    assert any("avg per 1m bucket" in c for c in captions), captions  # 24 h → 1-minute buckets
    # the point count the page reports is what the API's rollup returns for the same question
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    series = console.get(
        "/api/v1/sensors/sensor-006/readings", start=(now - timedelta(days=1)).isoformat(), end=now.isoformat(),
        bucket="1m", agg="avg", limit=2000,
    )  # fmt: skip
    summary = next(c for c in captions if c.startswith("sensor-006:"))
    assert summary.startswith(f"sensor-006: {len(series['items'])} points · 3 anomalies · 1 alerts"), summary
    assert len(series["items"]) > 200

    spec = _chart_spec(at)
    traces = {t.get("name"): t for t in spec["data"]}
    assert len(traces["sensor-006"]["x"]) == len(series["items"])
    # each anomaly marker sits on the line: at a plotted point's time and value (1-minute buckets of 5-minute
    # readings: the bucket holding the anomaly's reading)
    stored = console.get("/api/v1/anomalies", sensor_id="sensor-006", start=(now - timedelta(days=1)).isoformat(),
                         end=now.isoformat())["items"]  # fmt: skip
    line = dict(zip(traces["sensor-006"]["x"], _values(traces["sensor-006"]["y"]), strict=True))
    markers = list(zip(traces["anomaly"]["x"], _values(traces["anomaly"]["y"]), strict=True))
    assert len(markers) == len(stored) == 3
    assert all(x in line and line[x] == y for x, y in markers), (markers, [line.get(x) for x, _ in markers])
    assert sorted(y for _, y in markers) == pytest.approx(sorted(a["value"] for a in stored))
    shapes = spec["layout"]["shapes"]
    assert any(s["type"] == "rect" for s in shapes)  # the open alert's period
    lines = [s for s in shapes if s["type"] == "line" and s["y0"] == s["y1"]]  # horizontal: thresholds
    sensor_type = console.get("/api/v1/sensors/sensor-006")["type"]
    rules = console.get("/api/v1/alert-rules", kind="threshold")["items"]
    expected = {float(v) for r in rules if r["sensor_type"] == sensor_type for k, v in r["params"].items()
                if k in ("min", "max")}  # fmt: skip
    assert expected and {s["y0"] for s in lines} == expected  # the threshold rules of the sensor's type
    forecast = console.call(
        "POST", "/api/v1/ml/forecast", json={"sensor_id": "sensor-006", "horizon": 24}
    ).json()
    assert len(traces["forecast"]["x"]) == len(forecast["points"]) == 24  # the champion forecast_voltage
    assert _values(traces["forecast"]["y"]) == pytest.approx([p["yhat"] for p in forecast["points"]])
    assert len(traces["forecast interval"]["x"]) == 48  # upper then lower edge of the band
    assert at.download_button[0].proto.label == "Download CSV"
    assert len(at.dataframe[0].value) == len(series["items"])

    at.selectbox[0].set_value("Last 7 days").run()
    assert_clean(at)
    assert any("avg per 1h bucket" in c for c in texts(at.caption))


def test_alerts_acknowledge_and_resolve_with_a_comment(console: ConsoleApi) -> None:
    alert_id = console.seeded.open_alert
    at = open_page("views/alerts.py")
    listed = at.dataframe[0].value
    assert alert_id in set(listed["id"]) and set(listed["status"]) == {"open"}
    _by_key(at.selectbox, "alerts_selected").set_value(alert_id).run()
    anomalies = next(df.value for df in at.dataframe if "method" in df.value.columns)
    assert sorted(anomalies["id"]) == sorted(console.seeded.anomaly_ids)

    _by_key(at.text_input, "alerts_comment").input("bearing noise heard on site")
    _by_key(at.button, "alerts_ack").click().run()
    assert_clean(at)
    assert any(f"Alert #{alert_id} is acknowledged" in s for s in texts(at.success))
    detail = console.get(f"/api/v1/alerts/{alert_id}")
    assert detail["status"] == "acknowledged"
    assert detail["events"][-1]["comment"] == "bearing noise heard on site"

    _by_key(at.selectbox, "alerts_status").set_value("acknowledged").run()
    _by_key(at.selectbox, "alerts_selected").set_value(alert_id).run()
    _by_key(at.text_input, "alerts_comment").input("bearing replaced")
    _by_key(at.button, "alerts_resolve").click().run()
    assert_clean(at)
    detail = console.get(f"/api/v1/alerts/{alert_id}")
    assert detail["status"] == "resolved" and detail["events"][-1]["comment"] == "bearing replaced"


def test_work_orders_assign_and_complete_with_an_outcome(console: ConsoleApi) -> None:
    task_id = console.seeded.open_task
    at = open_page("views/work_orders.py")
    open_board = at.dataframe[0].value
    assert task_id in set(open_board["id"])
    assert console.seeded.progress_task in set(at.dataframe[1].value["id"])

    _by_key(at.selectbox, "wo_selected").set_value(task_id).run()
    _by_key(at.text_input, "wo_assignee").input("bob").run()
    _by_key(at.button, "wo_assign").click().run()
    assert_clean(at)
    assert console.get(f"/api/v1/maintenance/tasks/{task_id}")["assignee"] == "bob"

    _by_key(at.selectbox, "wo_selected").set_value(task_id).run()
    _by_key(at.radio, "wo_outcome").set_value("no_fault_found")
    _by_key(at.text_input, "wo_technician").input("bob").run()
    _by_key(at.text_area, "wo_notes").input("vibration within limits after re-seating the sensor")
    _by_key(at.button, "wo_complete").click().run()
    assert_clean(at)
    assert any(f"#{task_id} done (no_fault_found)" in s for s in texts(at.success))
    assert console.get(f"/api/v1/maintenance/tasks/{task_id}")["status"] == "done"
    labels = console.get("/api/v1/labels", sensor_id="sensor-006")["items"]
    assert any(lab.get("outcome") == "no_fault_found" for lab in labels), labels
    done_total = console.get("/api/v1/maintenance/tasks", status="done")["total"]
    assert f"Done ({done_total})" in [tab.label for tab in at.tabs] and done_total >= 1
    still_open = console.get("/api/v1/maintenance/tasks", status="open")
    assert task_id not in {t["id"] for t in still_open["items"]}
    assert f"Open ({still_open['total']})" in [tab.label for tab in at.tabs]


def test_sensor_explorer_rolls_up_a_raw_range_denser_than_its_point_limit(console: ConsoleApi) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    batch = [
        {"sensor_id": "ui-dense-1", "value": float(i % 50), "timestamp": (start + timedelta(seconds=i)).isoformat(),
         "metadata": {"sensor_type": "vibration"}}
        for i in range(2100)
    ]  # fmt: skip
    answer = console.call("POST", "/api/v1/data/ingest", json=batch)
    assert answer.status_code == 202 and answer.json()["accepted"] == 2100, answer.text
    at = open_page("views/sensor_explorer.py")
    at.multiselect[0].set_value(["ui-dense-1"]).run()
    at.selectbox[0].set_value("Last hour").run()  # raw readings, but 2,100 of them > 2,000 points
    assert_clean(at)
    assert any("more than 2000 raw readings" in c for c in texts(at.caption)), texts(at.caption)
    minutes = _values(_chart_spec(at)["data"][0]["y"])
    assert 35 <= len(minutes) <= 37  # 2,100 s of readings in 1-minute buckets, not the oldest 2,000 points
