"""Alert rules CRUD (validation, scopes) and the alert lifecycle (ack/resolve with history, 409) through HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import httpx
import pytest

from core.alerts.defaults import ANOMALY_SCORE
from core.config import Settings, to_libpq_url
from tests.api.auth_support import Key, bootstrap_headers, create_key, serve_app
from tests.api.ingest_support import reading
from tests.support.events import wait_until

RULES = "/api/v1/alert-rules"
ALERTS = "/api/v1/alerts"


@dataclass
class Client:
    http: httpx.AsyncClient
    admin: dict[str, str]
    reader: Key
    ingester: Key


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Client]:
    async with serve_app(settings) as (_app, http):
        reader = await create_key(http, settings, "read")
        ingester = await create_key(http, settings, "ingest")
        yield Client(http, bootstrap_headers(settings), reader, ingester)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(to_libpq_url(settings.database_url))
    try:
        yield conn
    finally:
        await conn.close()


def rule_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": f"test-rule-{uuid.uuid4().hex[:8]}",
        "kind": "threshold",
        "sensor_type": f"type-{uuid.uuid4().hex[:6]}",
        "params": {"min": 1.0, "max": 5.0},
        "severity": "high",
        "unit": "bar",
        "open_after_k": 2,
        "window_readings": 5,
        "max_age_minutes": 30.0,
        "resolve_after_m": 3,
        "min_hold_minutes": 10.0,
    }
    body.update(changes)
    return body


# --- rules --------------------------------------------------------------------------------------------------------
async def test_rule_crud(api: Client):
    created = await api.http.post(RULES, json=rule_body(), headers=api.admin)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["params"] == {"min": 1.0, "max": 5.0} and rule["enabled"] is True

    got = await api.http.get(f"{RULES}/{rule['id']}", headers=api.reader.headers)
    assert got.status_code == 200 and got.json() == rule
    listed = await api.http.get(
        RULES, params={"kind": "threshold", "limit": 1000}, headers=api.reader.headers
    )
    assert listed.status_code == 200
    assert rule["id"] in [r["id"] for r in listed.json()["items"]]
    assert {r["kind"] for r in listed.json()["items"]} == {"threshold"}

    patched = await api.http.patch(
        f"{RULES}/{rule['id']}", json={"params": {"max": 9.0}, "enabled": False}, headers=api.admin
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["params"] == {"max": 9.0} and patched.json()["enabled"] is False

    deleted = await api.http.delete(f"{RULES}/{rule['id']}", headers=api.admin)
    assert deleted.status_code == 200 and deleted.json()["id"] == rule["id"]
    assert (await api.http.get(f"{RULES}/{rule['id']}", headers=api.reader.headers)).status_code == 404
    assert (await api.http.delete(f"{RULES}/{rule['id']}", headers=api.admin)).status_code == 404


async def test_default_rules_are_seeded(api: Client):
    listed = await api.http.get(RULES, params={"limit": 1000}, headers=api.reader.headers)
    by_name = {r["name"]: r for r in listed.json()["items"]}
    assert by_name["vibration-iso10816-zone-d"]["params"] == {"max": 7.1}
    assert by_name["vibration-iso10816-zone-d"]["severity"] == "critical"
    assert by_name["voltage-range"]["params"] == {"min": 207.0, "max": 253.0}
    assert by_name["anomaly-score"]["kind"] == "anomaly_score"
    assert by_name["no-data"]["kind"] == "no_data"
    # counted in readings, units on the thresholds, the rules added with 0005
    assert by_name["vibration-iso10816-zone-d"]["unit"] == "mm/s"
    assert (by_name["anomaly-score"]["open_after_k"], by_name["anomaly-score"]["window_readings"]) == (3, 20)
    # what promotion assumes about the shipped rule (core.alerts.defaults) is what the migration seeded
    seeded = by_name["anomaly-score"]
    assert (
        seeded["open_after_k"],
        seeded["window_readings"],
        seeded["resolve_after_m"],
        timedelta(minutes=seeded["min_hold_minutes"]),
        seeded["max_age_minutes"],
    ) == (ANOMALY_SCORE.k, ANOMALY_SCORE.n, ANOMALY_SCORE.m, ANOMALY_SCORE.hold, ANOMALY_SCORE.max_age)
    assert by_name["anomaly-score"]["params"]["methods"] == ["robust_z", "model"]
    assert by_name["no-data"]["params"] == {"interval_multiple": 10.0, "min_minutes": 2.0}
    assert by_name["kurtosis-impulsive"]["params"] == {"max": 3.0}
    assert by_name["flatline"]["kind"] == "flatline"
    assert by_name["degradation"]["params"]["methods"] == ["trend_ewma"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"params": {}}, "min, max or both"),
        ({"params": {"min": 5.0, "max": 1.0}}, "lower than max"),
        ({"params": {"max": 1.0, "colour": "red"}}, "colour"),
        ({"kind": "rate_of_change", "params": {"max_rate_per_min": -1}}, "max_rate_per_min"),
        ({"kind": "anomaly_score", "params": {"max": 3}}, "min_score"),
        ({"kind": "no_data", "params": {"no_data_minutes": 0}}, "no_data_minutes"),
        ({"kind": "nonsense"}, "kind"),
        ({"severity": "urgent"}, "severity"),
        ({"open_after_k": 0}, "open_after_k"),
        ({"open_after_k": 6, "window_readings": 5}, "window_readings must be at least open_after_k"),
        ({"unit": "furlongs/fortnight-ish"}, "is not a unit the platform knows"),
        ({"kind": "flatline", "params": {"tolerance": -1}}, "tolerance"),
        ({"max_age_minutes": 0}, "max_age_minutes"),
        ({"sensor_id": "x"}, "not both"),
        ({"name": "has spaces"}, "name"),
    ],
)
async def test_rule_validation(api: Client, changes: dict[str, object], fragment: str):
    response = await api.http.post(RULES, json=rule_body(**changes), headers=api.admin)
    assert response.status_code == 422, response.text
    assert fragment in response.text


async def test_rule_conflicts_and_unknown_sensor(api: Client):
    body = rule_body()
    assert (await api.http.post(RULES, json=body, headers=api.admin)).status_code == 201
    again = await api.http.post(RULES, json=rule_body(name=body["name"]), headers=api.admin)
    assert again.status_code == 409
    unknown = await api.http.post(
        RULES, json=rule_body(sensor_type=None, sensor_id="no-such-sensor"), headers=api.admin
    )
    assert unknown.status_code == 422 and "no-such-sensor" in unknown.text
    rule_id = (await api.http.get(RULES, params={"limit": 1000}, headers=api.reader.headers)).json()["items"][
        -1
    ]["id"]
    bad_patch = await api.http.patch(
        f"{RULES}/{rule_id}", json={"params": {"min_score": 1}}, headers=api.admin
    )
    assert bad_patch.status_code == 422


async def test_rule_scopes(api: Client):
    assert (await api.http.get(RULES)).status_code == 401
    assert (await api.http.get(RULES, headers=api.ingester.headers)).status_code == 403
    for headers in (api.reader.headers, api.ingester.headers):
        assert (await api.http.post(RULES, json=rule_body(), headers=headers)).status_code == 403
        assert (
            await api.http.patch(f"{RULES}/1", json={"enabled": False}, headers=headers)
        ).status_code == 403
        assert (await api.http.delete(f"{RULES}/1", headers=headers)).status_code == 403


# --- alerts -------------------------------------------------------------------------------------------------------
async def new_alert(db: asyncpg.Connection) -> int:
    sensor = f"s-{uuid.uuid4().hex[:10]}"
    await db.execute("INSERT INTO sensors (sensor_id, type) VALUES ($1, 'test-api-type')", sensor)
    anomaly_id = await db.fetchval(
        "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) "
        "VALUES ($1, now(), 42, 9.5, 'robust_z') RETURNING id",
        sensor,
    )
    alert_id = await db.fetchval(
        "INSERT INTO alerts (sensor_id, rule, severity) VALUES ($1, 'test-api-rule', 'high') RETURNING id",
        sensor,
    )
    await db.execute(
        "INSERT INTO alert_observations (alert_id, observed_at, value, anomaly_id) VALUES ($1, now(), 42, $2)",
        alert_id,
        anomaly_id,
    )
    await db.execute(
        "INSERT INTO alert_events (alert_id, from_status, to_status, actor) VALUES ($1, NULL, 'open', 'alerting')",
        alert_id,
    )
    return int(alert_id)


async def test_alert_lifecycle_with_history(api: Client, db: asyncpg.Connection):
    alert_id = await new_alert(db)
    got = await api.http.get(f"{ALERTS}/{alert_id}", headers=api.reader.headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["status"] == "open"
    assert [(a["score"], a["method"]) for a in body["anomalies"]] == [(9.5, "robust_z")]

    acked = await api.http.post(f"{ALERTS}/{alert_id}/ack", json={"comment": "looking"}, headers=api.admin)
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged" and acked.json()["acknowledged_at"] is not None
    # acknowledging twice is an invalid transition
    assert (await api.http.post(f"{ALERTS}/{alert_id}/ack", headers=api.admin)).status_code == 409

    resolved = await api.http.post(
        f"{ALERTS}/{alert_id}/resolve", json={"comment": "bearing replaced"}, headers=api.admin
    )
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_at"] is not None
    for action in ("ack", "resolve"):
        conflict = await api.http.post(f"{ALERTS}/{alert_id}/{action}", headers=api.admin)
        assert conflict.status_code == 409
        assert conflict.headers["content-type"].startswith("application/problem+json")

    history = (await api.http.get(f"{ALERTS}/{alert_id}", headers=api.reader.headers)).json()["events"]
    admin_name = await db.fetchval(
        "SELECT name FROM api_keys WHERE 'admin' = ANY(scopes) ORDER BY id LIMIT 1"
    )
    assert [(e["from_status"], e["to_status"], e["actor"], e["comment"]) for e in history] == [
        (None, "open", "alerting", None),
        ("open", "acknowledged", admin_name, "looking"),
        ("acknowledged", "resolved", admin_name, "bearing replaced"),
    ]


async def test_open_alert_resolves_directly(api: Client, db: asyncpg.Connection):
    alert_id = await new_alert(db)
    resolved = await api.http.post(f"{ALERTS}/{alert_id}/resolve", headers=api.admin)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert [(e["from_status"], e["to_status"]) for e in resolved.json()["events"]][-1] == ("open", "resolved")


async def test_alert_scopes_and_missing(api: Client, db: asyncpg.Connection):
    alert_id = await new_alert(db)
    assert (await api.http.get(f"{ALERTS}/{alert_id}")).status_code == 401
    assert (await api.http.post(f"{ALERTS}/{alert_id}/ack", headers=api.reader.headers)).status_code == 403
    assert (
        await api.http.post(f"{ALERTS}/{alert_id}/resolve", headers=api.ingester.headers)
    ).status_code == 403
    assert (await api.http.get(f"{ALERTS}/999999999", headers=api.reader.headers)).status_code == 404
    assert (await api.http.post(f"{ALERTS}/999999999/ack", headers=api.admin)).status_code == 404
    assert (await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id)) == "open"


# --- through the bus ----------------------------------------------------------------------------------------------
async def test_ingested_readings_open_an_alert_through_the_bus(api: Client, db: asyncpg.Connection):
    """Ingest → outbox → relay → bus → alerting agent: three readings over the rule's max open one alert."""
    sensor = f"s-{uuid.uuid4().hex[:10]}"
    await db.execute("INSERT INTO sensors (sensor_id, type) VALUES ($1, 'test-bus-type')", sensor)
    created = await api.http.post(
        RULES,
        json=rule_body(
            sensor_type=None, sensor_id=sensor, params={"max": 10.0}, open_after_k=3, severity="low", unit=None
        ),
        headers=api.admin,
    )
    assert created.status_code == 201, created.text
    body = [reading(sensor, minutes_ago=5 - i, value=v) for i, v in enumerate([5.0, 11.0, 12.0, 13.0])]
    ingest_headers = {**api.admin, "Content-Type": "application/json"}
    response = await api.http.post("/api/v1/data/ingest", content=json.dumps(body), headers=ingest_headers)
    assert response.status_code == 202, response.text

    async def alert_opened() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM alerts WHERE sensor_id = $1", sensor))

    await wait_until(alert_opened, what="the alert of the ingested readings")
    alert_id = await db.fetchval("SELECT id FROM alerts WHERE sensor_id = $1", sensor)
    got = (await api.http.get(f"{ALERTS}/{alert_id}", headers=api.reader.headers)).json()
    assert (got["rule"], got["severity"], got["status"], got["anomaly_count"]) == (
        created.json()["name"],
        "low",
        "open",
        3,
    )
    assert [e["to_status"] for e in got["events"]] == ["open"]
