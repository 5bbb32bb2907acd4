"""core.ml.anomaly_*: threshold choice on validation, metrics, the stateless scorer's warm-up path, and a trained
model registered in MLflow (temp sqlite store) that the anomaly agent's loader scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ml.anomaly import evaluation as ev
from core.ml.anomaly.models import sensor_type_of
from core.ml.anomaly.run import run_training
from core.ml.anomaly.training import TrainConfig, train_type

START = pd.Timestamp("2026-10-30T00:00:00Z")


def _fleet(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two temperature sensors, 5-minute readings; faults of s-a: a +12σ spike at the middle (validation part),
    a +6σ step over n/10 readings from 80 % (test part). Returns (readings, faults)."""
    rng = np.random.default_rng(seed)
    spike, step, length = n // 2, int(0.8 * n), n // 10
    times = pd.date_range(START, periods=n, freq="5min", tz="UTC")
    frames = []
    for sensor, level in (("s-a", 50.0), ("s-b", 70.0)):
        value = level + rng.normal(0, 1.0, n)
        if sensor == "s-a":
            value[spike] += 12.0
            value[step : step + length] += 6.0
        frames.append(
            pd.DataFrame(
                {"sensor_id": sensor, "sensor_type": "temperature", "timestamp": times, "value": value}
            )
        )
    faults = pd.DataFrame(
        {
            "sensor_id": ["s-a", "s-a"],
            "kind": ["spike", "step"],
            "started_at": [times[spike], times[step]],
            "ended_at": [times[spike], times[step + length - 1]],
            "magnitude": [12.0, 6.0],
            "description": ["", ""],
        }
    )
    return pd.concat(frames, ignore_index=True), faults


def test_max_f1_threshold_is_the_highest_best_validation_threshold() -> None:
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.85, 0.2])
    y = np.array([0, 0, 1, 1, 0, 0, 0], dtype=bool)
    choice = ev.choose_threshold(scores, y)
    # flag >= 0.8 catches both faults with one false alarm (F1 0.8); >= 0.9 gives F1 2/3
    assert (choice.threshold, choice.rule, choice.validation_positives) == (0.8, "max_f1", 2)
    assert choice.validation_f1 == pytest.approx(0.8)
    tied = ev.choose_threshold(np.array([0.5, 0.9, 0.4]), np.array([0, 1, 0], dtype=bool))
    assert tied.threshold == 0.9  # 0.9 and anything in (0.5, 0.9] give F1 1: the highest is taken


def test_without_faults_the_threshold_is_an_alarm_budget() -> None:
    scores = np.linspace(0, 1, 1001)
    choice = ev.choose_threshold(scores, np.zeros(1001, dtype=bool), alarm_rate=0.01)
    assert choice.rule == "alarm_rate"
    assert choice.threshold == pytest.approx(0.99)
    assert int((scores >= choice.threshold).sum()) == 11


def test_detection_metrics_delay_and_false_alarms() -> None:
    times = pd.date_range(START, periods=10, freq="5min", tz="UTC")
    frame = pd.DataFrame({"sensor_id": ["s"] * 10, "timestamp": times})
    faults = pd.DataFrame({"sensor_id": ["s"], "started_at": [times[4]], "ended_at": [times[7]]})
    faulty = np.zeros(10, dtype=bool)
    faulty[4:8] = True
    flags = np.zeros(10, dtype=bool)
    flags[[1, 2, 6, 7, 9]] = True  # one run of false alarms (1-2), hits at 6 and 7, a false alarm at 9
    m = ev.detection_metrics(frame, flags, faults, is_faulty=faulty)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 3, 2)
    assert m["precision"] == pytest.approx(0.4) and m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 2))
    assert (m["events"], m["events_detected"], m["mean_delay_min"]) == (1, 1, 10.0)
    assert m["false_alarms"] == 2


@pytest.fixture(scope="module")
def trained() -> tuple:
    readings, faults = _fleet()
    cuts = ev.split_times(readings["timestamp"])
    result = train_type("temperature", readings, faults, cuts, TrainConfig(n_estimators=50))
    return readings, faults, cuts, result


