"""The ``operate`` scope (a technician's key): acknowledge and resolve alerts, assign and complete work orders —
nothing else; ``admin`` still does all of it; ``read`` and ``ingest`` keys get 403 there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from core.auth.keys import OPERATE
from core.config import Settings
from tests.api.auth_support import Key, create_key, serve_app
from tests.api.test_auth import EXEMPT, app_routes, concrete
from tests.support.maintenance import Plant, connect, make_alert, make_plant

TASKS = "/api/v1/maintenance/tasks"
ALERTS = "/api/v1/alerts"

#: The technician's routes: exactly these need ``operate``.
OPERATE_ROUTES = {
    ("POST", "/api/v1/alerts/{alert_id}/ack"),
    ("POST", "/api/v1/alerts/{alert_id}/resolve"),
    ("POST", "/api/v1/maintenance/tasks/{task_id}/assign"),
    ("POST", "/api/v1/maintenance/tasks/{task_id}/complete"),
}


async def test_an_operate_key_passes_authorisation_on_exactly_the_technician_routes(
    settings: Settings,
) -> None:
    """Every route of the OpenAPI document, with ids that do not exist (nothing changes): an ``operate`` key
    gets 403 everywhere but on the four technician routes."""
    async with serve_app(settings) as (app, client):
        key = await create_key(client, settings, OPERATE)
        passed = set()
        for method, path in await app_routes(app, client):
            if EXEMPT.match(path) or not path.startswith("/api/"):  # anonymous: health, metrics, API docs
                continue
            response = await client.request(method, concrete(path), headers=key.headers)
            assert response.status_code != 401, (method, path, response.text)
            if response.status_code != 403:
                passed.add((method, path))
    assert passed == OPERATE_ROUTES


@dataclass
class Keys:
    client: httpx.AsyncClient
    operator: Key
    admin: Key
    reader: Key
    ingester: Key


@pytest.fixture
async def keys(settings: Settings) -> AsyncIterator[Keys]:
    async with serve_app(settings) as (_, client):
        yield Keys(
            client,
            operator=await create_key(client, settings, "operate"),
            admin=await create_key(client, settings, "admin"),
            reader=await create_key(client, settings, "read"),
            ingester=await create_key(client, settings, "ingest"),
        )


@pytest.fixture
async def plant(settings: Settings) -> Plant:
    async with connect(settings) as conn:
        return await make_plant(conn)


async def new_alert(settings: Settings, sensor_id: str) -> int:
    async with connect(settings) as conn:
        return (await make_alert(conn, sensor_id)).alert_id


async def new_task(keys: Keys, sensor_id: str) -> int:
    created = await keys.client.post(
        TASKS, json={"title": "replace bearing", "sensor_id": sensor_id}, headers=keys.admin.headers
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def test_an_operate_key_acknowledges_resolves_assigns_and_completes(
    keys: Keys, plant: Plant, settings: Settings
) -> None:
    c, op = keys.client, keys.operator.headers
    alert_id = await new_alert(settings, plant.sensor_ids[0])
    acked = await c.post(f"{ALERTS}/{alert_id}/ack", json={"comment": "on my way"}, headers=op)
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["events"][-1]["actor"] == keys.operator.name  # the technician's key is the actor
    resolved = await c.post(f"{ALERTS}/{alert_id}/resolve", headers=op)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"

    task_id = await new_task(keys, plant.sensor_ids[1])
    assigned = await c.post(f"{TASKS}/{task_id}/assign", json={"assignee": "carla"}, headers=op)
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "carla"
    done = await c.post(
        f"{TASKS}/{task_id}/complete",
        json={"outcome": "fault_confirmed", "technician": "carla", "notes": "bearing worn"},
        headers=op,
    )
    assert done.status_code == 200, done.text
    assert done.json()["task"]["status"] == "done"


async def test_an_operate_key_does_nothing_else(keys: Keys, plant: Plant) -> None:
    c, op = keys.client, keys.operator.headers
    task_id = await new_task(keys, plant.sensor_ids[0])
    refused = [
        ("GET", ALERTS, None),  # operate does not imply read
        ("GET", TASKS, None),
        ("POST", TASKS, {"title": "x", "sensor_id": plant.sensor_ids[0]}),
        ("PATCH", f"{TASKS}/{task_id}", {"status": "cancelled"}),
        ("POST", "/api/v1/admin/api-keys", {"name": "escalate", "scopes": ["admin"]}),
        ("GET", "/api/v1/admin/api-keys", None),
        ("POST", "/api/v1/data/ingest", [{"sensor_id": plant.sensor_ids[0], "value": 1.0,
                                          "timestamp": "2026-01-01T00:00:00Z"}]),
    ]  # fmt: skip
    for method, url, body in refused:
        response = await c.request(method, url, json=body, headers=op)
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["type"].endswith("/forbidden")


async def test_read_and_ingest_keys_cannot_operate_and_admin_still_can(
    keys: Keys, plant: Plant, settings: Settings
) -> None:
    c = keys.client
    alert_id = await new_alert(settings, plant.sensor_ids[0])
    task_id = await new_task(keys, plant.sensor_ids[1])
    writes = [
        (f"{ALERTS}/{alert_id}/ack", None),
        (f"{TASKS}/{task_id}/assign", {"assignee": "x"}),
        (f"{TASKS}/{task_id}/complete", {"outcome": "no_fault_found", "technician": "x"}),
        (f"{ALERTS}/{alert_id}/resolve", None),
    ]
    for key in (keys.reader, keys.ingester):
        for url, body in writes:
            response = await c.post(url, json=body, headers=key.headers)
            assert response.status_code == 403, (key.name, url, response.text)
            assert "'operate'" in response.json()["detail"]
    for url, body in writes:  # in this order: complete resolves the task's alert (none here), resolve last
        response = await c.post(url, json=body, headers=keys.admin.headers)
        assert response.status_code == 200, (url, response.text)
