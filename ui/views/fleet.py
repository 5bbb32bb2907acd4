"""Fleet overview: every asset and sensor with its health, last value and last-seen time, open alerts and open
work orders; refreshed every REFRESH_S seconds (``st.fragment(run_every=…)``); a sensor opens in the explorer; an
asset's remaining useful life (``GET /api/v1/assets/{id}/rul``: estimate, interval, model version)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from ui.api_client import ApiError
from ui.components import api
from ui.components.formatting import HEALTH_LABELS, ago, health_style, sensor_health, short_ts

REFRESH_S = 30
EXPLORER = "views/sensor_explorer.py"
HEALTH_ORDER = {"alert": 0, "warning": 1, "ok": 2}

st.title("Fleet overview")
stale_minutes = st.sidebar.number_input("Silent after (minutes)", min_value=1, max_value=1440, value=30)


@st.fragment(run_every=REFRESH_S)
def fleet_view() -> None:
    sensors_page = api.load_items("/api/v1/sensors", "the sensors", sort="sensor_id")
    if sensors_page is None:
        return
    sensors, sensors_total = sensors_page
    assets = {a["id"]: a for a in (api.load_items("/api/v1/assets", "the assets") or ([], 0))[0]}
    alerts: list[dict] = []
    for status in ("open", "acknowledged"):
        alerts += (api.load_items("/api/v1/alerts", f"{status} alerts", status=status) or ([], 0))[0]
    tasks: list[dict] = []
    for status in ("open", "in_progress"):
        tasks += (api.load_items("/api/v1/maintenance/tasks", f"{status} work orders", status=status) or ([], 0))[0]

    now = datetime.now(UTC)
    alerts_by_sensor: dict[str, list[dict]] = defaultdict(list)
    for alert in alerts:
        alerts_by_sensor[alert["sensor_id"]].append(alert)
    tasks_by_sensor = Counter(t["sensor_id"] for t in tasks if t.get("sensor_id"))
    tasks_by_asset = Counter(t["asset_id"] for t in tasks if t.get("asset_id"))

    rows = []
    for sensor in sensors:
        health, reason = sensor_health(
            sensor, alerts_by_sensor.get(sensor["sensor_id"], []), now, timedelta(minutes=stale_minutes)
        )
        asset = assets.get(sensor.get("asset_id"), {})
        value = sensor.get("last_reading_value")
        rows.append({
            "health": HEALTH_LABELS[health],
            "sensor": sensor["sensor_id"],
            "asset": asset.get("name", "—"),
            "type": sensor["type"],
            "last value": None if value is None else f"{value:.2f} {sensor.get('unit') or ''}".strip(),
            "last seen": ago(sensor.get("last_reading_at"), now),
            "open alerts": len([a for a in alerts_by_sensor.get(sensor["sensor_id"], []) if a["status"] == "open"]),
            "open work orders": tasks_by_sensor.get(sensor["sensor_id"], 0),
            "why": reason,
            "explore": f"sensor_explorer?sensor={sensor['sensor_id']}",
            "_rank": HEALTH_ORDER[health],
        })  # fmt: skip
    counts = Counter(row["health"] for row in rows)
    columns = st.columns(6)
    columns[0].metric("sensors", sensors_total)
    columns[1].metric("ok", counts.get(HEALTH_LABELS["ok"], 0))
    columns[2].metric("warning", counts.get(HEALTH_LABELS["warning"], 0))
    columns[3].metric("alert", counts.get(HEALTH_LABELS["alert"], 0))
    columns[4].metric("open alerts", len([a for a in alerts if a["status"] == "open"]))
    columns[5].metric("open work orders", len(tasks))
    if sensors_total > len(sensors):
        st.warning(f"Showing the first {len(sensors)} of {sensors_total} sensors.")

    st.markdown("#### Assets")
    asset_rows = []
    for asset_id, asset in sorted(assets.items()):
        mine = [r for r in rows if r["asset"] == asset["name"]]
        worst = min((r["_rank"] for r in mine), default=HEALTH_ORDER["ok"])
        asset_rows.append({
            "asset": asset["name"], "site": asset.get("site"), "kind": asset.get("kind"),
            "health": HEALTH_LABELS[next(h for h, r in HEALTH_ORDER.items() if r == worst)],
            "sensors": len(mine), "open alerts": sum(r["open alerts"] for r in mine),
            "open work orders": tasks_by_asset.get(asset_id, 0),
        })  # fmt: skip
    assets_frame = pd.DataFrame(asset_rows)
    if not assets_frame.empty:
        st.dataframe(assets_frame.style.map(health_style, subset=["health"]), hide_index=True, width="stretch")

    st.markdown("#### Sensors")
    rows.sort(key=lambda r: (r["_rank"], r["sensor"]))
    sensors_frame = pd.DataFrame([{k: v for k, v in row.items() if k != "_rank"} for row in rows])
    st.dataframe(
        sensors_frame.style.map(health_style, subset=["health"]),
        height=min(38 + 35 * len(sensors_frame), 740),  # every row of a fleet this size, no inner scrolling
        hide_index=True,
        width="stretch",
        column_config={"explore": st.column_config.LinkColumn("explore", display_text="open ↗")},
    )
    st.caption(f"Updated {short_ts(now)} UTC · refreshes every {REFRESH_S} s")


fleet_view()

sensor_ids = [s["sensor_id"] for s in (api.load_items("/api/v1/sensors", "the sensors") or ([], 0))[0]]
if sensor_ids:
    left, right = st.columns([3, 1])
    chosen = left.selectbox("Open a sensor in the explorer", sensor_ids, key="fleet_open_sensor")
    right.write("")
    if right.button("Open in explorer", key="fleet_open"):
        st.switch_page(EXPLORER, query_params={"sensor": chosen})


def rul_panel(assets: list[dict]) -> None:
    """The chosen asset's RUL estimate (point, interval, model version), or why there is none."""
    st.markdown("#### Remaining useful life")
    if not assets:
        st.info("No asset yet.")
        return
    names = {f"{a['name']} ({a.get('kind') or 'no kind'})": a for a in assets}
    chosen = names[st.selectbox("Asset", list(names), key="fleet_rul_asset")]
    try:
        rul = api.get(f"/api/v1/assets/{chosen['id']}/rul", timeout=api.slow_timeout())
    except ApiError as exc:
        if exc.status in (404, 409):
            st.info(f"No RUL estimate for {chosen['name']}: {exc.detail}")
        elif exc.status == 503:
            st.warning(f"No RUL estimate for {chosen['name']} now: the model registry is unavailable ({exc.detail})")
        else:
            api.show_error(exc, f"the RUL of {chosen['name']}")
        return
    interval = f"{rul['interval']:.0%}"
    columns = st.columns(4)
    columns[0].metric("RUL (cycles)", f"{rul['rul_cycles']:.0f}")
    columns[1].metric(f"{interval} interval", f"{rul['rul_lower_cycles']:.0f} – {rul['rul_upper_cycles']:.0f}")
    columns[2].metric("cycles observed", rul["cycles"])
    columns[3].metric("model", f"{rul['model_name']} v{rul['model_version']}")
    due = rul.get("lower_bound_at")
    lower_text = f"lower bound reached about {short_ts(due)} UTC" if due else "no cycle duration yet"
    st.caption(
        f"As of the last complete cycle ({short_ts(rul['last_cycle_at'])} UTC); "
        f"{lower_text} — work orders of this asset are due by then at the latest."
    )


rul_panel(list((api.load_items("/api/v1/assets", "the assets") or ([], 0))[0]))