def test_thresholds_are_chosen_on_validation_and_the_test_fault_is_found(trained: tuple) -> None:
    result = trained[3]
    scores = result.scores
    val = scores["split"].eq("validation").to_numpy()
    # the spike (row 150) lies in validation, the step in test
    assert scores.loc[val & scores["faulty"].to_numpy(), "timestamp"].tolist() == [
        START + pd.Timedelta(minutes=750)
    ]
    expected = ev.choose_threshold(scores["forest_score"][val], scores["faulty"][val])
    assert result.scorer.threshold == expected.threshold and result.choices["iforest"].rule == "max_f1"
    # no other validation threshold beats it
    for t in np.unique(scores["forest_score"][val]):
        flagged = scores["forest_score"][val].to_numpy() >= t
        f1 = ev._prf(scores["faulty"][val].to_numpy(), flagged)[2]
        assert f1 <= expected.validation_f1 + 1e-12
    m = result.metrics["iforest"]
    assert m["events"] == 1 and m["events_detected"] == 1
    assert m["recall"] > 0.5
    assert m["faulty_readings"] == 30
    assert set(result.metrics) == {"iforest", "iforest_single", "baseline"}


def test_the_model_is_stateless_with_a_level_only_warm_up(trained: tuple) -> None:
    readings, _, _, result = trained
    scorer = result.scorer
    one = pd.DataFrame(
        {
            "sensor_id": ["s-a", "s-b", "s-b"],
            "timestamp": pd.to_datetime(["2026-11-02T00:00:00Z"] * 2 + ["2026-11-02T00:05:00Z"]),
            "value": [50.3, 70.0 + 40.0, 69.8],  # normal, gross outlier, normal
        }
    )
    out = scorer.predict(one)
    assert list(out.columns) == ["score", "is_anomaly"] and out["score"].dtype == "float64"
    assert out["is_anomaly"].tolist() == [False, True, False]
    # warm-up readings are scored by |z| / point_threshold
    med, scale = scorer.sensor_stats["s-b"]
    assert out["score"].iloc[1] == pytest.approx(abs(110.0 - med) / scale / scorer.point_threshold)
    # the same rows in another order give the same scores, row for row
    shuffled = one.iloc[[2, 0, 1]]
    np.testing.assert_allclose(scorer.predict(shuffled)["score"], out["score"].iloc[[2, 0, 1]])
    # past the warm-up the forest decides: a long normal batch is (almost) never flagged
    batch = readings[readings["sensor_id"] == "s-b"].iloc[:100, [0, 2, 3]].reset_index(drop=True)
    flagged = scorer.predict(batch)["is_anomaly"]
    assert flagged.mean() < 0.1
    assert scorer.predict(batch.iloc[:0]).shape == (0, 2)


def test_the_registry_finds_this_family_rule(trained: tuple) -> None:
    from core.ml.anomaly import promotion as ap
    from core.ml.registry.promotion import resolve_rule

    scorer = trained[3].scorer  # any object with the pyfunc's predict
    rule = resolve_rule("anomaly_temperature")
    assert rule is not None
    assert (rule["metric"], rule["decide"], rule["margin"]) == ("event_recall", ap.decide, 0.0)
    # the project's evaluation data: the test split of data/sensor_data.csv, one temperature fault episode
    candidate, baseline = rule["evaluate"](scorer), rule["serving_baseline"]()
    assert candidate.episodes == baseline.episodes == 1
    assert candidate.sensor_days == baseline.sensor_days
    assert baseline.detector == "robust_z" and rule["baseline_name"] == "baseline robust_z"


def test_sensor_types_from_papermill_strings() -> None:
    from core.ml.anomaly.run import parse_sensor_types

    assert parse_sensor_types("voltage") == ["voltage"]
    assert parse_sensor_types("temperature, voltage") == ["temperature", "voltage"]
    assert parse_sensor_types('["temperature", "voltage"]') == ["temperature", "voltage"]
    assert parse_sensor_types(("humidity",)) == ["humidity"]


def test_model_names() -> None:
    assert sensor_type_of("anomaly_vibration") == "vibration"
    with pytest.raises(ValueError):
        sensor_type_of("forecast_vibration")


