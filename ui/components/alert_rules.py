"""Admin → Alert rules: the rules with their hysteresis (counted in readings, judged in event time), enable or
disable one, change one, create one. The API validates (params per kind, window ≥ k, units); its 422 is shown."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from ui.components import actions, api
from ui.components.formatting import frame

KINDS = ["threshold", "anomaly_score", "rate_of_change", "flatline", "no_data"]
METHODS = ["robust_z", "model", "trend_ewma"]
SEVERITIES = ["info", "low", "medium", "high", "critical"]
UNIT_KINDS = ("threshold", "rate_of_change")
DEFAULTS: dict[str, Any] = {
    "name": "", "sensor_type": None, "sensor_id": None, "params": {}, "unit": None, "severity": "medium",
    "open_after_k": 3, "window_readings": 20, "max_age_minutes": None, "resolve_after_m": 10,
    "min_hold_minutes": 30.0,
}  # fmt: skip
COLUMNS = [
    "id", "name", "kind", "enabled", "severity", "sensor_type", "sensor_id", "open_after_k", "window_readings",
    "max_age_minutes", "resolve_after_m", "min_hold_minutes", "unit", "params",
]  # fmt: skip
HYSTERESIS = (
    "Counted in readings and judged in event time: an alert opens when k of the sensor's last n readings match "
    "(a match older than the age limit before the reading does not count, when set) and resolves after m "
    "consecutive normal readings once it has been open for the hold time."
)


def optional_number(container: Any, label: str, value: Any, default: float, key: str) -> float | None:
    """A number that may be absent: a checkbox (set or not) and its value (a cleared number input cannot say
    "absent" once it had a value)."""
    on = container.checkbox(label, value=value is not None, key=f"{key}_on")
    number = container.number_input(label, value=float(default if value is None else value), step=1.0,
                                    key=key, label_visibility="collapsed")  # fmt: skip
    return float(number) if on else None


def params_inputs(kind: str, params: dict[str, Any], key: str) -> dict[str, Any]:
    """The inputs of ``kind``'s params (inside a form); answers the params as the API takes them."""
    if kind == "anomaly_score":
        left, right = st.columns(2)
        min_score = left.number_input("Minimum score (0: every anomaly)", min_value=0.0, step=0.5,
                                      value=float(params.get("min_score", 0.0)), key=f"{key}_min_score")  # fmt: skip
        methods = right.multiselect("Detector methods (none: every method)", METHODS,
                                    default=params.get("methods") or [], key=f"{key}_methods")  # fmt: skip
        return {"min_score": min_score} | ({"methods": methods} if methods else {})
    if kind == "threshold":
        left, right = st.columns(2)
        low = optional_number(left, "Min: a reading below matches", params.get("min"), 0.0, f"{key}_min")
        high = optional_number(right, "Max: a reading above matches", params.get("max"), 100.0, f"{key}_max")
        return {name: value for name, value in (("min", low), ("max", high)) if value is not None}
    if kind == "rate_of_change":
        rate = st.number_input("Max change per minute (absolute)", value=float(params.get("max_rate_per_min", 1.0)),
                               step=0.1, key=f"{key}_rate")  # fmt: skip
        return {"max_rate_per_min": rate}
    if kind == "flatline":
        tolerance = st.number_input("Tolerance (a reading within this of the previous one is flat)", min_value=0.0,
                                    value=float(params.get("tolerance", 0.0)), step=0.01,
                                    key=f"{key}_tolerance")  # fmt: skip
        return {"tolerance": tolerance}
    left, middle, right = st.columns(3)
    minutes = optional_number(left, "Fixed timeout (minutes); else from the sensor's cadence",
                              params.get("no_data_minutes"), 15.0, f"{key}_no_data_minutes")  # fmt: skip
    multiple = middle.number_input("Cadence: × the sensor's median interval",
                                   value=float(params.get("interval_multiple", 10.0)), step=1.0,
                                   key=f"{key}_interval_multiple")  # fmt: skip
    floor = right.number_input("… but at least (minutes)", value=float(params.get("min_minutes", 2.0)), step=1.0,
                               key=f"{key}_min_minutes")  # fmt: skip
    return (
        {"no_data_minutes": minutes}
        if minutes is not None
        else {"interval_multiple": multiple, "min_minutes": floor}
    )


