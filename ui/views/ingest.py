"""Ingest: one reading by hand, a CSV file validated by the API (``POST /api/v1/data/ingest`` with the rows as
a JSON batch; the API's per-row rejection reasons are shown against the file's line numbers), and the master
dataset preview (``GET /api/v1/datasets/sensor_data``)."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from ui.api_client import ApiError
from ui.components import actions, api

INGEST = "/api/v1/data/ingest"
CHUNK = 5000
MAX_ROWS = 100_000
MAX_BYTES = 20 * 1024 * 1024
FIELDS = ("sensor_id", "value", "timestamp", "unit", "quality")
MASTER = "/api/v1/datasets/sensor_data"
PREVIEW_ROWS = 200


def _number(text: str) -> float | str:
    """A float when the cell is one; otherwise the text itself, so the API names the problem."""
    try:
        value = float(text)
    except ValueError:
        return text
    return text if math.isnan(value) or math.isinf(value) else value


def rows_to_readings(data: pd.DataFrame) -> list[dict[str, Any]]:
    """CSV rows (all cells text) → reading objects: empty cells left out, numbers parsed, ``sensor_type`` into
    ``metadata`` (used when the API registers an unknown sensor)."""
    readings = []
    for row in data.to_dict("records"):
        item: dict[str, Any] = {}
        for name in FIELDS:
            cell = row.get(name)
            if cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() == "":
                continue
            item[name] = _number(str(cell).strip()) if name in ("value", "quality") else str(cell).strip()
        sensor_type = row.get("sensor_type")
        if isinstance(sensor_type, str) and sensor_type.strip():
            item["metadata"] = {"sensor_type": sensor_type.strip()}
        readings.append(item)
    return readings


st.title("Ingest")
actions.show_flash()

st.subheader("One reading")
sensors = (api.load_items("/api/v1/sensors", "the sensors") or ([], 0))[0]
with st.form("single_reading"):
    left, right = st.columns(2)
    known = [s["sensor_id"] for s in sensors]
    # keyed widgets with a default set once per session: a default that changes on every run (now) would make a
    # new widget on each run and lose what the user typed
    st.session_state.setdefault("one_timestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    sensor_id = left.selectbox(
        "Sensor", known, index=0 if known else None, accept_new_options=True, key="one_sensor"
    )
    value = right.number_input("Value", value=0.0, format="%.4f", key="one_value")
    when = left.text_input("Timestamp (ISO 8601 with zone)", key="one_timestamp")
    quality = right.number_input("Quality", min_value=0.0, max_value=1.0, value=1.0, key="one_quality")
    unit = left.text_input("Unit (optional)", key="one_unit")
    if st.form_submit_button("Send reading"):
        reading: dict[str, Any] = {
            "sensor_id": sensor_id,
            "value": value,
            "timestamp": when,
            "quality": quality,
        }
        if unit.strip():
            reading["unit"] = unit.strip()
        actions.run("Sending the reading", "POST", INGEST, json=reading,
                    done=lambda r: f"Stored: {r['accepted']} accepted, {r['duplicates']} duplicate "
                    f"(event {r['event_id']}).")  # fmt: skip

st.subheader("CSV upload")
st.caption(
    "Columns: `sensor_id`, `value`, `timestamp` (ISO 8601 with a zone), optional `unit`, `quality` and "
    "`sensor_type`; other columns are ignored. The API validates every row; rejected rows are listed with the "
    "API's reason and their line in the file."
)
atomic = st.toggle("All or nothing (store nothing when a row is invalid)", value=False, key="csv_atomic")
upload = st.file_uploader("CSV file", type=["csv"], key="csv_file")
if upload is not None:
    raw = upload.getvalue()
    if len(raw) > MAX_BYTES:
        st.error(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it.")
        st.stop()
    try:
        data = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        st.error(f"Not a readable CSV file: {exc}")
        st.stop()
    missing = [c for c in ("sensor_id", "value", "timestamp") if c not in data.columns]
    ignored = [c for c in data.columns if c not in (*FIELDS, "sensor_type")]
    if missing:
        st.error(f"The file lacks the column(s) {', '.join(missing)}.")
        st.stop()
    if len(data) > MAX_ROWS:
        st.error(f"{len(data):,} rows: at most {MAX_ROWS:,} per upload.")
        st.stop()
    st.caption(f"{len(data):,} rows" + (f"; ignored columns: {', '.join(ignored)}" if ignored else ""))
    st.dataframe(data.head(20), hide_index=True, width="stretch")
    if st.button(f"Send {len(data):,} rows", key="csv_send"):
        readings = rows_to_readings(data)
        accepted = duplicates = 0
        rejected: list[dict[str, Any]] = []
        failure: str | None = None
        for offset in range(0, len(readings), CHUNK):
            chunk = readings[offset : offset + CHUNK]
            try:
                answer = api.send("POST", INGEST, json=chunk, params={"atomic": "true"} if atomic else None)
            except ApiError as exc:
                items = exc.problem.get("rejected") if isinstance(exc.problem.get("rejected"), list) else []
                if exc.status == 422 and items:
                    rejected += [{"line": offset + r["index"] + 2, "reason": r["reason"]} for r in items]
                    continue
                failure = f"rows {offset + 1}–{offset + len(chunk)}: " + (
                    f"the API is down ({exc.detail})"
                    if exc.status is None
                    else f"HTTP {exc.status}: {exc.detail}"
                )
                break
            accepted += answer["accepted"]
            duplicates += answer["duplicates"]
            rejected += [
                {"line": offset + r["index"] + 2, "reason": r["reason"]} for r in answer.get("rejected", [])
            ]
        st.session_state["csv_result"] = {"accepted": accepted, "duplicates": duplicates, "rejected": rejected,
                                          "failure": failure, "atomic": atomic}  # fmt: skip

result = st.session_state.get("csv_result")
if result is not None:
    if result["failure"]:
        st.error(f"The upload stopped: {result['failure']}")
    columns = st.columns(3)
    columns[0].metric("accepted", result["accepted"])
    columns[1].metric("duplicates", result["duplicates"])
    columns[2].metric("rejected", len(result["rejected"]))
    if result["rejected"]:
        note = " Nothing of those chunks was stored (all or nothing)." if result["atomic"] else ""
        st.warning(f"{len(result['rejected'])} rows were rejected by the API.{note}")
        st.dataframe(pd.DataFrame(result["rejected"]), hide_index=True, width="stretch")
    elif not result["failure"]:
        st.success("Every row was accepted (or already stored).")

st.subheader("Master dataset")
try:
    master = pd.read_csv(io.BytesIO(api.get_bytes(MASTER)), nrows=PREVIEW_ROWS)
except ApiError as exc:
    if exc.status == 404:
        st.warning(f"The API has no master dataset: {exc.detail}.")
    else:
        api.show_error(exc, "the master dataset")
else:
    st.dataframe(master, hide_index=True, height=240, width="stretch")
    st.page_link(
        "views/master_dataset.py", label="Open the master dataset (table and charts per sensor)", icon="📈"
    )
