"""Work orders: boards by status; assign, start, and complete with an outcome (fault_confirmed / no_fault_found),
technician and notes. A completion is a training label (see the Labels API)."""

from __future__ import annotations

import streamlit as st

from ui.components import actions, api
from ui.components.formatting import frame

STATUSES = {"open": "Open", "in_progress": "In progress", "done": "Done", "cancelled": "Cancelled"}
OUTCOMES = {"fault_confirmed": "Fault confirmed", "no_fault_found": "No fault found"}
LIMIT = 200
COLUMNS = ["id", "priority", "title", "sensor_id", "asset_id", "alert_id", "assignee", "due_at", "created_at"]

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
    boards[status], totals[status] = page

tabs = st.tabs([f"{label} ({totals[status]})" for status, label in STATUSES.items()])
for tab, status in zip(tabs, STATUSES, strict=True):
    with tab:
        if boards[status]:
            st.dataframe(
                frame(boards[status], COLUMNS, ("due_at", "created_at")), hide_index=True, width="stretch"
            )
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

assign_col, start_col = st.columns([3, 1])
assignee = assign_col.text_input("Assignee", value=task.get("assignee") or "", key="wo_assignee")
if assign_col.button("Assign", key="wo_assign", disabled=not assignee.strip()):
    actions.run(f"Assigning #{task_id}", "POST", f"/api/v1/maintenance/tasks/{task_id}/assign",
                json={"assignee": assignee.strip()}, done=lambda t: f"#{t['id']} assigned to {t['assignee']}.")  # fmt: skip
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
