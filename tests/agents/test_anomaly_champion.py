"""The anomaly agent scores with the sensor type's champion model from a real MLflow registry (sqlite store)
and follows the alias when it moves (refresh called directly, no sleeps)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.support.events are redefined as parameters)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.observability.metrics import REGISTRY
from tests.agents.anomaly_support import add_readings, add_sensor, agent_for, anomalies, anomaly_events, sensor_id
from tests.support.events import (  # noqa: F401  (fixtures)
    events_database_url,
    events_db,
    events_settings,
    session_factory,
)

mlflow = pytest.importorskip("mlflow")
from mlflow.pyfunc import PythonModel  # noqa: E402  (after importorskip)

NAME = "anomaly_temperature"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class AbsZModel(PythonModel):  # type: ignore[misc]
    """|value − mean| / sd with fixed parameters; anomalous from 3."""

    def __init__(self, mean: float, sd: float) -> None:
        self.mean = mean
        self.sd = sd

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        assert list(model_input.columns) == ["sensor_id", "timestamp", "value"]
        assert str(model_input["timestamp"].dtype) == "datetime64[ns, UTC]"
        score = (model_input["value"] - self.mean).abs() / self.sd
        return pd.DataFrame({"score": score, "is_anomaly": score >= 3.0})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any, Path]:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    client.create_registered_model(NAME)
    return uri, client, root


def register_version(registry: tuple[str, Any, Path], mean: float, sd: float) -> str:
    _, client, root = registry
    path = root / f"model-{mean}-{sd}"
    mlflow.pyfunc.save_model(str(path), python_model=AbsZModel(mean, sd), pip_requirements=["pandas"])
    return str(client.create_model_version(NAME, source=str(path)).version)


async def test_champion_model_is_used_and_reloaded_when_the_alias_moves(
    registry: tuple[str, Any, Path],
    events_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    events_db: asyncpg.Connection,
) -> None:
    uri, client, _ = registry
    v1 = register_version(registry, mean=20.0, sd=1.0)
    client.set_registered_model_alias(NAME, "champion", v1)
    settings = events_settings.model_copy(
        update={"mlflow_tracking_uri": uri, "anomaly_model_timeout_s": 60.0}
    )
    agent = agent_for(settings, session_factory)
    loads: list[tuple[str, str]] = []
    load = agent.champions.registry.load

    def counting_load(name: str, version: str) -> Any:
        loads.append((name, version))
        return load(name, version)

    agent.champions.registry.load = counting_load  # type: ignore[method-assign]

    sensor = sensor_id()
    await add_sensor(events_db, sensor, "temperature")
    first = await add_readings(events_db, sensor, [20.5, 24.0, 19.0])  # no warm-up with a model
    await agent(first)
    rows = await anomalies(events_db, sensor)
    assert [(r["value"], r["score"], r["method"], r["model_name"], r["model_version"]) for r in rows] == [
        (24.0, 4.0, "model", NAME, v1)
    ]
    outbox = await anomaly_events(events_db, sensor)
    assert len(outbox) == 1
    payload = json.loads(outbox[0]["payload"])
    assert (payload["method"], payload["model_name"], payload["model_version"]) == ("model", NAME, v1)

    second = await add_readings(events_db, sensor, [21.0, 22.5], start=3)
    await agent(second)
    assert loads == [(NAME, v1)], "loaded once, then served from the cache"
    assert len(await anomalies(events_db, sensor)) == 1

    # a new version becomes champion: the next refresh loads it, scoring follows
    v2 = register_version(registry, mean=20.0, sd=0.25)
    client.set_registered_model_alias(NAME, "champion", v2)
    await agent(await add_readings(events_db, sensor, [21.0], start=5))
    assert agent.champions.get("temperature").version == v1  # type: ignore[union-attr]
    await agent.refresh_models()
    assert agent.champions.get("temperature").version == v2  # type: ignore[union-attr]
    assert loads == [(NAME, v1), (NAME, v2)]
    await agent(await add_readings(events_db, sensor, [21.0], start=6))
    newest = (await anomalies(events_db, sensor))[-1]
    assert (newest["value"], newest["score"], newest["model_version"]) == (21.0, 4.0, v2)

    # the alias is removed: back to the baseline (robust_z), quietly
    client.delete_registered_model_alias(NAME, "champion")
    await agent.refresh_models()
    assert agent.champions.get("temperature") is None
    baseline_scored = metric("sm_anomaly_readings_scored_total", method="robust_z")
    await agent(await add_readings(events_db, sensor, [21.0], start=7))
    assert metric("sm_anomaly_readings_scored_total", method="robust_z") == baseline_scored + 1
    assert len(await anomalies(events_db, sensor)) == 2  # 21.0 is normal for the baseline


async def test_unreachable_mlflow_falls_back_to_the_baseline(
    events_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    events_db: asyncpg.Connection,
) -> None:
    agent = agent_for(events_settings, session_factory)  # MLflow on a closed port
    sensor = sensor_id()
    await add_sensor(events_db, sensor, "temperature")
    await agent(await add_readings(events_db, sensor, [20.0, 21.0]))
    assert agent.champions.get("temperature") is None
    assert "temperature" in agent.champions.known_types()
    await agent.refresh_models()  # still unreachable: no error


class JumpModel(PythonModel):  # type: ignore[misc]
    """|value − previous value of the same sensor| (0 for a sensor's first row in the frame); anomalous from 3.
    It keeps no state, so it can only see a jump at the start of a batch through the context rows."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        jump = model_input.groupby("sensor_id", sort=False)["value"].diff().abs().fillna(0.0)
        return pd.DataFrame({"score": jump, "is_anomaly": jump >= 3.0})


@pytest.mark.parametrize(("context", "flagged"), [(32, [(30.0, 10.0)]), (0, [])])
async def test_champion_sees_each_sensors_history_before_the_batch(
    context: int,
    flagged: list[tuple[float, float]],
    tmp_path: Path,
    events_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    events_db: asyncpg.Connection,
) -> None:
    name = "anomaly_pressure"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    client.create_registered_model(name)
    mlflow.pyfunc.save_model(str(tmp_path / "jump"), python_model=JumpModel(), pip_requirements=["pandas"])
    version = client.create_model_version(name, source=str(tmp_path / "jump")).version
    client.set_registered_model_alias(name, "champion", version)
    settings = events_settings.model_copy(
        update={"mlflow_tracking_uri": uri, "anomaly_model_timeout_s": 60.0, "anomaly_model_context": context}
    )
    agent = agent_for(settings, session_factory)
    sensor = sensor_id()
    await add_sensor(events_db, sensor, "pressure")
    await add_readings(events_db, sensor, [20.0, 20.1, 20.0])  # stored before, never delivered to the agent
    await agent(await add_readings(events_db, sensor, [30.0, 30.1], start=3))  # the jump opens the batch
    rows = await anomalies(events_db, sensor)
    assert [(r["value"], round(r["score"], 6)) for r in rows] == flagged
    assert all(r["method"] == "model" for r in rows)