def rule_inputs(kind: str, rule: dict[str, Any], key: str) -> dict[str, Any]:
    """Every field of a rule of ``kind`` (inside a form), prefilled from ``rule``; answers the request body."""
    name = st.text_input("Name", value=rule["name"], key=f"{key}_name")
    left, middle, right = st.columns(3)
    sensor_type = left.text_input(
        "Sensor type (empty: any)", value=rule["sensor_type"] or "", key=f"{key}_type"
    )
    sensor_id = middle.text_input(
        "Sensor id (empty: any)", value=rule["sensor_id"] or "", key=f"{key}_sensor"
    )
    severity = right.selectbox("Severity", SEVERITIES, index=SEVERITIES.index(rule["severity"]),
                               key=f"{key}_severity")  # fmt: skip
    body: dict[str, Any] = {
        "name": name.strip(),
        "sensor_type": sensor_type.strip() or None,
        "sensor_id": sensor_id.strip() or None,
        "params": params_inputs(kind, rule["params"] or {}, f"{key}_{kind}"),
        "severity": severity,
    }
    if kind in UNIT_KINDS:
        unit = st.text_input("Unit of the bounds (empty: each sensor's own unit)", value=rule["unit"] or "",
                             key=f"{key}_unit")  # fmt: skip
        body["unit"] = unit.strip() or ("" if rule["unit"] == "" else None)  # "" (dimensionless) stays so
    st.caption("Hysteresis: counted in readings, judged in event time.")
    columns = st.columns(5)
    body["open_after_k"] = int(columns[0].number_input("Open after k matches", min_value=1, step=1,
                                                       value=int(rule["open_after_k"]), key=f"{key}_k"))  # fmt: skip
    body["window_readings"] = int(columns[1].number_input("… of the last n readings", min_value=1, step=1,
                                                          value=int(rule["window_readings"]),
                                                          key=f"{key}_n"))  # fmt: skip
    body["max_age_minutes"] = optional_number(columns[2], "Match age limit (min)", rule["max_age_minutes"], 60.0,
                                              f"{key}_age")  # fmt: skip
    body["resolve_after_m"] = int(columns[3].number_input("Resolve after m normal", min_value=1, step=1,
                                                          value=int(rule["resolve_after_m"]),
                                                          key=f"{key}_m"))  # fmt: skip
    body["min_hold_minutes"] = float(columns[4].number_input("Hold at least (min)", min_value=0.0, step=5.0,
                                                             value=float(rule["min_hold_minutes"]),
                                                             key=f"{key}_hold"))  # fmt: skip
    return body


def changes(rule: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``body`` that differ from ``rule`` (a PATCH sends only those)."""
    return {name: value for name, value in body.items() if rule.get(name) != value}


def render() -> None:
    page = api.load_items("/api/v1/alert-rules", "the alert rules", 500)
    if page is None:
        return
    rules, _ = page
    shown = [{**r, "params": json.dumps(r.get("params") or {}, ensure_ascii=False)} for r in rules]
    st.dataframe(frame(shown, COLUMNS), hide_index=True, width="stretch")
    st.caption(
        HYSTERESIS + " Threshold and rate rules with a unit judge only sensors whose unit converts to it."
    )

    if rules:
        st.markdown("#### Change a rule")
        names = {r["id"]: f"#{r['id']} {r['name']} ({r['kind']}, {'enabled' if r['enabled'] else 'disabled'})"
                 for r in rules}  # fmt: skip
        left, right = st.columns([3, 1])
        rule_id = left.selectbox("Rule", list(names), format_func=names.get, key="rule_id")
        rule = next(r for r in rules if r["id"] == rule_id)
        right.write("")
        if right.button("Disable" if rule["enabled"] else "Enable", key="rule_toggle"):
            actions.run(f"Changing rule #{rule_id}", "PATCH", f"/api/v1/alert-rules/{rule_id}",
                        json={"enabled": not rule["enabled"]},
                        done=lambda r: f"Rule {r['name']} is {'enabled' if r['enabled'] else 'disabled'}.")  # fmt: skip
        with st.form(f"rule_edit_{rule_id}"):
            st.markdown(f"**{rule['name']}** · kind `{rule['kind']}` (a rule's kind cannot change)")
            body = rule_inputs(rule["kind"], DEFAULTS | rule, f"rule_edit_{rule_id}")
            if st.form_submit_button("Save changes", key="rule_save"):
                diff = changes(rule, body)
                if diff:
                    actions.run(f"Changing rule #{rule_id}", "PATCH", f"/api/v1/alert-rules/{rule_id}", json=diff,
                                done=lambda r: f"Rule {r['name']} saved ({', '.join(sorted(diff))}).")  # fmt: skip
                else:
                    st.info("Nothing changed.")

    st.markdown("#### New rule")
    kind = st.selectbox("Kind", KINDS, key="rule_new_kind")
    with st.form("rule_create"):
        body = rule_inputs(kind, DEFAULTS, "rule_new")
        enabled = st.checkbox("Enabled", value=True, key="rule_new_enabled")
        if st.form_submit_button("Create rule", key="rule_create_submit"):
            actions.run("Creating the rule", "POST", "/api/v1/alert-rules",
                        json={**body, "kind": kind, "enabled": enabled},
                        done=lambda r: f"Rule #{r['id']} {r['name']} created.")  # fmt: skip
