"""Models, gauntlets, ingest and admin pages against a real API; every page with the API down."""

from __future__ import annotations

import json

import pytest

from tests.ui.conftest import ConsoleApi, assert_clean, open_page, texts

PAGES = [
    "pages/fleet.py", "pages/sensor_explorer.py", "pages/alerts.py", "pages/incidents.py", "pages/work_orders.py",
    "pages/models.py", "pages/ingest.py", "pages/admin.py", "pages/overview.py",
]  # fmt: skip


def _by_key(widgets, key: str):
    return next(w for w in widgets if w.key == key)


def test_models_page_lists_versions_compares_promotes_and_checks_drift(console: ConsoleApi) -> None:
    at = open_page("pages/models.py")
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


def test_gauntlets_page_reads_docs_ml_and_says_what_is_missing(
    api_down: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files only: the page works without the API; the MLflow link comes from the settings."""
    from core.config import PROJECT_ROOT, get_settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    get_settings.cache_clear()
    at = open_page("pages/gauntlets.py")
    warnings = " ".join(texts(at.warning))
    for name, target in (("ai4i", "classification-gauntlet"), ("vibration", "vibration-gauntlet"),
                         ("audio", "audio-gauntlet")):  # fmt: skip
        present = any((PROJECT_ROOT / "docs" / "ml" / p).is_file() for p in (f"{name}_summary.json",
                                                                               f"{name}/summary.json"))  # fmt: skip
        assert (f"docs/ml/{name}_summary.json` is missing" in warnings) is not present
        if not present:
            assert f"make {target}" in warnings
    docs_ml = PROJECT_ROOT / "docs" / "ml"
    shown = sum(min(len(list((docs_ml / d).rglob("*.png"))), 12)
                for d in ("ai4i", "vibration", "audio", "anomaly", "forecast", "eda"))  # fmt: skip
    assert shown >= 7 and len(at.get("image")) == shown  # every section's plots (at most 12 each)
    assert any("[MLflow UI](http://127.0.0.1:5999)" in m for m in texts(at.markdown))


def test_ingest_single_reading_and_csv_upload_with_per_row_rejections(console: ConsoleApi) -> None:
    at = open_page("pages/ingest.py")
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
    at = open_page("pages/admin.py")
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
    _by_key(at.button, "key_revoke").click().run()
    assert_clean(at)
    keys = console.get("/api/v1/admin/api-keys", include_revoked=True)["items"]
    assert next(k for k in keys if k["id"] == created["id"])["revoked_at"] is not None


def test_admin_adds_a_webhook_replays_a_dead_letter_and_lists_rules(console: ConsoleApi) -> None:
    letter = console.seeded.dead_letter
    at = open_page("pages/admin.py")
    frames = [df.value for df in at.dataframe]
    rules = next(f for f in frames if "kind" in f.columns)
    assert len(rules) == console.get("/api/v1/alert-rules")["total"]
    dead = next(f for f in frames if "handler" in f.columns)
    assert letter in set(dead["id"])

    _by_key(at.text_input, "hook_name").set_value("ui-test-hook")
    _by_key(at.text_input, "hook_target").set_value("https://hooks.example.invalid/sm")
    _by_key(at.text_input, "hook_events").set_value("AlertRaised")
    next(b for b in at.button if b.label == "Add webhook").click().run()
    assert_clean(at)
    hooks = console.get("/api/v1/webhooks")["items"]
    hook = next(h for h in hooks if h["name"] == "ui-test-hook")
    assert hook["event_types"] == ["AlertRaised"] and hook["target"] == "https://hooks.example.invalid/sm"
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
    at = open_page("pages/ingest.py")
    at.file_uploader[0].set_value(("x.csv", b"a,b\n1,2\n", "text/csv")).run()
    assert_clean(at)
    assert any("lacks the column(s) sensor_id, value, timestamp" in e for e in texts(at.error))
    assert json.dumps(texts(at.error))
