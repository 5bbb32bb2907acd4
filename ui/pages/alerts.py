"""Alerts: filterable list; one alert's history and the anomalies behind it; acknowledge / resolve with a comment."""

from __future__ import annotations

import streamlit as st

from ui.components import actions, api
from ui.components.formatting import frame

STATUSES = ["open", "acknowledged", "resolved"]
SEVERITIES = ["critical", "high", "medium", "low", "info"]
LIMIT = 500

st.title("Alerts")
actions.show_flash()

left, middle, right = st.columns(3)
status = left.selectbox("Status", ["(any)", *STATUSES], index=1, key="alerts_status")
severity = middle.selectbox("Severity", ["(any)", *SEVERITIES], key="alerts_severity")
sensor = right.text_input("Sensor id", key="alerts_sensor").strip() or None
page = api.load_items(
    "/api/v1/alerts", "the alerts", LIMIT,
    status=None if status == "(any)" else status, severity=None if severity == "(any)" else severity,
    sensor_id=sensor,
)  # fmt: skip
if page is None:
    st.stop()
alerts, total = page
st.caption(f"{total} alerts" + (f" (newest {LIMIT} shown)" if total > LIMIT else ""))
if not alerts:
    st.info("No alert matches the filters.")
    st.stop()
st.dataframe(
    frame(
        alerts,
        [
            "id",
            "status",
            "severity",
            "sensor_id",
            "rule",
            "anomaly_count",
            "opened_at",
            "acknowledged_at",
            "resolved_at",
        ],
        ("opened_at", "acknowledged_at", "resolved_at"),
    ),
    hide_index=True,
    width="stretch",
    height=300,
)

labels = {
    a["id"]: f"#{a['id']} · {a['sensor_id']} · {a['rule']} · {a['severity']} · {a['status']}" for a in alerts
}
alert_id = st.selectbox("Alert", list(labels), format_func=labels.get, key="alerts_selected")
detail = api.load(f"/api/v1/alerts/{alert_id}", f"alert #{alert_id}")
if detail is None:
    st.stop()

st.subheader(f"Alert #{alert_id}: {detail['rule']} on {detail['sensor_id']}")
columns = st.columns(4)
columns[0].metric("status", detail["status"])
columns[1].metric("severity", detail["severity"])
columns[2].metric("anomalies", detail["anomaly_count"])
columns[3].page_link(
    "pages/sensor_explorer.py", label="Open sensor", query_params={"sensor": detail["sensor_id"]}
)

comment = st.text_input("Comment", key="alerts_comment", placeholder="what you saw, what you did")
ack, resolve = st.columns(2)
body = {"comment": comment or None}
if ack.button("Acknowledge", disabled=detail["status"] != "open", key="alerts_ack"):
    actions.run(f"Acknowledging alert #{alert_id}", "POST", f"/api/v1/alerts/{alert_id}/ack", json=body,
                done=lambda a: f"Alert #{a['id']} is {a['status']}.")  # fmt: skip
if resolve.button("Resolve", disabled=detail["status"] == "resolved", key="alerts_resolve"):
    actions.run(f"Resolving alert #{alert_id}", "POST", f"/api/v1/alerts/{alert_id}/resolve", json=body,
                done=lambda a: f"Alert #{a['id']} is {a['status']}.")  # fmt: skip

st.markdown("#### Anomalies behind this alert")
if detail["anomalies"]:
    st.dataframe(frame(detail["anomalies"], ["id", "timestamp", "value", "score", "method", "model_name",
                                             "model_version"], ("timestamp",)), hide_index=True, width="stretch")  # fmt: skip
else:
    st.caption("No linked anomaly (a threshold or no-data rule opened it).")
st.markdown("#### History")
st.dataframe(frame(detail["events"], ["at", "from_status", "to_status", "actor", "comment"], ("at",)),
             hide_index=True, width="stretch")  # fmt: skip
