"""Incidents in the console: tables that tell event time (the readings' timestamps) from the wall clock (when the
platform wrote something), alerts grouped by incident, and one incident's panel — its alerts, work orders and
timeline from ``GET /incidents/{id}`` — shared by the Alerts, Incidents and Work orders pages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import streamlit as st

from ui.components.formatting import SEVERITY_RANK, frame, parse_ts, short_ts

EVENT_TIME = "Event time: the timestamp of the readings (a back-filled fault keeps its own past)."
WRITTEN = "Wall clock: when the platform wrote it."
LABELS: dict[str, tuple[str, str | None]] = {
    "incident_id": ("incident", "Alerts of one asset within the correlation window join one incident."),
    "event_opened_at": ("opened (event time)", EVENT_TIME),
    "first_seen_at": ("first seen (event time)", EVENT_TIME),
    "last_seen_at": ("last seen (event time)", EVENT_TIME),
    "event_resolved_at": ("resolved (event time)", EVENT_TIME),
    "event_at": ("event time", EVENT_TIME),
    "started_at": ("started (event time)", "Event time of the first reading it learns from."),
    "ready_at": ("ready (event time)", "Event time of the last reading it was learned from."),
    "previous_median": ("previous median", "The level before the regime change or the repair."),
    "opened_at": ("opened (written)", WRITTEN),
    "acknowledged_at": ("acknowledged (written)", WRITTEN),
    "resolved_at": ("resolved (written)", WRITTEN),
    "closed_at": ("closed (written)", WRITTEN),
    "created_at": ("created (written)", WRITTEN),
    "at": ("written", WRITTEN),
    "due_at": (
        "due",
        "Counted from the event time of the evidence that opened (or escalated) the work order.",
    ),
    "peak_score": ("peak score", "Highest anomaly score counted (anomaly rules)."),
    "anomaly_count": ("matches", "Matching readings or anomalies the alert counted."),
    "alert_count": ("alerts", None),
    "work_order": ("work order", "The incident's newest work order: id · priority · status."),
}
ALERT_COLUMNS = [
    "id", "status", "severity", "sensor_id", "rule", "incident_id", "anomaly_count", "peak_score",
    "event_opened_at", "last_seen_at", "event_resolved_at", "opened_at", "acknowledged_at", "resolved_at",
]  # fmt: skip
INCIDENT_COLUMNS = [
    "id", "asset", "status", "severity", "alert_count", "peak_score", "work_order", "first_seen_at",
    "last_seen_at", "opened_at", "resolved_at", "closed_at",
]  # fmt: skip
TASK_COLUMNS = ["id", "status", "priority", "title", "assignee", "event_opened_at", "due_at", "created_at"]
TIMELINE_COLUMNS = ["kind", "event_at", "at", "alert_id", "task_id", "note"]


def is_time(column: str) -> bool:
    return column == "at" or column.endswith("_at")


def column_config(columns: Iterable[str]) -> dict[str, Any]:
    """Readable headers (event time or written) for the API's column names; the data keeps the API's names."""
    config: dict[str, Any] = {}
    for column in columns:
        if column in LABELS:
            label, help_text = LABELS[column]
            config[column] = st.column_config.Column(label, help=help_text)
    return config


def table(items: Sequence[dict[str, Any]], columns: Sequence[str], **kwargs: Any) -> None:
    """API items as a dataframe: only ``columns``, times as UTC text, event time and wall clock labelled."""
    st.dataframe(
        frame(items, columns, [c for c in columns if is_time(c)]),
        column_config=column_config(columns),
        hide_index=True,
        width="stretch",
        **kwargs,
    )


def _latest(values: Iterable[str | None]) -> str | None:
    moments = [m for m in (parse_ts(v) for v in values) if m is not None]
    return max(moments).isoformat() if moments else None


def _earliest(values: Iterable[str | None]) -> str | None:
    moments = [m for m in (parse_ts(v) for v in values) if m is not None]
    return min(moments).isoformat() if moments else None


def group_by_incident(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per incident of ``alerts`` (alerts without an incident together, last): how many alerts and in
    which status, the worst severity, sensors, rules, first opened and last seen (event time), peak score.
    Incidents with the newest evidence first."""
    groups: dict[int | None, list[dict[str, Any]]] = {}
    for alert in alerts:
        groups.setdefault(alert.get("incident_id"), []).append(alert)
    rows = []
    for incident_id, members in groups.items():
        statuses = Counter(a["status"] for a in members)
        scores = [a["peak_score"] for a in members if a.get("peak_score") is not None]
        rows.append({
            "incident_id": incident_id,
            "alerts": len(members),
            "status": ", ".join(f"{statuses[s]} {s}" for s in ("open", "acknowledged", "resolved") if statuses[s]),
            "severity": max((a["severity"] for a in members), key=lambda s: SEVERITY_RANK.get(s, 0)),
            "sensors": ", ".join(sorted({a["sensor_id"] for a in members})),
            "rules": ", ".join(sorted({a["rule"] for a in members})),
            "event_opened_at": _earliest(a.get("event_opened_at") for a in members),
            "last_seen_at": _latest(a.get("last_seen_at") or a.get("event_opened_at") for a in members),
            "peak_score": max(scores) if scores else None,
        })  # fmt: skip
    rows.sort(key=lambda r: (r["incident_id"] is None, -_timestamp(r["last_seen_at"])))
    return rows


