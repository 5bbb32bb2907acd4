"""/api/v1/ml against a real ``mlflow server`` on a temporary store and the test database, through the ASGI app.

Registered in the server: ``anomaly_temperature`` (champion) and ``forecast_temperature`` (champion) following
the model contracts, ``forecast_pressure`` without any alias, and ``forecast_vibration`` (champion): the project's
own forecast pyfunc with an interval calibration and its measured test coverage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import pytest

from apps.api.deps import app_runtime
from core.config import Settings
from tests.api.conftest import CLOSED_HTTP_URL, ClientFactory
from tests.support.mlflow_server import (  # noqa: F401 - fixture
    CenterScaleAnomalyModel,
    NaiveForecastModel,
    mlflow_server_url,
    register_contract_model,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
N = 36 * 12  # 36 h of 5-minute readings
TEMP, PRESSURE, HUMIDITY, VIBRATION = "ml-temp-1", "ml-pres-1", "ml-hum-1", "ml-vib-1"
CALIBRATION_SCORES = tuple(float(s) for s in np.linspace(-0.3, 0.9, 40))
TEST_COVERAGE = {"0.5": 0.47, "0.8": 0.83, "0.9": 0.88}


def _register_calibrated_forecast(tracking_uri: str) -> str:
    """``forecast_vibration``: core.ml.forecast.pyfunc.ForecastModel (seasonal naive) with a calibration, logged
    and registered the way training does (core.ml.forecast.training), alias champion."""
    import mlflow
    import pandas as pd

    from core.ml.forecast.conformal import IntervalCalibration
    from core.ml.forecast.pyfunc import ForecastModel, input_example, log_forecast_model
    from core.ml.registry.uris import fluent_uri

    calibration = IntervalCalibration.pooled(0.8, CALIBRATION_SCORES)
    model = ForecastModel(
        "naive", {}, STEP.total_seconds(), "vibration", calibration=calibration, test_coverage=TEST_COVERAGE
    )
    times = pd.date_range(T0, periods=300, freq=STEP, tz="UTC")
    history = pd.DataFrame({"sensor_id": VIBRATION, "timestamp": times, "value": np.linspace(1.0, 2.0, 300)})
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("serving-tests")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("serving-tests")
    with fluent_uri(tracking_uri), mlflow.start_run(experiment_id=experiment_id):
        info = log_forecast_model(model, input_example(history, 300), registered_model_name="forecast_vibration")
    version = str(info.registered_model_version)
    client.set_registered_model_alias("forecast_vibration", "champion", version)
    return version


@pytest.fixture(scope="module")
def registered(mlflow_server_url: str) -> dict[str, str]:  # noqa: F811
    return {
        "anomaly": register_contract_model(
            mlflow_server_url,
            "anomaly_temperature",
            CenterScaleAnomalyModel(center=20.0, scale=0.5, threshold=3.0),
            metrics={"f1": 0.8},
            tags={"sm.family": "anomaly", "sm.sensor_type": "temperature"},
        ),
        "forecast": register_contract_model(
            mlflow_server_url,
            "forecast_temperature",
            NaiveForecastModel(),
            params={"horizon": 24, "interval": 0.8},
            metrics={"mae": 0.4},
            tags={"sm.family": "forecast"},
        ),
        "pressure": register_contract_model(
            mlflow_server_url,
            "forecast_pressure",
            NaiveForecastModel(),
            params={"horizon": 24, "interval": 0.8},
            alias=None,
        ),
        "vibration": _register_calibrated_forecast(mlflow_server_url),
    }


async def _seed(database_url: str) -> None:
    rng = np.random.default_rng(11)
    temp = rng.normal(20.0, 0.5, N)
    temp[-72:] += 3.0  # the last 6 hours drift
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM sensors WHERE sensor_id LIKE 'ml-%'")
        sensors = ((TEMP, "temperature"), (PRESSURE, "pressure"), (HUMIDITY, "humidity"), (VIBRATION, "vibration"))
        for sensor_id, type_ in sensors:
            await conn.execute("INSERT INTO sensors (sensor_id, type) VALUES ($1, $2)", sensor_id, type_)
        rows = [(T0 + i * STEP, TEMP, float(v)) for i, v in enumerate(temp)]
        rows += [(T0 + i * STEP, PRESSURE, 5.0 + 0.01 * i) for i in range(50)]
        vibration = 1.0 + 0.2 * np.sin(np.arange(N) * 2 * np.pi / 288) + rng.normal(0, 0.05, N)
        rows += [(T0 + i * STEP, VIBRATION, float(v)) for i, v in enumerate(vibration)]
        await conn.executemany(
            "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1, $2, $3)", rows
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def seeded(settings: Settings) -> Iterator[None]:
    asyncio.run(_seed(settings.libpq_database_url))
    yield


@pytest.fixture
def ml_settings(settings: Settings, mlflow_server_url: str, registered, seeded) -> Settings:  # noqa: F811
    return settings.model_copy(update={"mlflow_tracking_uri": mlflow_server_url, "ml_alias_ttl_s": 60.0})


def headers(settings: Settings) -> dict[str, str]:
    return {"X-API-Key": settings.api_key.get_secret_value()}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()  # type: ignore[no-any-return]


async def test_models_are_listed_with_aliases_and_metrics(
    api: ClientFactory, ml_settings, registered
) -> None:
    async with api(ml_settings) as client:
        response = await client.get("/api/v1/ml/models", headers=headers(ml_settings))
        assert response.status_code == 200, response.text
        models = {m["name"]: m for m in response.json()["items"]}
        assert models["anomaly_temperature"]["aliases"] == {"champion": registered["anomaly"]}
        [version] = models["anomaly_temperature"]["versions"]
        assert version["metrics"] == {"f1": 0.8} and version["aliases"] == ["champion"]
        assert version["tags"] == {"sm.family": "anomaly", "sm.sensor_type": "temperature"}  # the run's sm.* tags
        assert models["forecast_pressure"]["aliases"] == {}

        one = await client.get("/api/v1/ml/models/forecast_temperature", headers=headers(ml_settings))
        assert one.status_code == 200 and one.json()["versions"][0]["metrics"] == {"mae": 0.4}
        assert problem(await client.get("/api/v1/ml/models/nope", headers=headers(ml_settings)), 404)
        assert (await client.get("/api/v1/ml/models")).status_code == 401


async def test_predict_uses_the_champion_and_caches_it(api: ClientFactory, ml_settings, registered) -> None:
    body = {
        "sensor_type": "temperature",
        "records": [
            {"sensor_id": TEMP, "timestamp": "2026-11-02T00:00:00Z", "value": 20.25},
            {"sensor_id": TEMP, "timestamp": "2026-11-02T00:05:00Z", "value": 22.0},
        ],
    }
    apps: list[Any] = []
    async with api(ml_settings, customize=apps.append) as client:
        response = await client.post("/api/v1/ml/predict", json=body, headers=headers(ml_settings))
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["model_name"], result["version"]) == ("anomaly_temperature", registered["anomaly"])
        assert result["predictions"] == [
            {"score": pytest.approx(0.5), "is_anomaly": False},
            {"score": pytest.approx(4.0), "is_anomaly": True},
        ]
        # cached: with registry calls made impossible, the same request still answers
        server = app_runtime(apps[0]).models

        class NoRegistry:
            def __getattr__(self, operation: str) -> Any:
                raise AssertionError(f"the registry was called ({operation}) for a cached model")

        server.registry = NoRegistry()
        again = await client.post("/api/v1/ml/predict", json=body, headers=headers(ml_settings))
        assert again.status_code == 200 and again.json() == result


async def test_predict_errors(api: ClientFactory, ml_settings) -> None:
    async with api(ml_settings) as client:
        def post(body):
            return client.post("/api/v1/ml/predict", json=body, headers=headers(ml_settings))
        missing = problem(
            await post(
                {
                    "model_name": "anomaly_temperature",
                    "records": [{"sensor_id": TEMP, "timestamp": "2026-11-02T00:00:00Z"}],
                }
            ),
            422,
        )
        assert missing["missing_columns"] == ["value"]
        assert "value" in missing["detail"]
        assert problem(await post({"model_name": "no_such_model", "records": [{"value": 1.0}]}), 404)[
            "type"
        ].endswith("model-not-found")
        no_alias = problem(await post({"model_name": "forecast_pressure", "records": [{"value": 1.0}]}), 409)
        assert "champion" in no_alias["detail"]
        assert problem(
            await post({"model_name": "anomaly_temperature", "version": "99", "records": [{"value": 1}]}), 404
        )
        assert problem(await post({"records": [{"value": 1.0}]}), 422)  # neither model_name nor sensor_type


async def test_forecast_returns_points_with_intervals(api: ClientFactory, ml_settings, registered) -> None:
    async with api(ml_settings) as client:
        def post(body):
            return client.post("/api/v1/ml/forecast", json=body, headers=headers(ml_settings))
        response = await post({"sensor_id": TEMP, "horizon": 6, "interval": 0.9})
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["model_name"], result["version"]) == ("forecast_temperature", registered["forecast"])
        assert result["history_points"] == N
        points = result["points"]
        assert len(points) == 6
        last = T0 + (N - 1) * STEP
        assert [datetime.fromisoformat(p["timestamp"]) for p in points] == [
            last + k * STEP for k in range(1, 7)
        ]
        assert all(p["yhat_lower"] < p["yhat"] < p["yhat_upper"] for p in points)
        widths = [p["yhat_upper"] - p["yhat_lower"] for p in points]
        assert widths == sorted(widths)  # the interval widens with the horizon

        # a contract model without calibration metadata: served as is, and the answer says nothing was measured
        assert result["coverage"] == {"nominal": 0.9, "calibrated": False, "test_coverage": None,
                                      "calibration_points": None, "measured": {}}  # fmt: skip

        assert problem(await post({"sensor_id": "ml-unknown", "horizon": 3}), 404)
        assert problem(await post({"sensor_id": HUMIDITY, "horizon": 3}), 404)  # no forecast_humidity
        assert problem(await post({"sensor_id": PRESSURE, "horizon": 3}), 409)  # no champion alias
        assert problem(await post({"sensor_id": TEMP, "horizon": 0}), 422)


async def test_forecast_reports_the_coverage_its_calibrated_interval_reached(
    api: ClientFactory, ml_settings, registered
) -> None:
    async with api(ml_settings) as client:
        def post(body):
            return client.post("/api/v1/ml/forecast", json=body, headers=headers(ml_settings))
        response = await post({"sensor_id": VIBRATION, "horizon": 12})
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["model_name"], result["version"]) == ("forecast_vibration", registered["vibration"])
        assert result["coverage"] == {"nominal": 0.8, "calibrated": True, "test_coverage": 0.83,
                                      "calibration_points": 40, "measured": TEST_COVERAGE}  # fmt: skip
        wide = (await post({"sensor_id": VIBRATION, "horizon": 12, "interval": 0.9})).json()
        assert wide["coverage"]["test_coverage"] == 0.88
        assert all(w["yhat_upper"] - w["yhat_lower"] > p["yhat_upper"] - p["yhat_lower"]
                   for w, p in zip(wide["points"], result["points"], strict=True))  # fmt: skip
        unmeasured = (await post({"sensor_id": VIBRATION, "horizon": 3, "interval": 0.7})).json()["coverage"]
        assert unmeasured["calibrated"] and unmeasured["test_coverage"] is None
        # 40 scores calibrate up to 40/41 ≈ 97.6 %: beyond that the model refuses rather than guess
        refused = problem(await post({"sensor_id": VIBRATION, "horizon": 3, "interval": 0.99}), 422)
        assert "calibration scores" in refused["detail"]


async def test_detect_anomaly_with_the_model_and_with_the_baseline(api: ClientFactory, ml_settings) -> None:
    readings = [
        {"timestamp": "2026-11-02T06:05:00Z", "value": 27.0},
        {"timestamp": "2026-11-02T06:00:00Z", "value": 20.0},
    ]
    async with api(ml_settings) as client:
        def post(body):
            return client.post("/api/v1/ml/detect_anomaly", json=body, headers=headers(ml_settings))
        by_model = await post({"sensor_id": TEMP, "readings": readings})
        assert by_model.status_code == 200, by_model.text
        result = by_model.json()
        assert (result["method"], result["model_name"], result["note"]) == (
            "model",
            "anomaly_temperature",
            None,
        )
        assert [s["value"] for s in result["scores"]] == [27.0, 20.0]  # request order kept
        assert [s["score"] for s in result["scores"]] == [pytest.approx(14.0), pytest.approx(0.0)]
        assert [s["is_anomaly"] for s in result["scores"]] == [True, False]

        # pressure has no anomaly model: the baseline, seeded with the sensor's 50 stored readings (5.00 … 5.49,
        # every 5 minutes until 04:05)
        baseline = await post(
            {"sensor_id": PRESSURE, "readings": [{"timestamp": "2026-11-01T04:10:00Z", "value": 9.0}]}
        )
        assert baseline.status_code == 200, baseline.text
        result = baseline.json()
        assert result["method"] == "robust_z" and result["model_name"] is None
        assert "anomaly_pressure" in result["note"]
        [score] = result["scores"]
        assert score["is_anomaly"] and not score["warming_up"] and score["score"] > 6.0
        # 20 h later: a regime gap (> 20 intervals and > 1 h) restarts the baseline, so the reading warms up
        later = await post(
            {"sensor_id": PRESSURE, "readings": [{"timestamp": "2026-11-02T00:00:00Z", "value": 9.0}]}
        )
        [score] = later.json()["scores"]
        assert score["warming_up"] and not score["is_anomaly"]

        assert problem(await post({"sensor_id": "ml-unknown", "readings": readings}), 404)
        assert problem(await post({"readings": readings}), 422)


async def test_mlflow_unreachable(api: ClientFactory, ml_settings) -> None:
    offline = ml_settings.model_copy(update={"mlflow_tracking_uri": CLOSED_HTTP_URL})
    async with api(offline) as client:
        listing = problem(await client.get("/api/v1/ml/models", headers=headers(offline)), 503)
        assert "unreachable" in listing["detail"]
        body = {"model_name": "anomaly_temperature", "records": [{"value": 1.0}]}
        assert problem(await client.post("/api/v1/ml/predict", json=body, headers=headers(offline)), 503)
        scored = await client.post(
            "/api/v1/ml/detect_anomaly",
            json={"sensor_id": TEMP, "readings": [{"timestamp": "2026-11-02T06:05:00Z", "value": 20.0}]},
            headers=headers(offline),
        )
        assert scored.status_code == 200 and scored.json()["method"] == "robust_z"
        assert "unreachable" in scored.json()["note"]


async def test_check_drift_and_drift_status(api: ClientFactory, ml_settings) -> None:
    from core.ml.drift.agent import DriftChecker

    apps: list[Any] = []
    async with api(ml_settings, customize=apps.append) as client:
        def post(body):
            return client.post("/api/v1/ml/check_drift", json=body, headers=headers(ml_settings))
        response = await post({"sensor_ids": [TEMP, PRESSURE]})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["thresholds"]["ks_pvalue"] == ml_settings.drift_ks_pvalue
        by_sensor = {r["sensor_id"]: r for r in result["results"]}
        assert by_sensor[TEMP]["drifted"] is True and by_sensor[TEMP]["recent_count"] == 72
        assert (
            by_sensor[PRESSURE]["drifted"] is None and "not enough readings" in by_sensor[PRESSURE]["skipped"]
        )
        # the 6 h just before the shift against the same hours a day earlier: no drift
        unshifted = await post({"sensor_ids": [TEMP], "end": (T0 + (N - 73) * STEP).isoformat()})
        [r] = unshifted.json()["results"]
        assert (r["drifted"], r["reference_count"], r["recent_count"]) == (False, 72, 72)
        assert problem(await post({"sensor_ids": ["ml-unknown"]}), 404)["unknown_sensor_ids"] == [
            "ml-unknown"
        ]

        runtime = app_runtime(apps[0])
        assert isinstance(runtime.drift_checker, DriftChecker)  # started by the lifespan (the runtime's workers)
        await DriftChecker(runtime.session_factory, ml_settings).run_once()
        status = await client.get(
            "/api/v1/ml/drift", params={"sensor_type": "temperature"}, headers=headers(ml_settings)
        )
        assert status.status_code == 200, status.text
        [item] = [i for i in status.json()["items"] if i["sensor_id"] == TEMP]
        assert item["drifted"] and item["retrain_requested"] and item["recent_count"] == 72


async def test_promote_needs_admin_and_moves_the_alias(api: ClientFactory, ml_settings, registered) -> None:
    from tests.api.auth_support import create_key

    async with api(ml_settings) as client:
        reader = await create_key(client, ml_settings, "read")
        url = "/api/v1/ml/models/forecast_pressure/promote"
        body = {"version": registered["pressure"], "force": True}
        assert problem(await client.post(url, json=body, headers=reader.headers), 403)
        # no champion yet: the pressure forecast is refused, then served once the version is promoted
        forecast = {"sensor_id": PRESSURE, "horizon": 2}
        assert problem(await client.post("/api/v1/ml/forecast", json=forecast, headers=reader.headers), 409)
        response = await client.post(url, json=body, headers=headers(ml_settings))
        assert response.status_code == 200, response.text
        decision = response.json()
        assert decision["promoted"] and decision["candidate_score"] is None
        assert decision["champion_version"] is None
        after = await client.post("/api/v1/ml/forecast", json=forecast, headers=reader.headers)
        assert after.status_code == 200, after.text  # the alias cache was invalidated by the promotion
        assert after.json()["version"] == registered["pressure"]
        unknown = {"version": "1", "force": True}
        assert problem(
            await client.post("/api/v1/ml/models/nope/promote", json=unknown, headers=headers(ml_settings)),
            404,
        )
