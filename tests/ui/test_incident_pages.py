"""Alerts with their incidents, the Incidents page, work orders with their evidence and the sensor explorer's
healthy references, against incidents the API's own agents made from readings (tests/ui/scenario.py)."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import ConsoleApi, assert_clean, open_page, texts
from tests.ui.scenario import Scenario
from ui.components.formatting import short_ts


def _by_key(widgets, key: str):
    return next(w for w in widgets if w.key == key)


def _frame_with(at: AppTest, *columns: str):
    return next(df.value for df in at.dataframe if set(columns) <= set(df.value.columns))


def _labels(at: AppTest, *columns: str) -> dict[str, str]:
    """Header labels of the first table that has ``columns`` (its column configuration)."""
    element = next(df for df in at.dataframe if set(columns) <= set(df.value.columns))
    config = json.loads(element.proto.columns or "{}")
    return {name: value.get("label") for name, value in config.items()}


def test_alerts_show_event_times_peak_score_and_their_incident(
    console: ConsoleApi, scenario: Scenario
) -> None:
    incident = console.get(f"/api/v1/incidents/{scenario.press_incident}")
    by_id = {a["id"]: a for a in incident["alerts"]}
    zone_d = by_id[scenario.press_alerts["vibration-iso10816-zone-d"]]
    scored = next(a for a in incident["alerts"] if a["peak_score"] is not None)  # an anomaly-score alert

    at = open_page("views/alerts.py")
    listed = at.dataframe[0].value.set_index("id")
    for alert in incident["alerts"]:
        row = listed.loc[alert["id"]]
        assert row["incident_id"] == scenario.press_incident
        assert row["event_opened_at"] == short_ts(alert["event_opened_at"])  # event time …
        assert row["opened_at"] == short_ts(alert["opened_at"])  # … next to the wall clock
        assert row["last_seen_at"] == short_ts(alert["last_seen_at"])
    assert listed.loc[scored["id"], "peak_score"] == pytest.approx(scored["peak_score"])
    assert zone_d["event_opened_at"] != zone_d["opened_at"]  # back-filled readings: event time is in the past
    labels = _labels(at, "event_opened_at")
    assert labels["event_opened_at"] == "opened (event time)" and labels["opened_at"] == "opened (written)"

    # only this incident's alerts
    _by_key(at.number_input, "alerts_incident").set_value(scenario.press_incident).run()
    assert_clean(at)
    assert sorted(at.dataframe[0].value["id"]) == sorted(
        a["id"] for a in incident["alerts"] if a["status"] == "open"
    )
    assert any(f"alerts of incident #{scenario.press_incident}" in c for c in texts(at.caption))

    # one row per incident
    _by_key(at.number_input, "alerts_incident").set_value(None)
    _by_key(at.toggle, "alerts_grouped").set_value(True).run()
    assert_clean(at)
    groups = at.dataframe[0].value.set_index("incident_id")
    listed_open = console.get("/api/v1/alerts", status="open", limit=500)["items"]
    assert (
        len(groups) == len({a["incident_id"] for a in listed_open}) >= 2
    )  # every incident, not only the filter's
    assert groups["alerts"].sum() == len(listed_open)
    press = groups.loc[scenario.press_incident]
    open_alerts = [a for a in incident["alerts"] if a["status"] == "open"]
    assert press["alerts"] == len(open_alerts) and press["severity"] == "critical"
    assert press["sensors"] == "ui-press-temp, ui-press-vib"
    assert press["peak_score"] == pytest.approx(max(a["peak_score"] or 0 for a in open_alerts))
    assert press["event_opened_at"] == short_ts(incident["first_seen_at"])

    # the detail: times side by side, the incident with its work order and timeline; acknowledging still works
    _by_key(at.toggle, "alerts_grouped").set_value(False).run()
    _by_key(at.selectbox, "alerts_selected").set_value(zone_d["id"]).run()
    assert_clean(at)
    times = _frame_with(at, "when", "event time", "written").set_index("when")
    assert times.loc["opened", "event time"] == short_ts(zone_d["event_opened_at"])
    assert times.loc["last seen", "event time"] == short_ts(zone_d["last_seen_at"])
    [link] = [p for p in at.get("page_link") if p.proto.page == "incidents"]
    assert link.proto.query_string == f"incident={scenario.press_incident}"
    title = next(e.label for e in at.expander if e.label.startswith(f"Incident #{scenario.press_incident}"))
    assert f"· open · critical · {incident['alert_count']} alerts · 1 work orders" in title
    work_order = _frame_with(at, "priority", "due_at")
    assert list(work_order["id"]) == [scenario.press_task] and list(work_order["priority"]) == ["critical"]
    timeline = _frame_with(at, "kind", "note")
    assert list(timeline["note"]) == [e["note"] for e in incident["timeline"]]
    assert (
        f"vibration-iso10816-zone-d (critical) on ui-press-vib; attached to work order {scenario.press_task}"
        in set(timeline["note"])
    )
    assert {"opened", "work_order_opened", "alert_joined", "escalated"} <= set(timeline["kind"])

    _by_key(at.text_input, "alerts_comment").input("zone D confirmed with a handheld meter")
    _by_key(at.button, "alerts_ack").click().run()
    assert_clean(at)
    assert any(f"Alert #{zone_d['id']} is acknowledged" in s for s in texts(at.success)), texts(at.error)
    detail = console.get(f"/api/v1/alerts/{zone_d['id']}")
    assert detail["status"] == "acknowledged"
    assert detail["events"][-1]["comment"] == "zone D confirmed with a handheld meter"


def test_incidents_page_lists_incidents_per_asset_with_work_order_and_timeline(
    console: ConsoleApi, scenario: Scenario
) -> None:
    at = open_page("views/incidents.py")
    metrics = {m.label: m.value for m in at.metric}
    for status in ("open", "resolved", "closed"):
        assert metrics[status] == str(console.get("/api/v1/incidents", status=status, limit=1)["total"])
    press = console.get(f"/api/v1/incidents/{scenario.press_incident}")
    listed = at.dataframe[0].value.set_index("id")
    assert set(listed["status"]) == {"open"}
    row = listed.loc[scenario.press_incident]
    assert (row["asset"], row["severity"], row["alert_count"]) == (
        "ui-press-line",
        "critical",
        press["alert_count"],
    )
    assert row["peak_score"] == pytest.approx(press["peak_score"])
    assert row["work_order"] == f"#{scenario.press_task} · critical · open"
    assert (row["first_seen_at"], row["last_seen_at"]) == (
        short_ts(press["first_seen_at"]),
        short_ts(press["last_seen_at"]),
    )

    _by_key(at.selectbox, "incidents_selected").set_value(scenario.press_incident).run()
    assert_clean(at)
    timeline = _frame_with(at, "kind", "note")
    assert list(timeline["kind"]) == [e["kind"] for e in press["timeline"]]
    assert list(timeline["event_at"]) == [short_ts(e["event_at"]) for e in press["timeline"]]
    escalated = next(e for e in press["timeline"] if e["kind"] == "escalated")
    assert escalated["note"].startswith("high → critical") and escalated["note"] in set(timeline["note"])
    alerts = _frame_with(at, "rule", "incident_id")
    assert sorted(alerts["id"]) == sorted(a["id"] for a in press["alerts"])

    # the dryer's incident resolved on its own, without a work order
    assets = {a["name"]: a["id"] for a in console.get("/api/v1/assets", limit=1000)["items"]}
    _by_key(at.selectbox, "incidents_status").set_value("resolved").run()
    _by_key(at.selectbox, "incidents_asset").set_value(assets["ui-dryer"]).run()
    assert_clean(at)
    assert list(at.dataframe[0].value["id"]) == [scenario.dryer_incident]
    assert {m.label: m.value for m in at.metric}["resolved"] == "1"
    dryer = console.get(f"/api/v1/incidents/{scenario.dryer_incident}")
    assert [e["kind"] for e in dryer["timeline"]] == ["opened", "alert_resolved", "resolved"]
    assert list(_frame_with(at, "kind", "note")["kind"]) == ["opened", "alert_resolved", "resolved"]
    assert any(c.startswith("No work order") for c in texts(at.caption))

    # the kiln's incident closed with its work order
    _by_key(at.selectbox, "incidents_status").set_value("closed").run()
    _by_key(at.selectbox, "incidents_asset").set_value(assets["ui-kiln"]).run()
    assert_clean(at)
    row = at.dataframe[0].value.iloc[0]
    assert (row["id"], row["work_order"]) == (scenario.kiln_incident, f"#{scenario.kiln_task} · high · done")
    closed = _frame_with(at, "kind", "note")
    assert list(closed["kind"])[-1] == "closed"
    assert list(closed["note"])[-1] == f"maintenance task {scenario.kiln_task} completed: fault_confirmed"


def test_incidents_page_opens_the_incident_a_link_names(console: ConsoleApi, scenario: Scenario) -> None:
    """``?incident=N`` (the Alerts and Work orders pages link so) selects it even when the filter hides it."""
    at = open_page()
    at.switch_page("views/incidents.py")
    at.query_params["incident"] = str(scenario.kiln_incident)  # closed: not in the default (open) list
    at.run()
    assert_clean(at)
    assert _by_key(at.selectbox, "incidents_selected").value == scenario.kiln_incident
    assert at.subheader[0].value == f"Incident #{scenario.kiln_incident} · ui-kiln"
    assert {m.label: m.value for m in at.metric if m.label in ("status", "severity")} == {
        "status": "closed", "severity": "high"
    }  # fmt: skip


def test_work_orders_show_their_evidence_and_the_alerts_attached_after_they_opened(
    console: ConsoleApi, scenario: Scenario
) -> None:
    task = console.get(f"/api/v1/maintenance/tasks/{scenario.press_task}")
    evidence = task["evidence"]
    at = open_page("views/work_orders.py")
    row = at.dataframe[0].value.set_index("id").loc[scenario.press_task]
    assert row["incident_id"] == scenario.press_incident and row["alerts"] == len(evidence["alert_ids"])
    assert row["sensors"] == ", ".join(evidence["sensors"]) and row["rules"] == ", ".join(evidence["rules"])
    assert row["peak_score"] == pytest.approx(evidence["peak_score"])
    assert row["event_opened_at"] == short_ts(task["event_opened_at"]) and row["due_at"] == short_ts(
        task["due_at"]
    )
    assert _labels(at, "event_opened_at")["event_opened_at"] == "opened (event time)"
    done = at.tabs[2].dataframe[0].value.set_index("id")  # the Done board
    assert done.loc[scenario.kiln_task, "incident_id"] == scenario.kiln_incident

    _by_key(at.selectbox, "wo_selected").set_value(scenario.press_task).run()
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["severity"] == "critical" and metrics["peak score"] == f"{evidence['peak_score']:.2f}"
    assert metrics["alerts"] == str(len(evidence["alert_ids"])) and metrics["priority"] == "critical"
    times = next(c for c in texts(at.caption) if c.startswith("Event time: first seen"))
    assert times.startswith(
        f"Event time: first seen {short_ts(evidence['first_seen_at'])}, "
        f"last seen {short_ts(evidence['last_seen_at'])}, "
        f"opened for the evidence of {short_ts(task['event_opened_at'])}, due {short_ts(task['due_at'])} "
    ), times
    assert "when the work order was written" in times and short_ts(task["created_at"]) in times
    relations = _frame_with(at, "relation", "rule").set_index("id")["relation"]
    assert sorted(relations.index) == sorted(evidence["alert_ids"])
    # the overheating raises two alerts (the threshold rule and the anomaly-score rule, judged by two handlers): the
    # work order is opened by whichever the scheduling agent handles first, the other one is evidence from before
    assert relations[task["alert_id"]] == "opened the work order"
    assert relations[scenario.press_alerts["temperature-high"]] in ("opened the work order", "before it opened")
    assert relations[scenario.press_alerts["vibration-iso10816-zone-d"]] == "attached after it opened"
    attached = int((relations == "attached after it opened").sum())
    assert any(f"({attached} attached after the work order opened)" in m for m in texts(at.markdown))
    [link] = [p for p in at.get("page_link") if p.proto.page == "incidents"]
    assert link.proto.query_string == f"incident={scenario.press_incident}"


def test_sensor_explorer_draws_the_reference_and_lists_its_relearnings(
    console: ConsoleApi, scenario: Scenario
) -> None:
    references = console.get(f"/api/v1/sensors/{scenario.reference_sensor}/references")["items"]
    current, initial = references  # newest first
    assert (current["kind"], initial["kind"]) == ("regime_change", "initial")

    at = open_page("views/sensor_explorer.py")
    at.multiselect[0].set_value([scenario.reference_sensor]).run()
    at.selectbox[0].set_value("Last 3 days").run()
    assert_clean(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    bands = [t for t in spec["data"] if t.get("name") == "reference median ± scale"]
    assert len(bands) == 2  # the initial level, then the level after the regime change
    for band, reference in zip(bands, (initial, current), strict=True):
        low, high = reference["median"] - reference["scale"], reference["median"] + reference["scale"]
        assert band["y"][:4] == pytest.approx([low, low, high, high])
    assert short_ts(bands[0]["x"][0]) == short_ts(initial["started_at"])
    assert short_ts(bands[0]["x"][1]) == short_ts(bands[1]["x"][0]) == short_ts(current["started_at"])
    marks = [s for s in spec["layout"]["shapes"] if s["type"] == "line" and s.get("x0") == s.get("x1")]
    assert [short_ts(s["x0"]) for s in marks] == [short_ts(current["started_at"])]
    assert "regime change" in [a["text"] for a in spec["layout"]["annotations"]]

    caption = next(c for c in texts(at.caption) if "healthy reference" in c)
    assert f"{current['median']:.4g} ± {current['scale']:.3g} bar (regime change" in caption
    assert any(e.label.endswith("learned 2 times, 1 after a regime change or a repair") for e in at.expander)
    history = _frame_with(at, "kind", "reason")
    assert list(history["kind"]) == ["regime_change", "initial"]
    assert history["reason"][0] == current["reason"] and current["reason"].startswith(
        "regime change: no data for 7.0 h"
    )
    assert history["previous_median"].iloc[0] == pytest.approx(initial["median"])
