"""Sensor explorer: values of chosen sensors over a time range from the API's rollups (the bucket follows the
range so every series stays at or under MAX_POINTS points), anomalies and alert periods marked, threshold rules
drawn, the healthy reference (median ± scale) with its regime changes and re-learnings, the forecast with its
interval when the forecast endpoint answers (with the coverage that interval reached on the training study's test
folds, as the API reports it), and the points as a table and CSV."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiError
from ui.components import api
from ui.components.charts import interval_coverage_text, sensor_figure
from ui.components.formatting import choose_bucket, iso, parse_ts, short_ts
from ui.components.incidents import table

MAX_POINTS = 2000
MAX_SENSORS = 4
REFERENCE_COLUMNS = ["kind", "status", "started_at", "ready_at", "median", "scale", "previous_median", "readings",
                     "reason"]  # fmt: skip
FORECAST_HORIZON = 24
FORECAST_INTERVAL = 0.8
RANGES = {
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(days=1),
    "Last 3 days": timedelta(days=3),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Custom": None,
}

st.title("Sensor explorer")
sensors_page = api.load_items("/api/v1/sensors", "the sensors")
if sensors_page is None:
    st.stop()
sensors = {s["sensor_id"]: s for s in sensors_page[0]}
if not sensors:
    st.info("No sensors yet: ingest readings (Ingest page) or seed the demo fleet with `make seed`.")
    st.stop()

wanted = st.query_params.get("sensor")
default = [wanted] if wanted in sensors else [next(iter(sensors))]
chosen = st.multiselect("Sensors", list(sensors), default=default, max_selections=MAX_SENSORS)
left, middle, right = st.columns(3)
range_name = left.selectbox("Time range", list(RANGES), index=2)
agg = middle.selectbox("Aggregate (rolled-up ranges)", ["avg", "min", "max"])
show_forecast = right.checkbox("Forecast", value=True)
if not chosen:
    st.info("Choose at least one sensor.")
    st.stop()

# The end is the next full minute: renders within the same minute ask the same question (cache hits).
now = datetime.now(UTC)
end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
span = RANGES[range_name]
if span is None:
    first, last = st.date_input("From / to (UTC)", value=((now - timedelta(days=7)).date(), now.date()))
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = min(end, datetime.combine(last, time.min, tzinfo=UTC) + timedelta(days=1))
else:
    start = end - span
if start >= end:
    st.warning("The range is empty.")
    st.stop()
bucket = choose_bucket(end - start, MAX_POINTS)
st.caption(
    f"{iso(start)} → {iso(end)} · "
    + (f"{agg} per {bucket} bucket" if bucket else "raw readings")
    + f" (at most {MAX_POINTS} points a sensor)"
)


def readings(sensor_id: str) -> tuple[pd.DataFrame, bool]:
    """The series at ``bucket``; a raw range denser than MAX_POINTS (a fast live sensor) falls back to 1-minute
    buckets instead of showing only its oldest points."""
    params: dict[str, Any] = {"start": iso(start), "end": iso(end), "limit": MAX_POINTS}
    if bucket:
        params |= {"bucket": bucket, "agg": agg}
    body = api.get(f"/api/v1/sensors/{sensor_id}/readings", **params)
    if not bucket and body.get("next_cursor") is not None:
        body = api.get(f"/api/v1/sensors/{sensor_id}/readings", **params, bucket="1m", agg=agg)
        st.caption(
            f"{sensor_id}: more than {MAX_POINTS} raw readings in this range; {agg} per 1m bucket shown."
        )
    data = pd.DataFrame(body.get("items") or [], columns=["timestamp", "value", "count", "quality"])
    data["timestamp"] = pd.to_datetime(data["timestamp"], utc=True)
    return data, body.get("next_cursor") is not None


rules = (api.load_items("/api/v1/alert-rules", "the alert rules", kind="threshold", enabled=True) or ([], 0))[
    0
]
frames: list[pd.DataFrame] = []


def show_references(sensor_id: str, references: list[dict[str, Any]], unit: str) -> None:
    """The current healthy reference in a line, and every (re)learning with its reason (newest first)."""
    if not references:
        return
    current = references[0]
    if current.get("median") is not None and current["status"] == "ready":
        st.caption(
            f"{sensor_id}: healthy reference {current['median']:.4g} ± {current['scale']:.3g} {unit}".rstrip()
            + f" ({current['kind'].replace('_', ' ')}, ready at {short_ts(current.get('ready_at'))} UTC event time)"
        )
    else:
        st.caption(
            f"{sensor_id}: learning its reference ({current['kind'].replace('_', ' ')}) since "
            f"{short_ts(current['started_at'])} UTC event time: {current['reason']}"
        )
    relearned = sum(r["kind"] != "initial" for r in references)
    label = f"Reference history of {sensor_id}: learned {len(references)} time{'s' if len(references) != 1 else ''}"
    with st.expander(label + (f", {relearned} after a regime change or a repair" if relearned else "")):
        table(references, REFERENCE_COLUMNS)


for sensor_id in chosen:
    sensor = sensors[sensor_id]
    try:
        series, truncated = readings(sensor_id)
        anomaly_items, _ = api.get_items(
            "/api/v1/anomalies", 500, sensor_id=sensor_id, start=iso(start), end=iso(end)
        )
        alert_items, _ = api.get_items("/api/v1/alerts", 200, sensor_id=sensor_id)
    except ApiError as exc:
        api.show_error(exc, f"the data of {sensor_id}")
        continue
    if truncated:
        st.warning(
            f"{sensor_id}: more than {MAX_POINTS} points in this range; showing the first {MAX_POINTS}."
        )
    anomalies = pd.DataFrame(anomaly_items, columns=["sensor_id", "timestamp", "value", "score", "method"])
    anomalies["timestamp"] = pd.to_datetime(anomalies["timestamp"], utc=True)
    periods = [
        a for a in alert_items
        if (parse_ts(a["opened_at"]) or end) < end and (parse_ts(a.get("resolved_at")) or end) >= start
    ]  # fmt: skip
    thresholds = [
        (f"{r['name']} {side}", float(r["params"][side]))
        for r in rules
        if r.get("sensor_id") in (None, sensor_id) and r.get("sensor_type") in (None, sensor["type"])
        for side in ("min", "max")
        if isinstance(r.get("params"), dict) and r["params"].get(side) is not None
    ]
    try:
        references = api.get(f"/api/v1/sensors/{sensor_id}/references").get("items") or []
    except ApiError as exc:
        references = []
        if exc.status is None:
            api.show_error(exc, f"the references of {sensor_id}")
        else:
            st.info(f"{sensor_id}: no healthy reference (HTTP {exc.status}: {exc.detail}).")
    forecast, coverage_text = None, None
    if show_forecast:
        try:
            answer = api.post_cached(
                "/api/v1/ml/forecast",
                {"sensor_id": sensor_id, "horizon": FORECAST_HORIZON, "interval": FORECAST_INTERVAL},
            )
            coverage_text = interval_coverage_text(answer.get("coverage"), FORECAST_INTERVAL)
            points = answer.get("points") or answer.get("forecast") or answer.get("predictions") or []
            forecast = pd.DataFrame(points)
            if {"timestamp", "yhat", "yhat_lower", "yhat_upper"} <= set(forecast.columns):
                forecast["timestamp"] = pd.to_datetime(forecast["timestamp"], utc=True)
            else:
                st.warning(f"{sensor_id}: the forecast answer has no timestamp/yhat/interval columns.")
                forecast = None
        except ApiError as exc:
            if exc.status == 404:
                st.info(f"{sensor_id}: no forecast ({exc.detail}).")
            elif exc.status is None:
                api.show_error(exc, "the forecast")
            else:
                st.info(f"{sensor_id}: no forecast (HTTP {exc.status}: {exc.detail}).")
    st.plotly_chart(
        sensor_figure(
            {sensor_id: series},
            anomalies=anomalies,
            alerts=periods,
            thresholds=thresholds,
            forecast=forecast,
            forecast_coverage=coverage_text,
            references=references,
            since=start,
            until=end,
            title=f"{sensor_id} · {sensor['type']}",
            unit=sensor.get("unit") or "",
        ),
        key=f"chart_{sensor_id}",
    )
    st.caption(
        f"{sensor_id}: {len(series)} points · {len(anomalies)} anomalies · {len(periods)} alerts in range"
        + (f" · forecast {len(forecast)} steps, {coverage_text}" if forecast is not None else "")
    )
    show_references(sensor_id, references, sensor.get("unit") or "")
    frames.append(series.assign(sensor_id=sensor_id))

if frames:
    points = pd.concat(frames, ignore_index=True)[["sensor_id", "timestamp", "value", "count", "quality"]]
    points["timestamp"] = points["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    st.markdown("#### Data")
    st.dataframe(points, hide_index=True, height=260, width="stretch")
    st.download_button(
        "Download CSV", points.to_csv(index=False).encode(), file_name="readings.csv", mime="text/csv"
    )