@pytest.mark.heavy_ml
def test_training_registers_a_model_the_agent_loads(tmp_path: Path) -> None:
    import mlflow

    from core.anomaly.champion import ALIAS, Champion
    from core.ml.registry.mlflow_registry import MlflowRegistry

    readings, faults = _fleet(n=240, seed=1)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = run_training(
        readings, faults, output_dir=tmp_path / "plots", tracking_uri=uri, config=TrainConfig(n_estimators=30)
    )
    result = run.results["temperature"]
    assert result.version == "1"
    # the fluent MLflow state was restored: nothing leaks into later runs or child processes
    import os

    assert os.environ.get("MLFLOW_REGISTRY_URI") != uri and os.environ.get("MLFLOW_TRACKING_URI") != uri
    client = mlflow.MlflowClient(tracking_uri=uri)
    version = client.get_model_version("anomaly_temperature", "1")
    assert version.tags["sm.family"] == "anomaly" and version.tags["sm.sensor_type"] == "temperature"
    assert float(version.tags["sm.threshold"]) == pytest.approx(result.scorer.threshold)
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["f1"] == pytest.approx(result.metrics["iforest"]["f1"])
    assert {"precision", "recall", "false_alarms", "threshold", "baseline_f1", "iforest_single_f1"} <= set(
        metrics
    )
    # judged against what serves without a champion, the robust_z baseline, by their alerts on the test split:
    # both catch the one test fault without a false alarm, a tie, so the baseline keeps serving
    decision = result.decision
    assert decision.serving == "baseline robust_z" and decision.champion_version is None
    assert (decision.candidate_figures["hits"], decision.candidate_figures["false_alarms"]) == (1.0, 0.0)
    assert (decision.serving_figures["hits"], decision.serving_figures["false_alarms"]) == (1.0, 0.0)
    assert not decision.promoted and "recall equal, false alarms equal" in decision.reason
    aliases = client.get_registered_model("anomaly_temperature").aliases
    assert {alias: str(v) for alias, v in aliases.items()} == {"challenger": "1"}
    assert version.tags["sm.promotion.decision"] == "rejected"
    assert version.tags["sm.promotion.serving"] == "baseline robust_z"
    assert metrics["promotion.promoted"] == 0.0 and metrics["promotion.serving.hits"] == 1.0
    assert list(run.promotion["detector"]) == ["candidate v1", "baseline robust_z"]
    parent = client.get_run(run.run_id)
    assert parent.data.params["sensor_types"] == "temperature"
    child = client.get_run(version.run_id)
    assert child.data.tags["mlflow.parentRunId"] == run.run_id
    assert child.info.experiment_id == parent.info.experiment_id
    assert {Path(p).name for p in run.figures} == {
        "scores_temperature.png",
        "score_distributions.png",
        "precision_recall_threshold.png",
    }

    # the anomaly agent's loader and scoring path, with a batch shaped like the agent's (made champion by an
    # operator, the path that skips the evaluation)
    from core.ml.registry.promotion import force_promote

    force_promote("anomaly_temperature", "1", tracking_uri=uri)
    registry = MlflowRegistry(uri)
    assert registry.alias_version("anomaly_temperature", ALIAS) == "1"
    model = registry.load("anomaly_temperature", "1")
    assert model.metadata.metadata["feature_names"] == result.scorer.feature_names
    batch = readings.loc[readings["sensor_id"] == "s-a", ["sensor_id", "timestamp", "value"]].iloc[230:240]
    batch = batch.reset_index(drop=True).astype({"sensor_id": object})
    batch["timestamp"] = batch["timestamp"].astype("datetime64[ns, UTC]")
    scores, flags = Champion("anomaly_temperature", "1", model).score(batch, threshold=6.0)
    expected = result.scorer.predict(batch)
    np.testing.assert_allclose(scores, expected["score"])
    assert flags.tolist() == expected["is_anomaly"].tolist()
    # the loaded model is what the promotion rule scores, on the series as the agent would see them
    from core.ml.anomaly.promotion import model_flags
    from core.ml.anomaly.run import promotion_data

    flags = model_flags(model, promotion_data(result))
    assert flags.tolist() == model_flags(result.scorer, promotion_data(result)).tolist()
    assert flags.any()


