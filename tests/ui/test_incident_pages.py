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


def test_incidents_page_lists_incidents_per_asset_with_work_order_and_timeline(
    console: ConsoleApi, scenario: Scenario
) -> None:
    at = open_page("pages/incidents.py")
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
    at.switch_page("pages/incidents.py")
    at.query_params["incident"] = str(scenario.kiln_incident)  # closed: not in the default (open) list
    at.run()
    assert_clean(at)
    assert _by_key(at.selectbox, "incidents_selected").value == scenario.kiln_incident
    assert at.subheader[0].value == f"Incident #{scenario.kiln_incident} · ui-kiln"
    assert {m.label: m.value for m in at.metric if m.label in ("status", "severity")} == {
        "status": "closed", "severity": "high"
    }  # fmt: skip
