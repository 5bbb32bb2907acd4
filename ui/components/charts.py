"""Plotly figures of the console (pure functions of DataFrames; pages render them with ``st.plotly_chart``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ui.components.formatting import parse_ts

SEVERITY_COLOURS = {
    "critical": "red",
    "high": "orangered",
    "medium": "orange",
    "low": "gold",
    "info": "lightblue",
}


def sensor_figure(
    series: dict[str, pd.DataFrame],
    *,
    anomalies: pd.DataFrame | None = None,
    alerts: Sequence[dict[str, Any]] = (),
    thresholds: Sequence[tuple[str, float]] = (),
    forecast: pd.DataFrame | None = None,
    forecast_coverage: str | None = None,
    references: Sequence[dict[str, Any]] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    title: str = "",
    unit: str = "",
) -> go.Figure:
    """Values per sensor (``timestamp``, ``value``), anomalies as red markers, alert periods as shaded bands
    (open alerts run to ``until``), threshold lines, the forecast with its interval band (``forecast_coverage``,
    :func:`interval_coverage_text`, titles its legend group), and the healthy
    references (median ± scale over the period each was the reference; a dotted line where one was re-learned)."""
    figure = go.Figure()
    for index, (reference, begin, end) in enumerate(reference_periods(references, since, until)):
        median, scale, kind = float(reference["median"]), float(reference["scale"]), reference["kind"]
        figure.add_scatter(
            x=[begin, end, end, begin, begin], y=[median - scale, median - scale, median + scale, median + scale,
                                                  median - scale],
            fill="toself", fillcolor="rgba(44,160,44,0.12)", line={"width": 0}, mode="lines",
            name="reference median ± scale", legendgroup="reference", showlegend=index == 0, hoverinfo="skip",
        )  # fmt: skip
        figure.add_scatter(
            x=[begin, end], y=[median, median], mode="lines", line={"color": "green", "dash": "dash", "width": 1},
            name=f"reference ({kind.replace('_', ' ')})", legendgroup="reference", showlegend=False,
            hovertemplate=f"{kind.replace('_', ' ')} reference: {median:.4g} ± {scale:.3g}<extra></extra>",
        )  # fmt: skip
        started = parse_ts(reference["started_at"])
        if kind != "initial" and started is not None and started == begin:
            figure.add_shape(type="line", x0=begin, x1=begin, yref="paper", y0=0, y1=1,
                             line={"color": "purple", "dash": "dot", "width": 1})  # fmt: skip
            figure.add_annotation(x=begin, yref="paper", y=1, text=kind.replace("_", " "), showarrow=False,
                                  xanchor="left", yanchor="top", font={"color": "purple"})  # fmt: skip
    for sensor_id, data in series.items():
        figure.add_scatter(x=data["timestamp"], y=data["value"], mode="lines", name=sensor_id)
    if anomalies is not None and not anomalies.empty:
        markers = anomaly_markers(series, anomalies)
        figure.add_scatter(
            x=markers["x"], y=markers["y"], mode="markers", name="anomaly",
            marker={"color": "red", "size": 9, "symbol": "x"}, text=markers["text"],
            hovertemplate="%{text}<extra>anomaly</extra>",
        )  # fmt: skip
    for alert in alerts:
        start = parse_ts(alert.get("opened_at"))
        end = parse_ts(alert.get("resolved_at")) or until
        if start is None or end is None:
            continue
        figure.add_vrect(
            x0=start, x1=end, opacity=0.12, line_width=0,
            fillcolor=SEVERITY_COLOURS.get(alert.get("severity", ""), "red"),
            annotation_text=f"alert {alert.get('rule')}", annotation_position="top left",
        )  # fmt: skip
    for label, value in thresholds:
        figure.add_hline(y=value, line_dash="dash", line_color="firebrick", annotation_text=label)
    if forecast is not None and not forecast.empty:
        figure.add_scatter(
            x=pd.concat([forecast["timestamp"], forecast["timestamp"][::-1]]),
            y=pd.concat([forecast["yhat_upper"], forecast["yhat_lower"][::-1]]),
            fill="toself", fillcolor="rgba(99,110,250,0.2)", line={"width": 0}, name="forecast interval",
            hoverinfo="skip", legendgroup="forecast",
            legendgrouptitle={"text": forecast_coverage} if forecast_coverage else None,
        )  # fmt: skip
        figure.add_scatter(
            x=forecast["timestamp"], y=forecast["yhat"], mode="lines", name="forecast", line={"dash": "dot"},
            legendgroup="forecast",
        )
    figure.update_layout(
        title=title, height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis_title=unit, xaxis_title="time (UTC)", legend={"orientation": "h"},
    )  # fmt: skip
    return figure


def anomaly_markers(series: dict[str, pd.DataFrame], anomalies: pd.DataFrame) -> pd.DataFrame:
    """Where each anomaly is drawn: on the plotted reading it belongs to — the series point at its timestamp (raw
    readings), or the bucket that holds it (rollups: the last point at or before it, less than a step earlier) —
    so a marker sits on the line at that point's time and value. An anomaly with no plotted point (a gap, another
    sensor) stays at its own timestamp and value. Columns ``x``, ``y``, ``text`` (the anomaly's own figures)."""
    frames = []
    for sensor_id, found in anomalies.groupby("sensor_id", sort=False):
        found = found.assign(timestamp=pd.to_datetime(found["timestamp"], utc=True)).sort_values("timestamp")
        found = found.assign(x=found["timestamp"], y=found["value"].astype(float))
        data = series.get(str(sensor_id))
        if data is not None and not data.empty:
            points = data[["timestamp", "value"]].dropna().copy()
            points["timestamp"] = pd.to_datetime(points["timestamp"], utc=True)
            points = points.sort_values("timestamp").rename(columns={"timestamp": "point_at", "value": "point_value"})
            steps = points["point_at"].diff().dropna()
            step = steps.median() if not steps.empty else pd.Timedelta(0)
            joined = pd.merge_asof(found, points, left_on="timestamp", right_on="point_at", direction="backward")
            # the point holds the anomaly when it is the anomaly's own reading or its bucket (less than a step back)
            held = (joined["point_at"] == joined["timestamp"]) | (joined["timestamp"] - joined["point_at"] < step)
            joined.loc[~held, ["point_at", "point_value"]] = None
            on_line = joined["point_at"].notna()
            joined.loc[on_line, "x"] = joined.loc[on_line, "point_at"]
            joined.loc[on_line, "y"] = joined.loc[on_line, "point_value"]
            found = joined
        frames.append(found)
    placed = pd.concat(frames, ignore_index=True)
    placed["text"] = [
        f"{s} at {t:%Y-%m-%d %H:%M:%S} UTC: value {v:.4g}, score {c:.2f}"
        for s, t, v, c in zip(placed["sensor_id"], placed["timestamp"], placed["value"], placed["score"], strict=True)
    ]
    return placed[["x", "y", "text"]]


def reference_periods(
    references: Sequence[dict[str, Any]], since: datetime | None, until: datetime | None
) -> list[tuple[dict[str, Any], datetime, datetime]]:
    """Each learned reference (median and scale known) with the period it stands for: from its start (event time
    of the first reading it learned from) to the next reference's start — the newest to ``until`` — clipped to
    ``[since, until]``. Oldest first; references learning (no median yet) are left out."""
    ordered = sorted(
        (r for r in references if parse_ts(r.get("started_at")) is not None),
        key=lambda r: parse_ts(r["started_at"]),  # type: ignore[arg-type, return-value]
    )
    periods = []
    for index, reference in enumerate(ordered):
        if reference.get("median") is None or not reference.get("scale"):
            continue
        begin = parse_ts(reference["started_at"])
        end = parse_ts(ordered[index + 1]["started_at"]) if index + 1 < len(ordered) else until
        if begin is None or end is None:
            continue
        begin, end = max(begin, since) if since else begin, min(end, until) if until else end
        if begin < end:
            periods.append((reference, begin, end))
    return periods


def bar_counts(counts: dict[str, int], title: str) -> go.Figure:
    figure = go.Figure(go.Bar(x=list(counts), y=list(counts.values())))
    figure.update_layout(title=title, height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def _percent(share: float) -> str:
    return f"{share * 100:.0f} %"


def interval_coverage_text(coverage: dict[str, Any] | None, nominal: float) -> str:
    """What a forecast interval is worth, from the forecast answer's ``coverage``: the nominal level and the share
    of the training study's test-fold readings that the (calibrated) interval covered."""
    level = _percent(nominal)
    if not isinstance(coverage, dict):
        return f"{level} interval · coverage unknown (the API did not report it)"
    measured = coverage.get("test_coverage")
    if not coverage.get("calibrated"):
        return f"{level} interval · not calibrated, coverage not measured"
    if not isinstance(measured, int | float):
        return f"{level} interval · calibrated, coverage not measured at this level"
    points = coverage.get("calibration_points")
    origin = f", calibrated on {points} backtest points" if isinstance(points, int) else ""
    return f"{level} interval · test coverage {_percent(measured)}{origin}"


COVERAGE_METRICS = {
    "test_coverage": "test coverage (calibrated)",
    "test_coverage_raw": "test coverage (raw)",
    "test_width": "mean width (calibrated)",
    "test_width_raw": "mean width (raw)",
    "cal_n": "calibration points",
}


def interval_coverage_rows(versions: Sequence[dict[str, Any]], nominal: float = 0.8) -> list[dict[str, Any]]:
    """One row per forecast model version: its interval's nominal level and the coverage and width measured on
    the test folds (run metrics ``test_coverage``, ``test_coverage_raw``, ``test_width``, ``test_width_raw``,
    ``cal_n``); versions whose run has no ``test_coverage`` say so."""
    rows = []
    for version in versions:
        metrics = version.get("metrics") or {}
        row: dict[str, Any] = {"version": str(version.get("version")), "nominal": nominal}
        for key, label in COVERAGE_METRICS.items():
            row[label] = metrics.get(key)
        row["note"] = "" if metrics.get("test_coverage") is not None else "not measured (no test_coverage metric)"
        rows.append(row)
    return rows
