"""The fleet page's "Remaining useful life" panel renders a successful estimate: a real RulModel (fitted on a
synthetic fleet in seconds) registered as the champion of ``rul_uiturbofan`` in the session API's MLflow store, an
asset of kind ``uiTurbofan`` with one sensor per channel and 60 cycles of readings; the panel shows the API's
estimate, its interval and the model version. The shared UI fixture is not touched: this module adds its own model
and asset."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import mlflow
import pytest

from core.config import to_libpq_url
from core.ml.registry.uris import fluent_uri
from core.ml.rul.data import INFORMATIVE
from core.ml.rul.study import RulConfig, fit_model
from tests.ml.rul.support import synthetic_fleet
from tests.ui.conftest import ConsoleApi, open_page

MODEL = "rul_uiturbofan"
CYCLES = 60


def _register(tracking_uri: str) -> str:
    fleet = synthetic_fleet(24, seed=5)
    config = RulConfig(n_estimators=40, calibration_cuts=10, n_jobs=1)
    model = fit_model(fleet, list(range(1, 17)), list(range(17, 24)), config, seed=0)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        with fluent_uri(tracking_uri), mlflow.start_run(experiment_id=_experiment(tracking_uri)):
            info = mlflow.pyfunc.log_model(
                name="model", python_model=model, registered_model_name=MODEL, metadata=model.metadata(),
                pip_requirements=[],
            )  # fmt: skip
    finally:  # the fluent API may export the URI to the environment, where Settings would read it
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    version = str(info.registered_model_version)
    mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        MODEL, "champion", version
    )
    return version


def _experiment(tracking_uri: str) -> str:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("serving-tests")
    return experiment.experiment_id if experiment else client.create_experiment("serving-tests")


async def _asset(database_url: str) -> str:
    """An asset of kind uiTurbofan, one sensor per channel (type = channel), CYCLES hourly cycles up to now."""
    fleet = synthetic_fleet(3, seed=9)
    trajectory = fleet[(fleet["unit"] == 2) & (fleet["cycle"] <= CYCLES)]
    tag = uuid.uuid4().hex[:8]
    name = f"ui-engine-{tag}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=CYCLES)
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        async with conn.transaction():
            asset_id = await conn.fetchval(
                "INSERT INTO assets (name, kind) VALUES ($1, 'uiTurbofan') RETURNING id", name
            )
            sensors = {c: f"ui-eng-{tag}-{c}" for c in INFORMATIVE}
            for channel, sensor_id in sensors.items():
                await conn.execute(
                    "INSERT INTO sensors (sensor_id, asset_id, type) VALUES ($1, $2, $3)", sensor_id, asset_id, channel
                )
            rows = [
                (start + timedelta(hours=int(cycle)), sensors[c], float(value))
                for cycle, *values in trajectory.loc[:, ["cycle", *INFORMATIVE]].itertuples(index=False)
                for c, value in zip(INFORMATIVE, values, strict=True)
            ]
            await conn.copy_records_to_table(
                "sensor_readings", records=rows, columns=["timestamp", "sensor_id", "value"]
            )
    finally:
        await conn.close()
    return name


@pytest.fixture(scope="module")
def rul_asset(console_api: ConsoleApi) -> tuple[str, str]:
    """``(asset name, model version)``."""
    version = _register(console_api.settings.mlflow_tracking_uri)
    return asyncio.run(_asset(console_api.settings.database_url)), version


def test_fleet_page_renders_a_rul_estimate(console: ConsoleApi, rul_asset: tuple[str, str]) -> None:
    name, version = rul_asset
    [asset] = [a for a in console.get("/api/v1/assets", limit=500)["items"] if a["name"] == name]
    expected = console.get(f"/api/v1/assets/{asset['id']}/rul")
    assert expected["model_name"] == MODEL and str(expected["model_version"]) == version
    assert expected["cycles"] == CYCLES

    at = open_page("views/fleet.py")
    [select] = [s for s in at.selectbox if s.key == "fleet_rul_asset"]
    select.set_value(next(o for o in select.options if o.startswith(f"{name} ("))).run()
    assert not at.exception, [e.message for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["RUL (cycles)"] == f"{expected['rul_cycles']:.0f}"
    lower, upper = expected["rul_lower_cycles"], expected["rul_upper_cycles"]
    assert lower <= expected["rul_cycles"] <= upper and upper > lower
    assert metrics["90% interval"] == f"{lower:.0f} – {upper:.0f}"
    assert metrics["cycles observed"] == str(CYCLES)
    assert metrics["model"] == f"{MODEL} v{version}"
    assert any("As of the last complete cycle" in c.value for c in at.caption)
    assert not at.warning and not [i for i in at.info if "No RUL estimate" in str(i.value)]
