"""Work orders: boards by status with the evidence each rests on (its incident's sensors, rules, alerts, first/last
seen and peak score; opened and due in event time); one work order's evidence with the alerts attached after it
opened; assign, start, and complete with an outcome (fault_confirmed / no_fault_found), technician and notes. A
completion is a training label (see the Labels API)."""

from __future__ import annotations

import streamlit as st

from ui.components import actions, api
from ui.components.formatting import short_ts
from ui.components.incidents import (
    ALERT_COLUMNS,
    DIAGNOSIS_RULE,
    alert_relation,
    diagnosis_of,
    score,
    show_diagnosis,
    table,
)

STATUSES = {"open": "Open", "in_progress": "In progress", "done": "Done", "cancelled": "Cancelled"}
OUTCOMES = {"fault_confirmed": "Fault confirmed", "no_fault_found": "No fault found"}
LIMIT = 200
COLUMNS = [
    "id", "priority", "due_at", "event_opened_at", "title", "incident_id", "alerts", "sensors", "rules",
    "peak_score", "assignee", "alert_id", "created_at",
]  # fmt: skip
INCIDENTS = "views/incidents.py"


def with_evidence(task: dict) -> dict:
    """The task with its evidence's summary as columns (how many alerts, which sensors and rules, peak score)."""
    evidence = task.get("evidence") or {}
    return {
        **task,
        "alerts": len(evidence.get("alert_ids") or []),
        "sensors": ", ".join(evidence.get("sensors") or []) or task.get("sensor_id"),
        "rules": ", ".join(evidence.get("rules") or []),
        "peak_score": evidence.get("peak_score"),
    }


st.title("Work orders")
actions.show_flash()

boards: dict[str, list[dict]] = {}
totals: dict[str, int] = {}
for status in STATUSES:
    page = api.load_items("/api/v1/maintenance/tasks", f"{status} work orders", LIMIT, status=status,
                          sort="due_at" if status in ("open", "in_progress") else "created_at",
                          order="asc" if status in ("open", "in_progress") else "desc")  # fmt: skip
    if page is None:
        st.stop()
    boards[status], totals[status] = [with_evidence(t) for t in page[0]], page[1]

tabs = st.tabs([f"{label} ({totals[status]})" for status, label in STATUSES.items()])
for tab, status in zip(tabs, STATUSES, strict=True):
    with tab:
        if boards[status]:
            table(boards[status], COLUMNS)
            if totals[status] > LIMIT:
                st.caption(f"first {LIMIT} of {totals[status]}")
        else:
            st.caption("none")

active = boards["open"] + boards["in_progress"]
if not active:
    st.info("No open work order.")
    st.stop()

st.markdown("#### Act on a work order")
labels = {t["id"]: f"#{t['id']} · {t['priority']} · {t['status']} · {t['title']}" for t in active}
task_id = st.selectbox("Work order", list(labels), format_func=labels.get, key="wo_selected")
task = next(t for t in active if t["id"] == task_id)
if task.get("description"):
    st.caption(task["description"])
evidence = task.get("evidence")
with st.container(border=True):
    st.markdown("**Evidence**")
    if not evidence or task.get("incident_id") is None:
        st.caption("Opened by hand or before incidents existed: no incident evidence.")
    else:
        columns = st.columns(4)
        columns[0].metric("severity", evidence.get("severity") or "—")
        columns[1].metric("peak score", score(evidence.get("peak_score")))
        columns[2].metric("alerts", len(evidence.get("alert_ids") or []))
        columns[3].metric("priority", task["priority"])
        st.caption(
            f"Event time: first seen {short_ts(evidence.get('first_seen_at'))}, last seen "
            f"{short_ts(evidence.get('last_seen_at'))}, opened for the evidence of "
            f"{short_ts(task.get('event_opened_at'))}, due {short_ts(task.get('due_at')) or '—'} (counted from the "
            f"evidence, not from {short_ts(task['created_at'])} when the work order was written) · UTC"
        )
        st.caption(f"Sensors: {', '.join(evidence['sensors'])} · rules: {', '.join(evidence['rules'])}")
        incident = api.load(f"/api/v1/incidents/{task['incident_id']}", f"incident #{task['incident_id']}")
        if incident is not None:
            alerts = [{**a, "relation": alert_relation(a, task)} for a in incident["alerts"]]
            attached = sum(a["relation"] == "attached after it opened" for a in alerts)
            st.markdown(
                f"Alerts of incident #{incident['id']} ({attached} attached after the work order opened)"
            )
            table(alerts, ["relation", *ALERT_COLUMNS])
            for alert in (a for a in incident["alerts"] if a.get("rule") == DIAGNOSIS_RULE):
                diagnosis = diagnosis_of(alert["id"])
                if diagnosis is not None:
                    st.markdown(f"Diagnosis behind alert #{alert['id']} ({alert['sensor_id']})")
                    show_diagnosis(diagnosis)
            st.page_link(INCIDENTS, label=f"Incident #{incident['id']}: timeline",
                         query_params={"incident": str(incident["id"])})  # fmt: skip

assign_col, start_col = st.columns([3, 1])
assignee = assign_col.text_input("Assignee", value=task.get("assignee") or "", key="wo_assignee")
if assign_col.button("Assign", key="wo_assign", disabled=not assignee.strip()):
    actions.run(f"Assigning #{task_id}", "POST", f"/api/v1/maintenance/tasks/{task_id}/assign",
                json={"assignee": assignee.strip()},
                done=lambda t: f"#{t['id']} assigned to {t['assignee']}.")  # fmt: skip
if start_col.button("Start work", key="wo_start", disabled=task["status"] != "open"):
    actions.run(f"Starting #{task_id}", "PATCH", f"/api/v1/maintenance/tasks/{task_id}",
                json={"status": "in_progress"}, done=lambda t: f"#{t['id']} is {t['status']}.")  # fmt: skip

with st.container(border=True):
    st.markdown("**Complete**")
    outcome = st.radio("Outcome", list(OUTCOMES), format_func=OUTCOMES.get, horizontal=True, key="wo_outcome")
    technician = st.text_input("Technician", value=task.get("assignee") or "", key="wo_technician")
    notes = st.text_area("Notes", key="wo_notes")
    if st.button("Complete work order", key="wo_complete", disabled=not technician.strip()):
        actions.run(
            f"Completing #{task_id}", "POST", f"/api/v1/maintenance/tasks/{task_id}/complete",
            json={"outcome": outcome, "technician": technician.strip(), "notes": notes or None},
            done=lambda c: f"#{c['task']['id']} done ({c['log']['outcome']})"
            + ("; its alert is resolved." if c.get("alert_resolved") else "."),
        )  # fmt: skip