def _timestamp(value: str | None) -> float:
    moment = parse_ts(value)
    return moment.timestamp() if moment is not None else 0.0


GROUP_COLUMNS = [
    "incident_id", "alerts", "status", "severity", "sensors", "rules", "event_opened_at", "last_seen_at",
    "peak_score",
]  # fmt: skip


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def alert_relation(alert: dict[str, Any], task: dict[str, Any]) -> str:
    """How an alert of the incident relates to its work order: the alert that opened it, one written before it
    opened, or one attached after it opened (wall clock: the order in which the platform wrote them)."""
    if alert["id"] == task.get("alert_id"):
        return "opened the work order"
    written, created = parse_ts(alert.get("opened_at")), parse_ts(task.get("created_at"))
    if written is not None and created is not None and written > created:
        return "attached after it opened"
    return "before it opened"


def show_incident(detail: dict[str, Any], asset: str | None = None) -> None:
    """One incident (``GET /incidents/{id}``): its evidence, work orders, alerts and timeline."""
    columns = st.columns(4)
    columns[0].metric("status", detail["status"])
    columns[1].metric("severity", detail["severity"])
    columns[2].metric("alerts", detail["alert_count"])
    columns[3].metric("peak score", score(detail.get("peak_score")))
    where = asset or (
        f"sensor {detail['sensor_id']}" if detail.get("sensor_id") else f"asset #{detail['asset_id']}"
    )
    written = [f"opened {short_ts(detail['opened_at'])}"] + [
        f"{name} {short_ts(detail[f'{name}_at'])}"
        for name in ("resolved", "closed")
        if detail.get(f"{name}_at")
    ]
    st.caption(
        f"Incident #{detail['id']} of {where} · event time: first seen {short_ts(detail['first_seen_at'])}, last seen "
        f"{short_ts(detail['last_seen_at'])} · written: " + ", ".join(written) + " · UTC"
    )
    st.markdown("**Work order**")
    if detail["work_orders"]:
        table(detail["work_orders"], TASK_COLUMNS)
    else:
        st.caption(
            "No work order (medium and lower alerts open none; a high one is opened by the scheduling agent)."
        )
    st.markdown("**Alerts**")
    table(detail["alerts"], ALERT_COLUMNS)
    st.markdown("**Timeline**")
    table(detail["timeline"], TIMELINE_COLUMNS)


#: ``alerts.rule`` of the alerts raised by the diagnosis agent (bearing faults diagnosed from vibration snapshots).
DIAGNOSIS_RULE = "bearing-fault"


def _db(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} dB"


def diagnosis_summary(diagnosis: dict[str, Any]) -> str:
    """One line: the fault, how strongly, where in the spectrum, from which snapshot."""
    freqs = ", ".join(
        f"{name.upper()} {hz:.1f} Hz"
        for name, hz in (diagnosis.get("defect_frequencies") or {}).items()
        if hz is not None and name != "ftf"
    )
    band = diagnosis.get("band_hz")
    band_text = f" · envelope band {band[0]:.0f}–{band[1]:.0f} Hz" if band else ""
    return (
        f"{diagnosis['fault']} · score {_db(diagnosis.get('score_db'))} (threshold "
        f"{_db(diagnosis.get('threshold_db'))}) · bearing {diagnosis['bearing']} at {diagnosis['rpm']:g} rpm · "
        f"{freqs}{band_text} · snapshot #{diagnosis.get('snapshot_id') or '—'} of {short_ts(diagnosis['timestamp'])}"
        + (f" · {reason}" if (reason := (diagnosis.get("details") or {}).get("reason")) else "")
    )


def show_diagnosis(diagnosis: dict[str, Any]) -> None:
    """The latest diagnosis behind an alert (``GET /alerts/{id}/diagnosis``): fault, scores, evidence."""
    columns = st.columns(3)
    columns[0].metric("fault", diagnosis["fault"])
    columns[1].metric("score", _db(diagnosis.get("score_db")))
    columns[2].metric("threshold", _db(diagnosis.get("threshold_db")))
    st.caption(diagnosis_summary(diagnosis))
    scores = diagnosis.get("scores_db") or {}
    if scores:
        table([{"fault family": k, "score (dB)": v} for k, v in scores.items()], ["fault family", "score (dB)"])


def diagnosis_of(alert_id: int) -> dict[str, Any] | None:
    """The latest diagnosis behind an alert, None when it has none (404); other errors are shown."""
    from ui.api_client import ApiError
    from ui.components import api

    try:
        body: dict[str, Any] = api.get(f"/api/v1/alerts/{int(alert_id)}/diagnosis")
    except ApiError as exc:
        if exc.status != 404:
            api.show_error(exc, f"the diagnosis of alert #{alert_id}")
        return None
    return body
