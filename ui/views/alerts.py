"""Alerts: filterable list (or one row per incident), event time next to the wall clock; one alert's history, the
anomalies (for a bearing fault: the vibration diagnosis) behind it and its incident (alerts, work order,
timeline); acknowledge / resolve with a comment."""

from __future__ import annotations

import streamlit as st

from ui.components import actions, api
from ui.components.formatting import frame
from ui.components.incidents import (
    ALERT_COLUMNS,
    DIAGNOSIS_RULE,
    GROUP_COLUMNS,
    diagnosis_of,
    group_by_incident,
    score,
    show_diagnosis,
    show_incident,
    table,
)

STATUSES = ["open", "acknowledged", "resolved"]
SEVERITIES = ["critical", "high", "medium", "low", "info"]
LIMIT = 500
INCIDENTS = "views/incidents.py"

st.title("Alerts")
actions.show_flash()

left, middle, right, last = st.columns(4)
status = left.selectbox("Status", ["(any)", *STATUSES], index=1, key="alerts_status")
severity = middle.selectbox("Severity", ["(any)", *SEVERITIES], key="alerts_severity")
sensor = right.text_input("Sensor id", key="alerts_sensor").strip() or None
incident_id = last.number_input("Incident", min_value=1, value=None, step=1, key="alerts_incident",
                                placeholder="any")  # fmt: skip
wanted = {"status": None if status == "(any)" else status, "severity": None if severity == "(any)" else severity,
          "sensor_id": sensor}  # fmt: skip
if incident_id is not None:  # the incident's alerts (every one of them), then the other filters
    incident = api.load(f"/api/v1/incidents/{int(incident_id)}", f"incident #{int(incident_id)}")
    if incident is None:
        st.stop()
    alerts = [a for a in incident["alerts"] if all(v is None or a.get(k) == v for k, v in wanted.items())]
    st.caption(f"{len(alerts)} of the {len(incident['alerts'])} alerts of incident #{incident['id']}")
else:
    page = api.load_items("/api/v1/alerts", "the alerts", LIMIT, **wanted)
    if page is None:
        st.stop()
    alerts, total = page
    st.caption(f"{total} alerts" + (f" (newest {LIMIT} shown)" if total > LIMIT else ""))
if not alerts:
    st.info("No alert matches the filters.")
    st.stop()
if st.toggle("Group by incident", key="alerts_grouped"):
    table(group_by_incident(alerts), GROUP_COLUMNS, height=300)
else:
    table(alerts, ALERT_COLUMNS, height=300)
st.caption("Event time is the readings' timestamps (when the fault happened); written is when the platform stored "
           "it. An alert stays open at least its rule's hold time.")  # fmt: skip

labels = {
    a["id"]: f"#{a['id']} · {a['sensor_id']} · {a['rule']} · {a['severity']} · {a['status']}"
    + (f" · incident #{a['incident_id']}" if a.get("incident_id") else "")
    for a in alerts
}
alert_id = st.selectbox("Alert", list(labels), format_func=labels.get, key="alerts_selected")
detail = api.load(f"/api/v1/alerts/{alert_id}", f"alert #{alert_id}")
if detail is None:
    st.stop()

st.subheader(f"Alert #{alert_id}: {detail['rule']} on {detail['sensor_id']}")
columns = st.columns(5)
columns[0].metric("status", detail["status"])
columns[1].metric("severity", detail["severity"])
columns[2].metric("matches", detail["anomaly_count"])
columns[3].metric("peak score", score(detail.get("peak_score")))
columns[4].page_link(
    "views/sensor_explorer.py", label="Open sensor", query_params={"sensor": detail["sensor_id"]}
)
times = [
    {"when": "opened", "event time": detail.get("event_opened_at"), "written": detail["opened_at"]},
    {"when": "last seen", "event time": detail.get("last_seen_at"), "written": None},
    {"when": "acknowledged", "event time": None, "written": detail.get("acknowledged_at")},
    {"when": "resolved", "event time": detail.get("event_resolved_at"), "written": detail.get("resolved_at")},
]
st.dataframe(frame(times, None, ("event time", "written")), hide_index=True)

comment = st.text_input("Comment", key="alerts_comment", placeholder="what you saw, what you did")
ack, resolve = st.columns(2)
body = {"comment": comment or None}
if ack.button("Acknowledge", disabled=detail["status"] != "open", key="alerts_ack"):
    actions.run(f"Acknowledging alert #{alert_id}", "POST", f"/api/v1/alerts/{alert_id}/ack", json=body,
                done=lambda a: f"Alert #{a['id']} is {a['status']}.")  # fmt: skip
if resolve.button("Resolve", disabled=detail["status"] == "resolved", key="alerts_resolve"):
    actions.run(f"Resolving alert #{alert_id}", "POST", f"/api/v1/alerts/{alert_id}/resolve", json=body,
                done=lambda a: f"Alert #{a['id']} is {a['status']}.")  # fmt: skip

if detail["rule"] == DIAGNOSIS_RULE:
    st.markdown("#### Diagnosis behind this alert")
    diagnosis = diagnosis_of(alert_id)
    if diagnosis is None:
        st.caption("No diagnosis is linked to this alert.")
    else:
        show_diagnosis(diagnosis)
        st.caption(f"{detail['anomaly_count']} faulty snapshot(s) counted on the alert; every diagnosis of the "
                   f"sensor: GET /api/v1/sensors/{detail['sensor_id']}/diagnoses")  # fmt: skip

st.markdown("#### Anomalies behind this alert")
if detail["anomalies"]:
    st.dataframe(frame(detail["anomalies"], ["id", "timestamp", "value", "score", "method", "model_name",
                                             "model_version"], ("timestamp",)),
                 hide_index=True, width="stretch")  # fmt: skip
else:
    st.caption("No linked anomaly (a threshold, flat-line or no-data rule opened it).")
st.markdown("#### History")
st.dataframe(frame(detail["events"], ["at", "from_status", "to_status", "actor", "comment"], ("at",)),
             hide_index=True, width="stretch")  # fmt: skip

st.markdown("#### Incident")
if detail.get("incident_id") is None:
    st.caption("This alert belongs to no incident (it opened before incidents existed).")
else:
    incident = api.load(f"/api/v1/incidents/{detail['incident_id']}", f"incident #{detail['incident_id']}")
    if incident is not None:
        st.page_link(INCIDENTS, label=f"Open incident #{incident['id']} on the Incidents page",
                     query_params={"incident": str(incident["id"])})  # fmt: skip
        title = (f"Incident #{incident['id']} · {incident['status']} · {incident['severity']} · "
                 f"{incident['alert_count']} alerts · {len(incident['work_orders'])} work orders")  # fmt: skip
        assets = {a["id"]: a["name"] for a in (api.load_items("/api/v1/assets", "the assets") or ([], 0))[0]}
        with st.expander(title, expanded=True):
            show_incident(incident, assets.get(incident["asset_id"]))
