"""Master dataset: preview of the generated demo data (``data/sensor_data.csv``, served by the API as
``GET /api/v1/datasets/sensor_data``) with one chart per sensor.

Fault ground truth (``GET /api/v1/datasets/sensor_data_faults``) is shaded on the charts when the API has it.
"""

from __future__ import annotations

import io

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ui.api_client import ApiError
from ui.components import api

DATASETS = "/api/v1/datasets"
FAULT_COLOURS = {"dropout": "grey", "stuck": "orange", "variance": "purple", "step": "red", "drift": "red"}


@st.cache_data(show_spinner=False, max_entries=8)
def parse_csv(content: bytes, time_columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV with its UTC time columns parsed (cached per content)."""
    frame = pd.read_csv(io.BytesIO(content))
    for column in time_columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def dataset(name: str, time_columns: tuple[str, ...]) -> pd.DataFrame:
    """The dataset from the API; raises ApiError (404 with the command that produces it when it is missing)."""
    return parse_csv(api.get_bytes(f"{DATASETS}/{name}"), time_columns)


def for_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Time columns as ISO 8601 UTC text, as in the file (and no tz-aware columns for the grid)."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def sensor_chart(readings: pd.DataFrame, faults: pd.DataFrame | None, sensor_id: str) -> go.Figure:
    unit = readings["unit"].iloc[0]
    sensor_type = readings["sensor_type"].iloc[0]
    figure = px.line(
        readings,
        x="timestamp",
        y="value",
        title=f"{sensor_id} · {sensor_type}",
        labels={"value": unit, "timestamp": "time (UTC)"},
    )
    noisy = readings[readings["quality"] < 1.0]
    if not noisy.empty:
        figure.add_scatter(
            x=noisy["timestamp"],
            y=noisy["value"],
            mode="markers",
            name="quality < 1",
            marker={"size": 6, "symbol": "x", "color": "black"},
        )
    if faults is not None:
        for fault in faults[faults["sensor_id"] == sensor_id].itertuples():
            if fault.started_at == fault.ended_at:
                figure.add_vline(x=fault.started_at, line_dash="dot", line_color="red")
            else:
                figure.add_vrect(
                    x0=fault.started_at,
                    x1=fault.ended_at,
                    opacity=0.15,
                    line_width=0,
                    fillcolor=FAULT_COLOURS.get(fault.kind, "red"),
                    annotation_text=fault.kind,
                    annotation_position="top left",
                )
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False)
    return figure


st.title("Master dataset")
try:
    data = dataset("sensor_data", ("timestamp",))
except ApiError as exc:
    if exc.status == 404:
        st.warning(f"The API has no master dataset: {exc.detail}.")
    else:
        api.show_error(exc, "the master dataset")
    st.stop()
try:
    faults: pd.DataFrame | None = dataset("sensor_data_faults", ("started_at", "ended_at"))
except ApiError as exc:
    faults = None
    if exc.status != 404:
        api.show_error(exc, "the injected faults")
st.caption(
    "Generated demo data (data/sensor_data.csv, see data/README.md): readings of the demo fleet, one row per "
    "sensor and time. Shaded bands and dotted lines mark injected faults (ground truth)."
)

left, middle, right, last = st.columns(4)
left.metric("readings", f"{len(data):,}")
middle.metric("sensors", data["sensor_id"].nunique())
right.metric("sensor types", data["sensor_type"].nunique())
last.metric("faults", 0 if faults is None else len(faults))
st.caption(f"{data['timestamp'].min():%Y-%m-%d %H:%M} → {data['timestamp'].max():%Y-%m-%d %H:%M} UTC")

types = sorted(data["sensor_type"].unique())
chosen_types = st.multiselect("Sensor types", types, default=types)
options = sorted(data.loc[data["sensor_type"].isin(chosen_types), "sensor_id"].unique())
chosen = st.multiselect("Sensors", options, default=options[:2])

selection = data[data["sensor_id"].isin(chosen)] if chosen else data[data["sensor_type"].isin(chosen_types)]
st.dataframe(for_table(selection), hide_index=True, height=280)
if faults is not None:
    with st.expander("Injected faults (ground truth)"):
        st.dataframe(for_table(faults), hide_index=True)

for sensor_id in chosen:
    st.plotly_chart(sensor_chart(data[data["sensor_id"] == sensor_id], faults, sensor_id))
