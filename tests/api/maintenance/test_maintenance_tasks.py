"""Maintenance tasks API: list/get (read), create/assign/update (admin), filters, pagination, transitions, scopes."""

from __future__ import annotations

from typing import Any

import httpx

from core.config import Settings
from core.observability.metrics import REGISTRY
from tests.api.auth_support import MISSING_ID, Key, create_key
from tests.support.maintenance import Plant, connect, make_alert, outbox_rows

BASE = "/api/v1/maintenance/tasks"


async def create(client: httpx.AsyncClient, key: Key, **body: Any) -> dict[str, Any]:
    response = await client.post(BASE, json=body, headers=key.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def opened_manual(priority: str) -> float:
    labels = {"source": "manual", "priority": priority}
    return REGISTRY.get_sample_value("sm_maintenance_tasks_opened_total", labels) or 0.0


async def test_create_by_hand(
    client: httpx.AsyncClient, admin: Key, plant: Plant, settings: Settings
) -> None:
    before = opened_manual("high")
    task = await create(
        client,
        admin,
        title="Inspect bearings",
        sensor_id=plant.sensor_ids[0],
        priority="high",
        assignee="ann",
    )
    assert task["asset_id"] == plant.asset_id  # from the sensor
    assert (task["status"], task["priority"], task["assignee"]) == ("open", "high", "ann")
    assert opened_manual("high") == before + 1
    async with connect(settings) as conn:
        [row] = await outbox_rows(conn, "MaintenanceTaskCreated", task["id"])
        assert row["payload"]["sensor_id"] == plant.sensor_ids[0]

    got = await client.get(f"{BASE}/{task['id']}", headers=admin.headers)
    assert got.status_code == 200 and got.json() == task


async def test_create_rejects_unknown_references_and_a_second_task_per_alert(
    client: httpx.AsyncClient, admin: Key, plant: Plant, settings: Settings
) -> None:
    unknown_sensor = await client.post(
        BASE, json={"title": "x", "sensor_id": "nope-x"}, headers=admin.headers
    )
    assert unknown_sensor.status_code == 422
    unknown_alert = await client.post(
        BASE, json={"title": "x", "alert_id": MISSING_ID}, headers=admin.headers
    )
    assert unknown_alert.status_code == 422
    invalid = await client.post(BASE, json={"title": "x", "priority": "urgent"}, headers=admin.headers)
    assert invalid.status_code == 422

    async with connect(settings) as conn:
        alert = await make_alert(conn, plant.sensor_ids[0], severity="medium")
    task = await create(client, admin, title="for the alert", alert_id=alert.alert_id)
    assert (task["sensor_id"], task["asset_id"]) == (plant.sensor_ids[0], plant.asset_id)  # from the alert
    again = await client.post(
        BASE, json={"title": "again", "alert_id": alert.alert_id}, headers=admin.headers
    )
    assert again.status_code == 409


async def test_list_filters_sort_and_pagination(
    client: httpx.AsyncClient, admin: Key, reader: Key, plant: Plant
) -> None:
    s0, s1 = plant.sensor_ids
    low = await create(client, admin, title="a", sensor_id=s0, priority="low")
    crit = await create(client, admin, title="b", sensor_id=s0, priority="critical", assignee="bob")
    med = await create(client, admin, title="c", sensor_id=s1, priority="medium")
    moved = await client.patch(f"{BASE}/{med['id']}", json={"status": "in_progress"}, headers=admin.headers)
    assert moved.status_code == 200

    async def ids(**params: Any) -> list[int]:
        response = await client.get(
            BASE, params={"asset_id": plant.asset_id, **params}, headers=reader.headers
        )
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert await ids() == [med["id"], crit["id"], low["id"]]  # newest first
    assert await ids(order="asc") == [low["id"], crit["id"], med["id"]]
    assert await ids(sensor_id=s0) == [crit["id"], low["id"]]
    assert await ids(status="in_progress") == [med["id"]]
    assert await ids(priority="critical") == [crit["id"]]
    assert await ids(assignee="bob") == [crit["id"]]
    assert await ids(sort="priority") == [crit["id"], med["id"], low["id"]]
    assert await ids(sort="priority", order="asc") == [low["id"], med["id"], crit["id"]]

    page = await client.get(
        BASE, params={"asset_id": plant.asset_id, "limit": 2, "offset": 2}, headers=reader.headers
    )
    body = page.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 2)
    assert [t["id"] for t in body["items"]] == [low["id"]]

    bad = await client.get(BASE, params={"status": "waiting"}, headers=reader.headers)
    assert bad.status_code == 422


