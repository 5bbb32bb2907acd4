"""Models, gauntlets, ingest and admin pages against a real API; every page with the API down."""

from __future__ import annotations

import json
import re

import pytest

from tests.ui.conftest import ConsoleApi, assert_clean, open_page, texts
from ui.settings import get_console_settings

PAGES = [
    "views/fleet.py", "views/sensor_explorer.py", "views/alerts.py", "views/incidents.py", "views/work_orders.py",
    "views/models.py", "views/gauntlets.py", "views/ingest.py", "views/master_dataset.py", "views/admin.py",
    "views/overview.py",
]  # fmt: skip


def _by_key(widgets, key: str):
    return next(w for w in widgets if w.key == key)


def test_models_page_lists_versions_compares_promotes_and_checks_drift(console: ConsoleApi) -> None:
    at = open_page("views/models.py")
    assert not at.error, texts(at.error)
    models = {m["name"]: m for m in console.get("/api/v1/ml/models")["items"]}
    assert models["forecast_voltage"]["aliases"] == {"champion": "1", "challenger": "2"}
    assert any(e.label.startswith("forecast_voltage · 2 versions") for e in at.expander)
    frames = [df.value for df in at.dataframe]
    versions = next(f for f in frames if "run_id" in f.columns)
    assert dict(zip(versions["version"], versions["mae"], strict=True)) == {"1": 1.5, "2": 1.2}
    comparison = next(f for f in frames if "metric" in f.columns)
    assert comparison.to_dict("records") == [{"metric": "mae", "champion v1": 1.5, "challenger v2": 1.2}]

    _by_key(at.selectbox, "v_forecast_voltage").set_value("2").run()
    _by_key(at.checkbox, "force_forecast_voltage").check().run()
    _by_key(at.button, "promote_forecast_voltage").click().run()
    assert_clean(at)
    assert any(s.startswith("forecast_voltage v2: promoted to champion") for s in texts(at.success)), (
        texts(at.success) + texts(at.error) + texts(at.warning)
    )
    assert console.get("/api/v1/ml/models/forecast_voltage")["aliases"]["champion"] == "2"

    stored = console.get("/api/v1/ml/drift")["total"]
    assert (stored == 0) is any(i.startswith("No stored drift check yet") for i in texts(at.info))
    _by_key(at.button, "drift_check").click().run()
    assert_clean(at)
    check = console.call("POST", "/api/v1/ml/check_drift", json={}).json()["results"]
    by_type = next(df.value for df in at.dataframe if "max_psi" in df.value.columns)
    assert set(by_type["sensor_type"]) == {r["sensor_type"] for r in check}
    assert by_type["sensors"].sum() == len(check) >= 15
    assert by_type["checked"].sum() == sum(r["psi"] is not None for r in check) > 0


