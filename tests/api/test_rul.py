"""``GET /api/v1/assets/{id}/rul`` on the test database through the ASGI app, with a real RulModel (fitted on a
synthetic fleet) served from an in-memory registry; and the scheduling rule: a work order is due by the earlier of
the severity's date and the RUL interval's lower bound."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import asyncpg
import httpx
import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apps.api.deps import app_runtime
from core.config import Settings
from core.maintenance.rul_due import NoRulBound
from core.maintenance.scheduling import SchedulingService
from core.ml.registry.memory import InMemoryRegistry
from core.ml.registry.port import CHAMPION
from core.ml.rul.data import INFORMATIVE
from core.ml.rul.due import RulDueDates
from core.ml.rul.model import RulModel, predict_last
from core.ml.rul.study import RulConfig, fit_model
from core.ml.serving.loader import ModelServer
from core.runtime.handlers import scheduling_handler
from tests.api.auth_support import bootstrap_headers, serve_app
from tests.ml.rul.support import synthetic_fleet
from tests.support.db import session_factory_for
from tests.support.maintenance import connect, make_alert, tasks_for_alert

T0 = datetime(2026, 6, 1, tzinfo=UTC)
CYCLE = timedelta(hours=1)


@dataclass(frozen=True)
class World:
    registry: InMemoryRegistry
    model: RulModel
    fleet: pd.DataFrame


@pytest.fixture(scope="module")
def world() -> World:
    fleet = synthetic_fleet(30, seed=11)
    config = RulConfig(n_estimators=40, calibration_cuts=10, n_jobs=1)
    model = fit_model(fleet, list(range(1, 21)), list(range(21, 29)), config, seed=0)
    registry = InMemoryRegistry()
    version = registry.register("rul_turbofan", model)
    registry.set_alias("rul_turbofan", CHAMPION, version)
    return World(registry, model, fleet)


@pytest.fixture(scope="module")
async def client(settings: Settings, world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings) as (app, http):
        app_runtime(app).models.registry = world.registry
        http.headers.update(bootstrap_headers(settings))
        yield http


async def make_asset(
    conn: asyncpg.Connection, kind: str | None, channels: tuple[str, ...], trajectory: pd.DataFrame | None
) -> tuple[int, dict[str, str]]:
    """An asset with one sensor per channel (type = channel name, upper/lower case mixed) and the trajectory's
    readings, one cycle per hour from T0."""
    tag = uuid.uuid4().hex[:8]
    asset_id = await conn.fetchval(
        "INSERT INTO assets (name, kind) VALUES ($1, $2) RETURNING id", f"engine-{tag}", kind
    )
    sensors = {c: f"eng-{tag}-{c}" for c in channels}
    for i, (channel, sensor_id) in enumerate(sensors.items()):
        sensor_type = channel.lower() if i % 2 else channel
        await conn.execute(
            "INSERT INTO sensors (sensor_id, asset_id, type) VALUES ($1, $2, $3)", sensor_id, asset_id, sensor_type
        )
    if trajectory is not None:
        rows = [
            (T0 + CYCLE * (int(cycle) - 1), sensors[c], float(value))
            for cycle, *values in trajectory.loc[:, ["cycle", *channels]].itertuples(index=False)
            for c, value in zip(channels, values, strict=True)
        ]
        await conn.copy_records_to_table("sensor_readings", records=rows, columns=["timestamp", "sensor_id", "value"])
    return asset_id, sensors


def engine(world: World, unit: int, cycles: int) -> pd.DataFrame:
    part = world.fleet[(world.fleet["unit"] == unit) & (world.fleet["cycle"] <= cycles)]
    return part.reset_index(drop=True)


async def test_rul_of_an_asset_from_its_stored_readings(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    trajectory = engine(world, 29, 150)  # longer than the model reads (101 cycles): the cycle count still counts
    async with connect(settings) as conn:
        asset_id, sensors = await make_asset(conn, "Turbofan", INFORMATIVE, trajectory)
        # a timestamp at which one channel is missing is not a cycle
        await conn.execute(
            "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1, $2, 1.0)",
            T0 + CYCLE * 200,
            sensors["T24"],
        )
    response = await client.get(f"/api/v1/assets/{asset_id}/rul")
    assert response.status_code == 200, response.text
    body = response.json()
    expected = predict_last(world.model, trajectory).iloc[0]
    assert body["model_name"] == "rul_turbofan" and body["model_version"] == "1"
    assert body["cycles"] == 150
    assert body["rul_cycles"] == pytest.approx(expected["rul"])
    assert body["rul_lower_cycles"] == pytest.approx(expected["rul_lower"])
    assert body["rul_upper_cycles"] == pytest.approx(expected["rul_upper"])
    assert body["rul_lower_cycles"] <= body["rul_cycles"] <= body["rul_upper_cycles"]
    assert body["interval"] == pytest.approx(0.9)
    assert datetime.fromisoformat(body["last_cycle_at"]) == T0 + CYCLE * 149
    assert body["cycle_seconds"] == 3600.0
    lower_at = datetime.fromisoformat(body["lower_bound_at"])
    assert lower_at == T0 + CYCLE * 149 + timedelta(hours=body["rul_lower_cycles"])
    assert body["channels"] == sensors


async def test_rul_problems(client: httpx.AsyncClient, settings: Settings, world: World) -> None:
    async with connect(settings) as conn:
        no_kind, _ = await make_asset(conn, None, INFORMATIVE, engine(world, 29, 30))
        missing, _ = await make_asset(conn, "turbofan", INFORMATIVE[:-2], engine(world, 29, 30))
        short, _ = await make_asset(conn, "turbofan", INFORMATIVE, engine(world, 29, 5))
        pump, _ = await make_asset(conn, "pump", INFORMATIVE, engine(world, 29, 30))

    async def problem(url: str, status: int, text: str) -> None:
        response = await client.get(url)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert text in response.json()["detail"], response.json()

    await problem("/api/v1/assets/987654321/rul", 404, "asset 987654321 does not exist")
    await problem(f"/api/v1/assets/{no_kind}/rul", 409, "has no kind")
    await problem(f"/api/v1/assets/{missing}/rul", 409, "no sensor of type W31, W32")
    await problem(f"/api/v1/assets/{short}/rul", 409, "has 5 complete cycle(s)")
    assert (await client.get(f"/api/v1/assets/{pump}/rul")).status_code == 404  # no rul_pump model
    named = await client.get(f"/api/v1/assets/{pump}/rul", params={"model": "rul_turbofan"})
    assert named.status_code == 200 and named.json()["cycles"] == 30
    assert (await client.get(f"/api/v1/assets/{pump}/rul", params={"model": "anomaly_x"})).status_code == 422


@pytest.fixture
async def factory(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with session_factory_for(settings, pool_size=2) as factory:
        yield factory


async def test_work_order_due_by_the_rul_lower_bound_when_earlier(
    settings: Settings, world: World, factory: async_sessionmaker[AsyncSession]
) -> None:
    """Through the scheduling agent as the runtime builds it (``core.runtime.handlers``): the RUL source is injected
    on the runtime's model server."""
    registry = world.registry
    runtime = SimpleNamespace(settings=settings, session_factory=factory, models=ModelServer(registry))
    handler = scheduling_handler(runtime)  # type: ignore[arg-type]
    assert isinstance(handler._rul, RulDueDates)
    trajectory = engine(world, 30, 120)
    async with connect(settings) as conn:
        asset_id, sensors = await make_asset(conn, "turbofan", INFORMATIVE, trajectory)
        last_cycle = T0 + CYCLE * 119
        late = await make_alert(conn, sensors["T30"], severity="critical", opened_at=last_cycle + timedelta(days=30))
        early = await make_alert(conn, sensors["T50"], rule="t50_max", severity="critical", opened_at=last_cycle)
        pump_id = await conn.fetchval(
            "INSERT INTO assets (name, kind) VALUES ($1, 'pump') RETURNING id", uuid.uuid4().hex
        )
        await conn.execute(
            "INSERT INTO sensors (sensor_id, asset_id, type) VALUES ($1, $2, 'vibration')", f"p-{pump_id}", pump_id
        )
        pump_alert = await make_alert(conn, f"p-{pump_id}", severity="critical")
    lower = predict_last(world.model, trajectory).iloc[0]["rul_lower"]
    bound = last_cycle + timedelta(hours=float(lower))
    assert last_cycle + timedelta(hours=4) < bound < last_cycle + timedelta(days=30)

    loads_before = sum(1 for c in registry.calls if c[0] == "load")
    for event in (late, early, pump_alert):
        await handler(event)
    async with connect(settings) as conn:
        [by_rul] = await tasks_for_alert(conn, late.alert_id)
        [by_severity] = await tasks_for_alert(conn, early.alert_id)
        [pump_task] = await tasks_for_alert(conn, pump_alert.alert_id)
    assert abs(by_rul["due_at"] - bound) < timedelta(seconds=1)  # 30 days after the cycle: the RUL bound is earlier
    assert "RUL interval's lower bound" in by_rul["description"]
    assert by_severity["due_at"] == last_cycle + timedelta(hours=4)  # the severity's 4 h come first
    assert "RUL" not in by_severity["description"]
    assert pump_task["due_at"] is not None
    loads = sum(1 for c in registry.calls if c[0] == "load")
    assert loads == loads_before + 1  # one model load; the second alert on the asset used the cached estimate
    assert all(str(pump_id) not in " ".join(c) for c in registry.calls)


async def test_scheduling_without_a_rul_source_is_due_by_severity(
    settings: Settings, world: World, factory: async_sessionmaker[AsyncSession]
) -> None:
    """SchedulingService without an injected source (NoRulBound): the severity's due date, no registry call."""
    trajectory = engine(world, 31, 120)
    async with connect(settings) as conn:
        _asset_id, sensors = await make_asset(conn, "turbofan", INFORMATIVE, trajectory)
        last_cycle = T0 + CYCLE * 119
        alert = await make_alert(conn, sensors["T30"], severity="critical", opened_at=last_cycle + timedelta(days=30))
    calls = len(world.registry.calls)
    async with factory() as session, session.begin():
        service = SchedulingService(session)
        assert isinstance(service._rul, NoRulBound)
        await service.open_for_alert(alert)
    async with connect(settings) as conn:
        [task] = await tasks_for_alert(conn, alert.alert_id)
    assert task["due_at"] == last_cycle + timedelta(days=30, hours=4)
    assert "RUL" not in task["description"] and len(world.registry.calls) == calls