def test_work_order_labels_are_scored_by_the_model_flags(trained: tuple) -> None:
    from core.ml.anomaly.run import score_work_order_labels

    readings, _, _, result = trained
    at = START + pd.Timedelta(hours=21)  # row 252 of s-a lies in its +6σ step; s-b is normal there
    labels = pd.DataFrame(
        {
            "sensor_id": ["s-a", "s-b", None],
            "outcome": ["fault_confirmed", "no_fault_found", "fault_confirmed"],
            "alert_opened_at": [at, at, at],
            "completed_at": [at + pd.Timedelta(hours=1)] * 3,
        }
    )
    table = score_work_order_labels({"temperature": result}, labels, readings=readings)
    row = table.iloc[0]
    assert row["sensor_type"] == "temperature"
    assert (row["labels_confirmed"], row["labels_no_fault"]) == (
        1,
        1,
    )  # the label without a sensor is skipped
    assert row["hit_rate_confirmed"] == 1.0
    flags_b = result.scores.loc[
        (result.scores["sensor_id"] == "s-b")
        & result.scores["timestamp"].between(at - pd.Timedelta(hours=6), at),
        "flag_iforest",
    ]
    assert row["flag_rate_no_fault"] == float(flags_b.any())


def test_labels_and_their_readings_come_from_the_database(settings) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from core.ml.anomaly.models import fit_scorer
    from core.ml.anomaly.run import score_work_order_labels, work_order_labels
    from core.ml.anomaly.training import TypeResult
    from tests.support.maintenance import connect, make_alert, make_plant

    start = pd.Timestamp("2026-11-20T00:00:00Z")
    rng = np.random.default_rng(3)
    values = 2.0 + rng.normal(0, 0.05, 48)
    values[40] = 9.0  # a gross spike 40 minutes before the alert opens

    async def seed() -> str:
        async with connect(settings) as conn:
            plant = await make_plant(conn, sensors=1)
            sensor = plant.sensor_ids[0]
            await conn.executemany(
                "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1, $2, $3)",
                [
                    ((start + pd.Timedelta(minutes=5 * i)).to_pydatetime(), sensor, float(v))
                    for i, v in enumerate(values)
                ],
            )
            alert = await make_alert(conn, sensor, opened_at=(start + pd.Timedelta(hours=4)).to_pydatetime())
            task = await conn.fetchval(
                "INSERT INTO maintenance_tasks (asset_id, sensor_id, alert_id, title, status) "
                "VALUES ($1, $2, $3, 'check', 'done') RETURNING id",
                plant.asset_id,
                sensor,
                alert.alert_id,
            )
            await conn.execute(
                "INSERT INTO maintenance_logs (task_id, outcome) VALUES ($1, 'fault_confirmed')", task
            )
            return sensor

    sensor = asyncio.run(seed())
    labels, note = work_order_labels(from_db=True, settings=settings)
    assert labels is not None and "from the database" in note
    labels = labels[labels["sensor_id"] == sensor]
    assert labels["outcome"].tolist() == ["fault_confirmed"]

    train = pd.DataFrame(
        {
            "sensor_id": "other",
            "timestamp": pd.date_range("2026-11-01", periods=200, freq="5min", tz="UTC"),
            "value": 2.0 + rng.normal(0, 0.05, 200),
        }
    )
    scorer = fit_scorer("vibration", train, n_estimators=20)
    # thresholds set by hand (this test is about the plumbing): normal rows score about 0.50-0.54, the spike
    # and the rows whose windows hold it about 0.63-0.65
    scorer.threshold, scorer.point_threshold = 0.6, 8.0
    result = TypeResult("vibration", scorer, {}, {}, pd.DataFrame(), None)
    table = score_work_order_labels({"vibration": result}, labels, settings=settings)
    assert table.to_dict("records") == [
        {
            "sensor_type": "vibration",
            "labels_confirmed": 1,
            "labels_no_fault": 0,
            "hit_rate_confirmed": 1.0,
            "flag_rate_no_fault": pytest.approx(float("nan"), nan_ok=True),
        }
    ]


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_isolation_scores_equal_score_samples(max_features: float) -> None:
    from sklearn.ensemble import IsolationForest

    from core.ml.anomaly.models import isolation_scores

    rng = np.random.default_rng(3)
    train = rng.normal(size=(400, 6))
    forest = IsolationForest(n_estimators=60, max_features=max_features, random_state=0).fit(train)
    probe = np.vstack([rng.normal(size=(25, 6)), rng.normal(6.0, 1.0, size=(5, 6))])
    np.testing.assert_allclose(
        isolation_scores(forest, probe), forest.score_samples(probe), rtol=0, atol=1e-12
    )
    assert (
        isolation_scores(forest, probe)[-5:].max() < isolation_scores(forest, probe)[:25].min()
    )  # outliers lower