def test_gauntlets_page_shows_headline_tables_from_the_api_and_plots_on_demand(
    console: ConsoleApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables with human labels (no dotted summary keys), figures as the API's summary has them, no image until
    one is chosen, the MLflow link from SM_MLFLOW_UI_URL, and true hints for reports without a summary."""
    monkeypatch.setenv("SM_MLFLOW_UI_URL", "http://127.0.0.1:5999")
    get_console_settings.cache_clear()
    at = open_page("views/gauntlets.py")
    assert not at.error, texts(at.error)
    assert any("[MLflow UI](http://127.0.0.1:5999)" in m for m in texts(at.markdown))
    reports = {r["name"]: r for r in console.get("/api/v1/ml/reports")["items"]}
    headers = [h.value for h in at.header]
    for name in ("ai4i", "vibration", "audio"):
        assert reports[name]["title"] in headers

    frames = [df.value for df in at.dataframe]
    for frame in frames:
        cells = [str(c) for c in frame.columns] + [str(v) for v in frame.astype(str).to_numpy().ravel()]
        assert not [c for c in cells if re.search(r"\b(runs|datasets|simulation)\.[a-z_]+\.", c)], cells
    ai4i = console.get("/api/v1/ml/reports/ai4i")["summary"]["runs"]["real"]["models"]["random_forest__engineered"]
    cv = next(f for f in frames if "F1 (CV mean ± sd)" in f.columns)
    row = cv[(cv["model"] == "Random forest") & cv["features"].str.startswith("engineered")].iloc[0]
    assert row["F1 (CV mean ± sd)"] == f"{ai4i['mean']['f1']:.3f} ± {ai4i['std']['f1']:.3f}"
    audio = console.get("/api/v1/ml/reports/audio")["summary"]["datasets"]["generated"]["models"]["pca"]
    shown_auc = {v for f in frames if "mean AUC" in f.columns for v in f["mean AUC"]}
    assert f"{100 * audio['mean_auc']:.1f} %" in shown_auc, shown_auc
    assert any("delay after onset (h)" in f.columns for f in frames)  # vibration: detection delays in hours

    captions = " ".join(texts(at.caption))
    for info in reports.values():
        if info["kind"] == "training" and not info["summary_available"]:
            assert f"Plots written by `{info['produced_by']}`" in captions
    assert len(at.get("image")) == 0  # no plot drawn until one is chosen
    plots = reports["ai4i"]["plots"]
    next(s for s in at.selectbox if s.key == "plot_ai4i").set_value(plots[0]).run()
    assert_clean(at)
    assert len(at.get("image")) == 1


def test_ingest_single_reading_and_csv_upload_with_per_row_rejections(console: ConsoleApi) -> None:
    at = open_page("views/ingest.py")
    csv = (
        b"sensor_id,sensor_type,value,unit,timestamp,quality\n"
        b"ui-csv-1,pressure,5.5,bar,2026-11-20T10:00:00Z,1.0\n"
        b"ui-csv-1,pressure,not-a-number,bar,2026-11-20T10:05:00Z,1.0\n"
        b"ui-csv-1,pressure,5.7,bar,2026-11-20T10:10:00Z,1.0\n"
        b"ui-csv-1,pressure,5.8,bar,yesterday,1.0\n"
    )
    at.file_uploader[0].set_value(("readings.csv", csv, "text/csv")).run()
    assert_clean(at)
    assert any(c.startswith("4 rows") for c in texts(at.caption))
    _by_key(at.button, "csv_send").click().run()
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"accepted": "2", "duplicates": "0", "rejected": "2"}
    rejected = next(df.value for df in at.dataframe if "line" in df.value.columns)
    assert list(rejected["line"]) == [3, 5]  # file lines (header is line 1)
    assert all(reason for reason in rejected["reason"])
    stored = console.get("/api/v1/sensors/ui-csv-1/readings", start="2026-11-20T00:00:00Z",
                         end="2026-11-21T00:00:00Z")["items"]  # fmt: skip
    assert [p["value"] for p in stored] == [5.5, 5.7]

    _by_key(at.selectbox, "one_sensor").set_value("sensor-011")
    _by_key(at.number_input, "one_value").set_value(42.5)
    _by_key(at.text_input, "one_timestamp").set_value("2026-11-25T12:00:07Z")
    at.button[0].click().run()  # the form's submit button
    assert_clean(at)
    assert any(s.startswith("Stored: 1 accepted") for s in texts(at.success)), texts(at.success) + texts(
        at.error
    )
    window = console.get("/api/v1/sensors/sensor-011/readings", start="2026-11-25T12:00:00Z",
                         end="2026-11-25T12:01:00Z")["items"]  # fmt: skip
    assert [p["value"] for p in window if p["timestamp"] == "2026-11-25T12:00:07Z"] == [42.5]


def test_admin_creates_a_key_shown_once_and_revokes_it(console: ConsoleApi) -> None:
    at = open_page("views/admin.py")
    _by_key(at.text_input, "key_name").input("ui-test-key").run()
    _by_key(at.multiselect, "key_scopes").set_value(["read"]).run()
    _by_key(at.button, "key_create").click().run()
    assert_clean(at)
    assert len(at.code) == 1
    secret = at.code[0].value
    created = next(k for k in console.get("/api/v1/admin/api-keys")["items"] if k["name"] == "ui-test-key")
    answer = console.call("GET", "/api/v1/sensors", headers={"X-API-Key": secret})  # the shown key works
    assert answer.status_code == 200
    at.run()
    assert len(at.code) == 0  # shown once
    assert "ui-test-key" in set(at.dataframe[0].value["name"])

    _by_key(at.selectbox, "key_revoke_id").set_value(created["id"]).run()
    _by_key(at.text_input, "key_revoke_confirm").input("ui-test-key").run()  # the confirmation
    _by_key(at.button, "key_revoke").click().run()
    assert_clean(at)
    keys = console.get("/api/v1/admin/api-keys", include_revoked=True)["items"]
    assert next(k for k in keys if k["id"] == created["id"])["revoked_at"] is not None


def test_admin_adds_a_webhook_replays_a_dead_letter_and_lists_rules(console: ConsoleApi) -> None:
    letter = console.seeded.dead_letter
    at = open_page("views/admin.py")
    frames = [df.value for df in at.dataframe]
    rules = next(f for f in frames if "kind" in f.columns)
    assert len(rules) == console.get("/api/v1/alert-rules")["total"]
    dead = next(f for f in frames if "handler" in f.columns)
    assert letter in set(dead["id"])

    _by_key(at.text_input, "hook_name").set_value("ui-test-hook")
    _by_key(at.text_input, "hook_target").set_value("http://127.0.0.1:9/ui-test-hook")
    _by_key(at.text_input, "hook_events").set_value("AlertRaised")
    next(b for b in at.button if b.label == "Add webhook").click().run()
    assert_clean(at)
    hooks = console.get("/api/v1/webhooks")["items"]
    hook = next(h for h in hooks if h["name"] == "ui-test-hook")
    assert hook["event_types"] == ["AlertRaised"] and hook["target"] == "http://127.0.0.1:9/ui-test-hook"
    assert "ui-test-hook" in set(
        next(df.value for df in at.dataframe if "target" in df.value.columns)["name"]
    )

    _by_key(at.selectbox, "dead_id").set_value(letter).run()
    _by_key(at.button, "dead_replay").click().run()
    assert_clean(at)
    assert any(f"Dead letter #{letter} replayed" in s for s in texts(at.success)), texts(at.error)
    replayed = console.get("/api/v1/admin/dead-letters", replayed=True)["items"]
    assert next(d for d in replayed if d["id"] == letter)["replayed_at"] is not None


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_an_error_not_a_traceback_when_the_api_is_down(api_down: str, page: str) -> None:
    at = open_page(page)
    errors = texts(at.error)
    assert errors, f"{page}: no error shown"
    assert all("Traceback" not in e for e in errors)
    assert any("down" in e or "unreachable" in e for e in errors), errors


def test_ingest_page_rejects_a_file_without_the_required_columns(console: ConsoleApi) -> None:
    at = open_page("views/ingest.py")
    at.file_uploader[0].set_value(("x.csv", b"a,b\n1,2\n", "text/csv")).run()
    assert_clean(at)
    assert any("lacks the column(s) sensor_id, value, timestamp" in e for e in texts(at.error))
    assert json.dumps(texts(at.error))


def _flash(at) -> str:
    return " ".join(texts(at.success) + texts(at.error) + texts(at.info))


def test_admin_creates_and_changes_alert_rules_counted_in_readings(console: ConsoleApi) -> None:
    at = open_page("views/admin.py")
    table = next(df.value for df in at.dataframe if "window_readings" in df.value.columns)
    assert "window_minutes" not in table.columns
    assert {"unit", "max_age_minutes", "min_hold_minutes", "resolve_after_m"} <= set(table.columns)
    shipped = {r["name"]: r for r in console.get("/api/v1/alert-rules", limit=1000)["items"]}
    row = table.set_index("name").loc["temperature-high"]
    assert (row["unit"], row["window_readings"], row["min_hold_minutes"]) == (
        shipped["temperature-high"]["unit"], shipped["temperature-high"]["window_readings"],
        shipped["temperature-high"]["min_hold_minutes"],
    )  # fmt: skip

    # a flat-line rule for pressure sensors, created disabled (the rest of the session keeps its alerts)
    _by_key(at.selectbox, "rule_new_kind").set_value("flatline").run()
    _by_key(at.text_input, "rule_new_name").set_value("ui-flat-pressure")
    _by_key(at.text_input, "rule_new_type").set_value("pressure")
    _by_key(at.selectbox, "rule_new_severity").set_value("high")
    _by_key(at.number_input, "rule_new_flatline_tolerance").set_value(0.01)
    for key, value in (("k", 20), ("n", 25), ("age", 90.0), ("m", 5), ("hold", 15.0)):
        _by_key(at.number_input, f"rule_new_{key}").set_value(value)
    _by_key(at.checkbox, "rule_new_age_on").check()
    _by_key(at.checkbox, "rule_new_enabled").uncheck()
    _by_key(at.button, "rule_create_submit").click().run()
    assert_clean(at)
    created = next(
        r for r in console.get("/api/v1/alert-rules", limit=1000)["items"] if r["name"] == "ui-flat-pressure"
    )
    assert any(f"Rule #{created['id']} ui-flat-pressure created." in s for s in texts(at.success)), _flash(at)
    assert {k: created[k] for k in ("kind", "sensor_type", "sensor_id", "params", "severity", "open_after_k",
                                     "window_readings", "max_age_minutes", "resolve_after_m", "min_hold_minutes",
                                     "enabled")} == {
        "kind": "flatline", "sensor_type": "pressure", "sensor_id": None, "params": {"tolerance": 0.01},
        "severity": "high", "open_after_k": 20, "window_readings": 25, "max_age_minutes": 90.0,
        "resolve_after_m": 5, "min_hold_minutes": 15.0, "enabled": False,
    }  # fmt: skip

    # an anomaly rule counting only the degradation detector; the API refuses a window smaller than k
    _by_key(at.selectbox, "rule_new_kind").set_value("anomaly_score").run()
    _by_key(at.text_input, "rule_new_name").set_value("ui-wear")
    _by_key(at.text_input, "rule_new_type").set_value("")
    _by_key(at.multiselect, "rule_new_anomaly_score_methods").set_value(["trend_ewma"])
    _by_key(at.number_input, "rule_new_k").set_value(10)
    _by_key(at.number_input, "rule_new_n").set_value(5)
    _by_key(at.button, "rule_create_submit").click().run()
    assert_clean(at)
    error = " ".join(texts(at.error))
    assert (
        "Creating the rule failed: HTTP 422" in error
        and "window_readings must be at least open_after_k" in error
    )
    assert "ui-wear" not in {r["name"] for r in console.get("/api/v1/alert-rules", limit=1000)["items"]}
    _by_key(at.number_input, "rule_new_n").set_value(12)
    _by_key(at.button, "rule_create_submit").click().run()
    assert_clean(at)
    wear = next(r for r in console.get("/api/v1/alert-rules", limit=1000)["items"] if r["name"] == "ui-wear")
    assert wear["params"] == {"min_score": 0.0, "methods": ["trend_ewma"]} and wear["window_readings"] == 12

    # a threshold rule in a unit the platform does not know: the API's reason is shown
    _by_key(at.selectbox, "rule_new_kind").set_value("threshold").run()
    _by_key(at.text_input, "rule_new_name").set_value("ui-hot")
    _by_key(at.checkbox, "rule_new_threshold_max_on").check()
    _by_key(at.number_input, "rule_new_threshold_max").set_value(180.0)
    _by_key(at.text_input, "rule_new_unit").set_value("bananas")
    _by_key(at.button, "rule_create_submit").click().run()
    assert_clean(at)
    assert "unit 'bananas' is not a unit the platform knows" in " ".join(texts(at.error)), _flash(at)
    _by_key(at.text_input, "rule_new_unit").set_value("degF")
    _by_key(at.button, "rule_create_submit").click().run()
    assert_clean(at)
    hot = next(r for r in console.get("/api/v1/alert-rules", limit=1000)["items"] if r["name"] == "ui-hot")
    assert (hot["kind"], hot["params"], hot["unit"]) == (
        "threshold",
        {"max": 180.0},
        "°F",
    )  # the API's spelling

    # change the flat-line rule: a longer window, no age limit, a longer hold; only those fields are sent
    rule_id = created["id"]
    _by_key(at.selectbox, "rule_id").set_value(rule_id).run()
    _by_key(at.number_input, f"rule_edit_{rule_id}_n").set_value(40)
    _by_key(at.checkbox, f"rule_edit_{rule_id}_age_on").uncheck()
    _by_key(at.number_input, f"rule_edit_{rule_id}_hold").set_value(45.0)
    _by_key(at.button, "rule_save").click().run()
    assert_clean(at)
    assert any("Rule ui-flat-pressure saved (max_age_minutes, min_hold_minutes, window_readings)." in s
               for s in texts(at.success)), _flash(at)  # fmt: skip
    changed = console.get(f"/api/v1/alert-rules/{rule_id}")
    assert (changed["window_readings"], changed["max_age_minutes"], changed["min_hold_minutes"]) == (
        40,
        None,
        45.0,
    )
    assert changed["open_after_k"] == 20 and changed["params"] == {"tolerance": 0.01}

    _by_key(at.selectbox, "rule_id").set_value(rule_id).run()
    _by_key(at.number_input, f"rule_edit_{rule_id}_k").set_value(50)
    _by_key(at.button, "rule_save").click().run()
    assert_clean(at)
    error = " ".join(texts(at.error))
    assert f"Changing rule #{rule_id} failed: HTTP 422" in error and "window_readings" in error, _flash(at)
    assert console.get(f"/api/v1/alert-rules/{rule_id}")["open_after_k"] == 20
