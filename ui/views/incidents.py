"""Incidents: one fault of one asset — the alerts that joined it within the correlation window, its work order and
its timeline (opened, alerts joined or attached to the work order, escalated, resolved, closed). Filtered by status
and asset; ``?incident=N`` opens one (the Alerts page links here)."""

from __future__ import annotations

import streamlit as st

from ui.components import api
from ui.components.incidents import INCIDENT_COLUMNS, score, show_incident, table

STATUSES = ["open", "resolved", "closed"]
LIMIT = 200
TASKS_LIMIT = 1000

st.title("Incidents")
assets_page = api.load_items("/api/v1/assets", "the assets")
if assets_page is None:
    st.stop()
assets = {a["id"]: a["name"] for a in assets_page[0]}

left, right = st.columns(2)
status = left.selectbox("Status", [*STATUSES, "(any)"], key="incidents_status")
asset_id = right.selectbox("Asset", [None, *sorted(assets, key=assets.get)], key="incidents_asset",
                           format_func=lambda a: "(any)" if a is None else assets[a])  # fmt: skip

totals = {}
for name in STATUSES:
    counted = api.load_items("/api/v1/incidents", f"the {name} incidents", 1, status=name, asset_id=asset_id)
    if counted is None:
        st.stop()
    totals[name] = counted[1]
for column, name in zip(st.columns(3), STATUSES, strict=True):
    column.metric(name, totals[name])

page = api.load_items("/api/v1/incidents", "the incidents", LIMIT,
                      status=None if status == "(any)" else status, asset_id=asset_id)  # fmt: skip
tasks_page = api.load_items("/api/v1/maintenance/tasks", "the work orders", TASKS_LIMIT, sort="created_at",
                            order="desc")  # fmt: skip
if page is None or tasks_page is None:
    st.stop()
incidents, total = page
work_orders: dict[int, dict] = {}
for task in reversed(tasks_page[0]):  # oldest first: the newest work order of an incident wins
    if task.get("incident_id") is not None:
        work_orders[task["incident_id"]] = task
rows = [
    {**i, "asset": assets.get(i["asset_id"], f"sensor {i['sensor_id']}" if i.get("sensor_id") else "—"),
     "work_order": (f"#{t['id']} · {t['priority']} · {t['status']}" if (t := work_orders.get(i["id"])) else None)}
    for i in incidents
]  # fmt: skip
st.caption(
    f"{total} incidents" + (f" (newest {LIMIT} shown)" if total > LIMIT else "") + " · newest evidence first"
    + (f" · work orders from the newest {TASKS_LIMIT}" if tasks_page[1] > TASKS_LIMIT else "")
)  # fmt: skip
if rows:
    table(rows, INCIDENT_COLUMNS, height=min(38 + 35 * len(rows), 400))
else:
    st.info("No incident matches the filters.")

wanted = st.query_params.get("incident")
choices = {i["id"]: f"#{i['id']} · {row['asset']} · {i['status']} · {i['severity']} · {i['alert_count']} alerts · "
           f"peak {score(i.get('peak_score'))}" for i, row in zip(incidents, rows, strict=True)}  # fmt: skip
if wanted is not None and wanted.isdigit() and int(wanted) not in choices:
    choices = {int(wanted): f"#{wanted} (linked)"} | choices
if not choices:
    st.stop()
chosen = st.selectbox("Incident", list(choices), format_func=choices.get, key="incidents_selected",
                      index=list(choices).index(int(wanted))
                      if wanted is not None and wanted.isdigit() else 0)  # fmt: skip
detail = api.load(f"/api/v1/incidents/{chosen}", f"incident #{chosen}")
if detail is None:
    st.stop()
st.subheader(f"Incident #{detail['id']} · {assets.get(detail['asset_id']) or detail.get('sensor_id') or '—'}")
show_incident(detail, assets.get(detail["asset_id"]))
