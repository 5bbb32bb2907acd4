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
    until: datetime | None = None,
    title: str = "",
    unit: str = "",
) -> go.Figure:
    """Values per sensor (``timestamp``, ``value``), anomalies as red markers, alert periods as shaded bands
    (open alerts run to ``until``), threshold lines, and the forecast with its interval band."""
    figure = go.Figure()
    for sensor_id, data in series.items():
        figure.add_scatter(x=data["timestamp"], y=data["value"], mode="lines", name=sensor_id)
    if anomalies is not None and not anomalies.empty:
        figure.add_scatter(
            x=anomalies["timestamp"], y=anomalies["value"], mode="markers", name="anomaly",
            marker={"color": "red", "size": 9, "symbol": "x"},
            text=[f"{s} score {v:.2f}" for s, v in zip(anomalies["sensor_id"], anomalies["score"], strict=True)],
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
            hoverinfo="skip",
        )  # fmt: skip
        figure.add_scatter(
            x=forecast["timestamp"], y=forecast["yhat"], mode="lines", name="forecast", line={"dash": "dot"}
        )
    figure.update_layout(
        title=title, height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis_title=unit, xaxis_title="time (UTC)", legend={"orientation": "h"},
    )  # fmt: skip
    return figure


def bar_counts(counts: dict[str, int], title: str) -> go.Figure:
    figure = go.Figure(go.Bar(x=list(counts), y=list(counts.values())))
    figure.update_layout(title=title, height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure
