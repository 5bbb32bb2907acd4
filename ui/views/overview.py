"""Platform status: is the platform up? Shows ``GET /health/ready`` per component, or a clear error when the API is
down."""

from __future__ import annotations

import streamlit as st

from ui.api_client import ApiClient, ApiError, Readiness
from ui.components import api

STATUS_ICONS = {"ok": "✅", "failing": "❌", "skipped": "⏭️"}

st.title("Platform status")

settings = api.settings_or_stop()

st.caption(f"API: {settings.api_base_url}")

readiness: Readiness | None = None
failure: ApiError | None = None
with ApiClient.from_settings(settings) as client:
    try:
        readiness = client.readiness()
    except ApiError as exc:
        failure = exc

if readiness is None:
    assert failure is not None
    if failure.status is None:
        st.error(
            f"The API is down: {failure.detail}. Start the platform with `make up` "
            "(or the API alone with `python -m apps.cli serve-api`), then reload this page."
        )
    else:
        st.error(f"The API answered HTTP {failure.status}: {failure.detail}")
        if failure.correlation_id:
            st.caption(f"correlation id: {failure.correlation_id}")
    st.button("Retry")
    st.stop()

assert readiness is not None
version = f" (version {readiness.version})" if readiness.version else ""
if readiness.ready:
    st.success(f"API ready{version}")
else:
    st.warning(f"API not ready: {readiness.detail or 'a component is failing'}")

st.markdown("#### Components")
columns = st.columns(max(1, len(readiness.components)))
for column, (name, component) in zip(columns, readiness.components.items(), strict=False):
    with column:
        st.metric(label=name, value=f"{STATUS_ICONS.get(component.status, '❔')} {component.status}")
        if component.latency_ms is not None:
            st.caption(f"{component.latency_ms:.1f} ms")
        if component.detail:
            st.caption(component.detail)

timescale = readiness.info.get("timescaledb") or {}
if timescale.get("installed"):
    st.caption(f"TimescaleDB {timescale.get('version')} installed")
elif timescale.get("installed") is False:
    st.caption("TimescaleDB not installed: plain PostgreSQL (hourly rollups computed on the fly)")

st.button("Refresh")
