"""The console shows, beside every forecast interval, the coverage that interval reached on the training study's
test folds, as the API reports it: the sensor explorer's legend and caption, the models page's coverage table."""

from __future__ import annotations

import json

import pandas as pd

from tests.ui.conftest import ConsoleApi, assert_clean, open_page, texts
from ui.components.charts import interval_coverage_rows, interval_coverage_text, sensor_figure

CALIBRATED = {"nominal": 0.8, "calibrated": True, "test_coverage": 0.83, "calibration_points": 216,
              "measured": {"0.8": 0.83}}  # fmt: skip


def test_the_interval_text_states_the_measured_coverage_or_why_there_is_none() -> None:
    assert interval_coverage_text(CALIBRATED, 0.8) == (
        "80 % interval · test coverage 83 %, calibrated on 216 backtest points"
    )
    uncalibrated = {"nominal": 0.8, "calibrated": False, "test_coverage": None}
    assert interval_coverage_text(uncalibrated, 0.8) == "80 % interval · not calibrated, coverage not measured"
    assert interval_coverage_text(CALIBRATED | {"test_coverage": None}, 0.7) == (
        "70 % interval · calibrated, coverage not measured at this level"
    )
    assert "coverage unknown" in interval_coverage_text(None, 0.8)


def test_the_forecast_band_carries_its_coverage_in_the_legend() -> None:
    times = pd.date_range("2026-11-26T10:00:00Z", periods=3, freq="5min")
    forecast = pd.DataFrame({"timestamp": times, "yhat": [1.0, 1.1, 1.2], "yhat_lower": [0.8, 0.9, 0.9],
                             "yhat_upper": [1.2, 1.3, 1.5]})  # fmt: skip
    series = {"s1": pd.DataFrame({"timestamp": times - pd.Timedelta(minutes=15), "value": [1.0, 1.0, 1.0]})}
    text = interval_coverage_text(CALIBRATED, 0.8)
    figure = sensor_figure(series, forecast=forecast, forecast_coverage=text)
    band = next(t for t in figure.data if t.name == "forecast interval")
    assert band.legendgrouptitle.text == text and band.legendgroup == "forecast"


def test_the_models_page_table_lists_each_versions_coverage() -> None:
    versions = [
        {"version": "2", "metrics": {"test_coverage": 0.81, "test_coverage_raw": 0.66, "test_width": 2.1,
                                     "test_width_raw": 1.4, "cal_n": 216.0}},
        {"version": "1", "metrics": {"mae": 1.0}},
    ]  # fmt: skip
    rows = interval_coverage_rows(versions)
    assert rows[0]["test coverage (calibrated)"] == 0.81 and rows[0]["test coverage (raw)"] == 0.66
    assert rows[0]["note"] == "" and rows[0]["nominal"] == 0.8
    assert rows[1]["test coverage (calibrated)"] is None and rows[1]["note"].startswith("not measured")


def test_sensor_explorer_and_models_page_show_what_the_api_reports(console: ConsoleApi) -> None:
    at = open_page("views/sensor_explorer.py")
    at.multiselect[0].set_value(["sensor-006"]).run()
    assert_clean(at)
    answer = console.call(
        "POST", "/api/v1/ml/forecast", json={"sensor_id": "sensor-006", "horizon": 24, "interval": 0.8}
    ).json()
    expected = interval_coverage_text(answer["coverage"], 0.8)
    summary = next(c for c in texts(at.caption) if c.startswith("sensor-006:"))
    assert summary.endswith(f"forecast 24 steps, {expected}"), summary
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    band = next(t for t in spec["data"] if t.get("name") == "forecast interval")
    assert band["legendgrouptitle"]["text"] == expected

    at = open_page("views/models.py")
    assert_clean(at)
    tables = [df.value for df in at.dataframe if "test coverage (calibrated)" in df.value.columns]
    versions = {m["name"]: m for m in console.get("/api/v1/ml/models")["items"]}["forecast_voltage"]["versions"]
    assert tables and tables[0].to_dict("records") == interval_coverage_rows(versions)