async def test_status_transitions(client: httpx.AsyncClient, admin: Key, plant: Plant) -> None:
    task = await create(client, admin, title="t", sensor_id=plant.sensor_ids[0])
    url = f"{BASE}/{task['id']}"

    async def patch(**body: Any) -> httpx.Response:
        return await client.patch(url, json=body, headers=admin.headers)

    assert (await patch(status="in_progress")).json()["status"] == "in_progress"
    assert (await patch(status="open")).json()["status"] == "open"
    assert (await patch(status="open", priority="critical")).json()["priority"] == "critical"
    done = await patch(status="done")
    assert done.status_code == 409
    assert "/complete" in done.json()["detail"]
    assert (await patch(status="cancelled")).json()["status"] == "cancelled"
    for status in ("open", "in_progress", "done"):
        assert (await patch(status=status)).status_code == 409
    assert (await patch(priority="low")).status_code == 409  # closed tasks are read-only
    assert (
        await client.patch(f"{BASE}/{MISSING_ID}", json={"status": "open"}, headers=admin.headers)
    ).status_code == 404
    assert (await client.get(f"{BASE}/{MISSING_ID}", headers=admin.headers)).status_code == 404


async def test_assign(client: httpx.AsyncClient, admin: Key, plant: Plant) -> None:
    task = await create(client, admin, title="t", sensor_id=plant.sensor_ids[0])
    assigned = await client.post(
        f"{BASE}/{task['id']}/assign", json={"assignee": "carla"}, headers=admin.headers
    )
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "carla"
    empty = await client.post(f"{BASE}/{task['id']}/assign", json={"assignee": ""}, headers=admin.headers)
    assert empty.status_code == 422
    await client.patch(f"{BASE}/{task['id']}", json={"status": "cancelled"}, headers=admin.headers)
    late = await client.post(f"{BASE}/{task['id']}/assign", json={"assignee": "dan"}, headers=admin.headers)
    assert late.status_code == 409
    missing = await client.post(
        f"{BASE}/{MISSING_ID}/assign", json={"assignee": "dan"}, headers=admin.headers
    )
    assert missing.status_code == 404


async def test_scopes(
    client: httpx.AsyncClient, settings: Settings, admin: Key, reader: Key, plant: Plant
) -> None:
    task = await create(client, admin, title="t", sensor_id=plant.sensor_ids[0])
    ingest = await create_key(client, settings, "ingest")
    tid = task["id"]
    reads = [("GET", BASE, None), ("GET", f"{BASE}/{tid}", None)]
    writes = [
        ("POST", BASE, {"title": "x"}),
        ("POST", f"{BASE}/{tid}/assign", {"assignee": "x"}),
        ("PATCH", f"{BASE}/{tid}", {"status": "in_progress"}),
        ("POST", f"{BASE}/{tid}/complete", {"outcome": "no_fault_found", "technician": "x"}),
    ]
    for method, url, body in reads + writes:
        assert (await client.request(method, url, json=body)).status_code == 401
        assert (await client.request(method, url, json=body, headers=ingest.headers)).status_code == 403
    for method, url, body in reads:
        assert (await client.request(method, url, json=body, headers=reader.headers)).status_code == 200
    for method, url, body in writes:
        assert (await client.request(method, url, json=body, headers=reader.headers)).status_code == 403
    still = await client.get(f"{BASE}/{tid}", headers=reader.headers)
    assert still.json() == task  # nothing changed
