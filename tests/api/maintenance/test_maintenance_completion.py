"""Completing a work order: log row, task done, alert resolved (with history), MaintenanceTaskCompleted in the
outbox, and the label visible in GET /api/v1/labels and in ``python -m apps.cli export-labels``."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from core.config import Settings
from core.db.session import create_engine, create_session_factory
from core.maintenance import agent as scheduling
from core.observability.metrics import REGISTRY
from tests.api.auth_support import MISSING_ID, Key, create_key
from tests.support.cli import run_cli
from tests.support.maintenance import (
    Plant,
    add_anomaly,
    connect,
    make_alert,
    make_plant,
    outbox_rows,
    tasks_for_alert,
)

TASKS = "/api/v1/maintenance/tasks"
LABELS = "/api/v1/labels"


async def task_from_agent(settings: Settings, plant: Plant, *, anomalies: int = 0) -> tuple[int, int]:
    """An alert (with ``anomalies`` linked anomalies) handled by the scheduling agent: (task id, alert id)."""
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with connect(settings) as conn:
            sensor = plant.sensor_ids[0]
            event = await make_alert(conn, sensor, severity="critical")
            start = datetime.now(UTC) - timedelta(minutes=10)
            for i in range(anomalies):
                at = start + timedelta(minutes=i)
                await add_anomaly(conn, sensor, at)
                await conn.execute(
                    "INSERT INTO alert_observations (alert_id, observed_at, value, anomaly_id) "
                    "SELECT $1, $2, 1.0, id FROM anomalies WHERE sensor_id = $3 AND timestamp = $2",
                    event.alert_id,
                    at,
                    sensor,
                )
            await scheduling.OpenTaskForAlert(create_session_factory(engine))(event)
            [task] = await tasks_for_alert(conn, event.alert_id)
            return task["id"], event.alert_id
    finally:
        await engine.dispose()


def completed(outcome: str) -> float:
    return REGISTRY.get_sample_value("sm_maintenance_tasks_completed_total", {"outcome": outcome}) or 0.0


async def test_complete_closes_the_loop(
    client: httpx.AsyncClient, admin: Key, reader: Key, plant: Plant, settings: Settings
) -> None:
    task_id, alert_id = await task_from_agent(settings, plant, anomalies=3)
    before = completed("fault_confirmed")
    body = {"outcome": "fault_confirmed", "technician": "ann", "notes": "bearing replaced"}
    response = await client.post(f"{TASKS}/{task_id}/complete", json=body, headers=admin.headers)
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["task"]["status"] == "done"
    assert done["alert_resolved"] is True
    assert (done["log"]["task_id"], done["log"]["outcome"], done["log"]["technician"]) == (
        task_id,
        "fault_confirmed",
        "ann",
    )
    assert completed("fault_confirmed") == before + 1

    async with connect(settings) as conn:
        [log] = await conn.fetch("SELECT * FROM maintenance_logs WHERE task_id = $1", task_id)
        assert (log["outcome"], log["technician"], log["notes"]) == (
            "fault_confirmed",
            "ann",
            "bearing replaced",
        )
        alert = await conn.fetchrow("SELECT status, resolved_at FROM alerts WHERE id = $1", alert_id)
        assert alert["status"] == "resolved" and alert["resolved_at"] is not None
        [history] = await conn.fetch(
            "SELECT from_status, to_status, actor, comment FROM alert_events WHERE alert_id = $1", alert_id
        )
        assert (history["from_status"], history["to_status"], history["actor"]) == ("open", "resolved", "ann")
        assert str(task_id) in history["comment"]
        [event] = await outbox_rows(conn, "MaintenanceTaskCompleted", task_id)
        assert event["payload"]["log_id"] == log["id"]
        assert event["payload"]["outcome"] == "fault_confirmed"

    # completing twice is a conflict and changes nothing
    again = await client.post(f"{TASKS}/{task_id}/complete", json=body, headers=admin.headers)
    assert again.status_code == 409
    async with connect(settings) as conn:
        assert await conn.fetchval("SELECT count(*) FROM maintenance_logs WHERE task_id = $1", task_id) == 1
        assert len(await outbox_rows(conn, "MaintenanceTaskCompleted", task_id)) == 1

    # the label
    labels = await client.get(LABELS, params={"sensor_id": plant.sensor_ids[0]}, headers=reader.headers)
    assert labels.status_code == 200, labels.text
    page = labels.json()
    assert page["total"] == 1
    [label] = page["items"]
    assert label["task_id"] == task_id and label["alert_id"] == alert_id
    assert (label["sensor_id"], label["asset_id"]) == (plant.sensor_ids[0], plant.asset_id)
    assert (label["rule"], label["severity"], label["outcome"], label["technician"]) == (
        "vibration_max",
        "critical",
        "fault_confirmed",
        "ann",
    )
    assert label["alert_opened_at"] is not None and label["alert_resolved_at"] is not None
    assert label["anomaly_count"] == 3
    assert label["first_anomaly_at"] < label["last_anomaly_at"]


async def test_complete_without_alert_and_from_in_progress(
    client: httpx.AsyncClient, admin: Key, plant: Plant
) -> None:
    created = await client.post(
        TASKS, json={"title": "routine", "sensor_id": plant.sensor_ids[1]}, headers=admin.headers
    )
    task_id = created.json()["id"]
    await client.patch(f"{TASKS}/{task_id}", json={"status": "in_progress"}, headers=admin.headers)
    done = await client.post(
        f"{TASKS}/{task_id}/complete",
        json={"outcome": "no_fault_found", "technician": "bob"},
        headers=admin.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["alert_resolved"] is False
    label = (
        await client.get(LABELS, params={"sensor_id": plant.sensor_ids[1]}, headers=admin.headers)
    ).json()
    [item] = label["items"]
    assert (item["alert_id"], item["rule"], item["anomaly_count"], item["outcome"]) == (
        None,
        None,
        0,
        "no_fault_found",
    )


async def test_complete_conflicts_and_validation(client: httpx.AsyncClient, admin: Key, plant: Plant) -> None:
    created = await client.post(
        TASKS, json={"title": "t", "sensor_id": plant.sensor_ids[0]}, headers=admin.headers
    )
    task_id = created.json()["id"]
    ok = {"outcome": "no_fault_found", "technician": "x"}
    for invalid in ({"outcome": "broken", "technician": "x"}, {"outcome": "no_fault_found"}):
        response = await client.post(f"{TASKS}/{task_id}/complete", json=invalid, headers=admin.headers)
        assert response.status_code == 422
    missing = await client.post(f"{TASKS}/{MISSING_ID}/complete", json=ok, headers=admin.headers)
    assert missing.status_code == 404
    await client.patch(f"{TASKS}/{task_id}", json={"status": "cancelled"}, headers=admin.headers)
    cancelled = await client.post(f"{TASKS}/{task_id}/complete", json=ok, headers=admin.headers)
    assert cancelled.status_code == 409


async def test_labels_filters_pagination_and_scopes(
    client: httpx.AsyncClient, settings: Settings, admin: Key, reader: Key
) -> None:
    async with connect(settings) as conn:
        plant = await make_plant(conn, sensors=1)
    sensor = plant.sensor_ids[0]
    outcomes = ["fault_confirmed", "no_fault_found", "fault_confirmed"]
    ids = []
    for outcome in outcomes:
        created = await client.post(TASKS, json={"title": "t", "sensor_id": sensor}, headers=admin.headers)
        ids.append(created.json()["id"])
        await client.post(
            f"{TASKS}/{ids[-1]}/complete", json={"outcome": outcome, "technician": "t"}, headers=admin.headers
        )

    async def get(**params: Any) -> dict[str, Any]:
        response = await client.get(LABELS, params={"sensor_id": sensor, **params}, headers=reader.headers)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    assert [i["task_id"] for i in (await get())["items"]] == ids[::-1]  # newest first
    confirmed = await get(outcome="fault_confirmed")
    assert confirmed["total"] == 2 and {i["task_id"] for i in confirmed["items"]} == {ids[0], ids[2]}
    page = await get(limit=1, offset=1)
    assert (page["total"], [i["task_id"] for i in page["items"]]) == (3, [ids[1]])
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await get(since=future))["total"] == 0
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (await get(since=past))["total"] == 3
    assert (await client.get(LABELS, params={"outcome": "maybe"}, headers=reader.headers)).status_code == 422

    ingest = await create_key(client, settings, "ingest")
    assert (await client.get(LABELS)).status_code == 401
    assert (await client.get(LABELS, headers=ingest.headers)).status_code == 403


def export_labels(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(database_url, "export-labels", *args)


async def test_export_labels_cli(
    client: httpx.AsyncClient, admin: Key, reader: Key, plant: Plant, settings: Settings, tmp_path: Path
) -> None:
    task_id, alert_id = await task_from_agent(settings, plant, anomalies=2)
    done = await client.post(
        f"{TASKS}/{task_id}/complete",
        json={"outcome": "no_fault_found", "technician": "eve", "notes": "sensor loose, re-mounted"},
        headers=admin.headers,
    )
    assert done.status_code == 200
    [api_label] = (
        await client.get(LABELS, params={"sensor_id": plant.sensor_ids[0]}, headers=reader.headers)
    ).json()["items"]

    output = tmp_path / "out" / "labels.csv"
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    result = export_labels(settings.database_url, "--output", str(output), "--since", since)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(output.open(newline="", encoding="utf-8")))
    [row] = [r for r in rows if r["task_id"] == str(task_id)]
    assert list(row) == list(api_label)  # same columns, same order
    assert (row["alert_id"], row["sensor_id"], row["asset_id"]) == (
        str(alert_id),
        plant.sensor_ids[0],
        str(plant.asset_id),
    )
    assert (row["outcome"], row["technician"], row["notes"], row["anomaly_count"]) == (
        "no_fault_found",
        "eve",
        "sensor loose, re-mounted",
        "2",
    )
    for column in ("completed_at", "alert_opened_at", "alert_resolved_at", "first_anomaly_at"):
        assert datetime.fromisoformat(row[column]) == datetime.fromisoformat(api_label[column])

    # stdout, and --since after the completion exports only the header
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    empty = export_labels(settings.database_url, "--since", later)
    assert empty.returncode == 0, empty.stderr
    assert list(csv.reader(io.StringIO(empty.stdout))) == [list(api_label)]
    bad = export_labels(settings.database_url, "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
