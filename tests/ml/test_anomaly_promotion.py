"""core.ml.anomaly.episodes / anomaly_promotion: episodes, alerts through the alerting engine, event recall and
false alarms per sensor-day on hand-made series (exact numbers), the decision table, and promotion through a real
MLflow registry (temporary sqlite store) against the ``robust_z`` baseline and against a champion."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel

from core.ml.anomaly import promotion as ap
from core.ml.anomaly.episodes import evaluation_data
from core.ml.eda.tracking import default_artifact_location
from core.ml.registry.uris import fluent_uri

T0 = pd.Timestamp("2026-11-01T00:00:00Z")
STEP = pd.Timedelta(minutes=5)


def t(i: int) -> pd.Timestamp:
    return T0 + i * STEP


def series(sensors: dict[str, np.ndarray], sensor_type: str = "temperature") -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "sensor_id": sensor,
                    "sensor_type": sensor_type,
                    "timestamp": pd.date_range(T0, periods=len(v), freq="5min", tz="UTC"),
                    "value": v,
                }
            )
            for sensor, v in sensors.items()
        ],
        ignore_index=True,
    )


def faults(*rows: tuple[str, str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sensor_id": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "started_at": [t(r[2]) for r in rows],
            "ended_at": [t(r[3]) for r in rows],
            "magnitude": 1.0,
            "description": "",
        }
    )


def flags_at(data: Any, marks: dict[str, list[int]]) -> np.ndarray:
    """Flags aligned with ``data.frame``: readings ``marks[sensor]`` (indices from T0) are flagged."""
    wanted = {(s, t(i)) for s, rows in marks.items() for i in rows}
    return np.array(
        [(s, ts) in wanted for s, ts in zip(data.frame["sensor_id"], data.frame["timestamp"], strict=False)]
    )


# --- alerts through the engine -----------------------------------------------------------------------------------
def test_alerts_open_on_3_of_20_and_resolve_after_10_normal_readings_and_30_minutes() -> None:
    stamps = [t(i).to_pydatetime() for i in range(60)]
    flags = np.zeros(60, dtype=bool)
    flags[[5, 6, 7]] = True  # opens at 7; 8..17 normal (50 min after the opening): resolved at 17
    flags[[30, 31, 32]] = True  # a second alert
    flags[[40, 50]] = True  # observed by the open alert or too sparse: nothing new
    assert ap.alert_openings(stamps, np.zeros(60), flags) == [t(7), t(32)]
    sparse = np.zeros(60, dtype=bool)
    sparse[[5, 30, 55]] = True  # never 3 in 20
    assert ap.alert_openings(stamps, np.zeros(60), sparse) == []


# --- episodes, recall, false alarms ------------------------------------------------------------------------------
def _two_sensors() -> pd.DataFrame:
    return series({"A": np.full(200, 50.0), "B": np.full(200, 50.0)})


def _evaluated(readings: pd.DataFrame, first: int = 50) -> np.ndarray:
    return (readings["timestamp"] >= t(first)).to_numpy()


FAULTS = faults(
    ("A", "spike", 100, 100),
    ("A", "drift", 150, 160),
    ("A", "step", 10, 20),  # before the evaluated rows: no episode
    ("B", "step", 60, 70),
    ("B", "dropout", 120, 125),  # no readings to flag: no episode
)
MARKS = {"A": [101, 102, 103, 170, 171, 172], "B": [30, 31, 32, 130, 131, 132]}


def test_episodes_recall_and_false_alarms_on_hand_made_series() -> None:
    readings = _two_sensors()
    data = evaluation_data(readings, _evaluated(readings), FAULTS)
    assert data.sensor_type == "temperature"
    assert [(e.sensor_id, e.start, e.fault_end, e.end, e.sources) for e in data.episodes] == [
        ("A", t(100), t(100), t(120), ("injected:spike",)),  # grace: the 20th reading after the end
        ("A", t(150), t(160), t(180), ("injected:drift",)),
        ("B", t(60), t(70), t(90), ("injected:step",)),
    ]
    assert data.sensor_days == pytest.approx(2 * 149 * 5 / 1440)  # rows 50..199 of two sensors

    result = ap.evaluate_detector(flags_at(data, MARKS), data, "hand")
    # A: alert at 103 (spike, grace) and at 172 (drift, grace); B: 30-32 are history only, 132 is a false alarm
    assert (result.episodes, result.hits, result.alerts, result.false_alarms) == (3, 2, 3, 1)
    assert result.recall == pytest.approx(2 / 3)
    assert result.false_alarms_per_sensor_day == pytest.approx(1 / (2 * 149 * 5 / 1440))
    assert result.median_delay_min == pytest.approx((15 + 110) / 2)
    # a function of the data is the same detector
    assert ap.evaluate_detector(lambda d: flags_at(d, MARKS), data, "hand") == result


def test_work_order_labels_add_episodes_and_no_fault_windows() -> None:
    readings = _two_sensors()
    hour = pd.Timedelta(hours=1)
    labels = pd.DataFrame(
        {
            "task_id": [1, 2, 3, 4],
            "sensor_id": ["B", "A", "C", None],
            "outcome": ["fault_confirmed", "no_fault_found", "fault_confirmed", "fault_confirmed"],
            "alert_opened_at": [t(140), t(105), t(140), t(140)],
            "completed_at": [t(150)] * 4,
        }
    )
    data = evaluation_data(readings, _evaluated(readings), FAULTS, labels, lookback=hour)
    assert (data.labels_used, data.labels_unused) == (2, 1)  # C has no readings; no sensor: skipped
    assert ("B", t(128), t(140), t(160), ("work_order:1",)) in [
        (e.sensor_id, e.start, e.fault_end, e.end, e.sources) for e in data.episodes
    ]
    assert data.no_fault == (("A", t(93), t(105)),)
    result = ap.evaluate_detector(flags_at(data, MARKS), data)
    # B's alert at 132 now hits the confirmed episode; A's at 103 is in the no-fault window: a false alarm
    assert (result.episodes, result.hits, result.alerts, result.false_alarms) == (4, 2, 3, 1)
    assert result.recall == 0.5


def test_overlapping_faults_of_a_sensor_are_one_episode() -> None:
    readings = series({"A": np.full(100, 1.0)})
    data = evaluation_data(
        readings, np.ones(100, bool), faults(("A", "spike", 40, 40), ("A", "spike", 50, 50))
    )
    assert [(e.start, e.fault_end, e.end, e.sources) for e in data.episodes] == [
        (t(40), t(50), t(70), ("injected:spike", "injected:spike"))
    ]
    # fewer than 20 readings after the end: the grace runs to the last reading
    late = evaluation_data(readings, np.ones(100, bool), faults(("A", "step", 90, 92)))
    assert late.episodes[0].end == t(99)


def test_robust_z_flags_are_the_agents_score_series() -> None:
    from core.anomaly.baseline import BaselineConfig, floors_for, score_series

    rng = np.random.default_rng(0)
    values = 50 + rng.normal(0, 1, 200)
    values[150:170] += 15.0
    readings = series({"A": values})
    data = evaluation_data(readings, np.ones(200, bool), None)
    stamps = [ts.to_pydatetime() for ts in readings["timestamp"]]
    expected = score_series(stamps, values, BaselineConfig(), floors_for("temperature")).flagged
    assert ap.robust_z_flags(data).tolist() == expected.tolist()
    assert ap.robust_z_flags(data)[150:170].all()


# --- the decision ------------------------------------------------------------------------------------------------
def evaluation(hits: int, false_alarms: int, episodes: int = 2, alerts: int | None = None) -> ap.Evaluation:
    days = 3.0
    return ap.Evaluation(
        detector="x",
        recall=hits / episodes if episodes else float("nan"),
        false_alarms_per_sensor_day=false_alarms / days,
        episodes=episodes,
        hits=hits,
        alerts=hits + false_alarms if alerts is None else alerts,
        false_alarms=false_alarms,
        sensor_days=days,
        median_delay_min=float("nan"),
    )


@pytest.mark.parametrize(
    ("candidate", "serving", "promoted", "words"),
    [
        ((2, 0), (1, 1), True, "recall better, false alarms better"),
        ((2, 1), (1, 1), True, "recall better, false alarms equal"),
        ((1, 0), (1, 2), True, "recall equal, false alarms better"),
        ((1, 1), (1, 1), False, "recall equal, false alarms equal"),
        ((2, 3), (1, 1), False, "recall better, false alarms worse"),
        ((1, 0), (2, 1), False, "recall worse, false alarms better"),
        ((0, 0), (1, 0), False, "detects no fault episode"),  # zero alerts vs a detecting baseline
        ((0, 0), (0, 4), False, "detects no fault episode"),  # silence is not better than false alarms
    ],
)
def test_decision_table(candidate: tuple, serving: tuple, promoted: bool, words: str) -> None:
    decision, reason = ap.decide(evaluation(*candidate), evaluation(*serving), "baseline robust_z")
    assert decision is promoted
    assert words in reason and "baseline robust_z" in reason


def test_no_episode_no_promotion_and_same_data_required() -> None:
    decision, reason = ap.decide(evaluation(0, 0, episodes=0), evaluation(0, 3, episodes=0), "champion v1")
    assert not decision and "no labelled fault episode" in reason
    with pytest.raises(ValueError, match="same data"):
        ap.decide(evaluation(1, 0, episodes=2), evaluation(1, 0, episodes=3))


# --- through the registry ----------------------------------------------------------------------------------------
class WindowModel(PythonModel):
    """``anomaly_<type>`` contract: flags the readings of ``windows`` = [(sensor, first, last)], first and last
    reading given as indices from ``T0`` or as timestamps."""

    def __init__(self, windows: list[tuple[str, Any, Any]]) -> None:
        def at(x: Any) -> pd.Timestamp:
            return t(x) if isinstance(x, int) else pd.Timestamp(x)

        self.windows = [(s, at(a), at(b)) for s, a, b in windows]

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        ts = pd.to_datetime(model_input["timestamp"], utc=True)
        flags = np.zeros(len(model_input), dtype=bool)
        for sensor, lo, hi in self.windows:
            flags |= ((model_input["sensor_id"] == sensor) & (ts >= lo) & (ts <= hi)).to_numpy()
        return pd.DataFrame({"score": flags.astype(float) * 2.0, "is_anomaly": flags})


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment("promotion-test", artifact_location=default_artifact_location(uri))
    return uri


def register(uri: str, name: str, model: PythonModel) -> str:
    from core.ml.anomaly.run import model_signature

    with fluent_uri(uri):
        mlflow.set_experiment("promotion-test")
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=model_signature(),
                registered_model_name=name,
                pip_requirements=[],
            )
    return str(info.registered_model_version)


def aliases(uri: str, name: str) -> dict[str, str]:
    rm = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(name)
    return {alias: str(version) for alias, version in rm.aliases.items()}


def fleet(step: float) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Three temperature sensors, 300 readings: 50 °C + a deterministic ±1 °C wiggle; s-1 steps by ``step`` over
    readings 220-249. Evaluated: the last 40 % (the test split). The wiggle's robust scale is about 1 °C, so a
    +20 °C step is a robust_z outlier (z ≈ 20) and a +3 °C step is not (z ≈ 3 < 6)."""
    wiggle = np.sin(np.arange(300) * 2.0)
    sensors = dict.fromkeys(("s-1", "s-2", "s-3"), 50.0 + wiggle)
    sensors["s-1"] = sensors["s-1"].copy()
    sensors["s-1"][220:250] += step
    readings = series(sensors)
    from core.ml.anomaly.evaluation import split_times

    evaluated = split_times(readings["timestamp"]).labels(readings["timestamp"]) == "test"
    return readings, evaluated, faults(("s-1", "step", 220, 249))


def test_first_version_worse_than_the_baseline_stays_challenger(tracking_uri: str) -> None:
    readings, evaluated, truth = fleet(step=20.0)
    data = evaluation_data(readings, evaluated, truth)
    baseline = ap.DetectorComparison(data).serving_baseline()
    assert (baseline.hits, baseline.false_alarms) == (1, 0)  # the baseline catches the big step, cleanly

    name = "anomaly_temperature_worse"
    # catches the step too, but also alerts on the healthy s-2
    v1 = register(tracking_uri, name, WindowModel([("s-1", 222, 226), ("s-2", 200, 204)]))
    decision = ap.promote_detector(name, v1, data, tracking_uri=tracking_uri)
    assert not decision.promoted
    assert decision.serving == "baseline robust_z" and decision.champion_version is None
    assert "recall equal, false alarms worse" in decision.reason
    assert (decision.candidate_figures["hits"], decision.candidate_figures["false_alarms"]) == (1.0, 1.0)
    assert (decision.serving_figures["hits"], decision.serving_figures["false_alarms"]) == (1.0, 0.0)
    assert aliases(tracking_uri, name) == {"challenger": v1}  # no champion: the agent keeps the baseline
    tags = mlflow.MlflowClient(tracking_uri=tracking_uri).get_model_version(name, v1).tags
    assert tags["sm.promotion.decision"] == "rejected"
    assert tags["sm.promotion.serving"] == "baseline robust_z"
    assert tags["sm.promotion.metric"] == "event_recall"
    assert float(tags["sm.promotion.serving.false_alarms"]) == 0.0
    assert float(tags["sm.promotion.candidate.false_alarms_per_sensor_day"]) == pytest.approx(
        1 / data.sensor_days
    )


def test_better_than_the_baseline_becomes_champion_then_a_worse_version_stays_challenger(
    tracking_uri: str,
) -> None:
    readings, evaluated, truth = fleet(step=3.0)
    data = evaluation_data(readings, evaluated, truth)
    baseline = ap.DetectorComparison(data).serving_baseline()
    assert (baseline.hits, baseline.alerts) == (0, 0)  # a +3 °C step is below the baseline's z = 6

    name = "anomaly_temperature_better"
    v1 = register(tracking_uri, name, WindowModel([("s-1", 222, 226)]))
    decision = ap.promote_detector(name, v1, data, tracking_uri=tracking_uri)
    assert decision.promoted, decision.reason
    assert "recall better, false alarms equal" in decision.reason
    assert decision.candidate_score == 1.0 and decision.champion_score == 0.0
    assert aliases(tracking_uri, name) == {"champion": v1}

    # the second version alerts on nothing: the champion (scored on the same data) keeps serving
    v2 = register(tracking_uri, name, WindowModel([]))
    decision = ap.promote_detector(name, v2, data, tracking_uri=tracking_uri)
    assert not decision.promoted
    assert decision.serving == f"champion v{v1}" and decision.champion_version == v1
    assert decision.serving_figures["hits"] == 1.0 and decision.candidate_figures["alerts"] == 0.0
    assert "detects no fault episode" in decision.reason
    assert aliases(tracking_uri, name) == {"champion": v1, "challenger": v2}


def test_models_promote_uses_this_rule_on_the_committed_data(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``models promote NAME VERSION`` (no --force) judges anomaly_<type> by this rule on data/sensor_data.csv."""
    from typer.testing import CliRunner

    from apps.cli import app
    from core.ml.registry import promotion as registry

    name = "anomaly_temperature"  # the type's test split holds the sensor-001 drift (from 2026-10-31 11:35)
    silent = register(tracking_uri, name, WindowModel([]))
    decision = registry.promote_if_better(name, silent, tracking_uri=tracking_uri)
    assert not decision.promoted and "detects no fault episode" in decision.reason
    assert decision.serving == "baseline robust_z" and decision.metric == "event_recall"

    drift = register(
        tracking_uri, name, WindowModel([("sensor-001", "2026-10-31T12:00:00Z", "2026-10-31T12:20:00Z")])
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    result = CliRunner().invoke(app, ["models", "promote", name, drift])
    assert result.exit_code == 0, result.output
    assert "promoted to champion" in result.output
    assert aliases(tracking_uri, name) == {"champion": drift}
    tags = mlflow.MlflowClient(tracking_uri=tracking_uri).get_model_version(name, drift).tags
    assert tags["sm.promotion.reason"].endswith("recall better, false alarms equal: promoted")
    # flags from 12:00: the 3rd, at 12:10, opens the alert, 35 min after the drift's first reading (11:35)
    assert float(tags["sm.promotion.candidate.median_delay_min"]) == 35.0


# --- the committed demo data -------------------------------------------------------------------------------------
def test_baseline_on_the_committed_demo_data() -> None:
    from core.ml import datasets
    from core.ml.anomaly.evaluation import split_times

    readings = datasets.load_sensor_csv()
    truth = datasets.load_fault_labels()
    cuts = split_times(readings["timestamp"])
    figures = {}
    for sensor_type, of_type in readings.groupby("sensor_type"):
        data = evaluation_data(of_type, cuts.labels(of_type["timestamp"]) == "test", truth)
        result = ap.DetectorComparison(data).serving_baseline()
        figures[sensor_type] = result
        assert data.sensor_days == pytest.approx(3 * (21 * 60 + 10) / 1440)  # 3 sensors × 21 h 10 min
        assert 0 <= result.hits <= result.episodes and 0 <= result.false_alarms <= result.alerts
        assert result.hits + result.false_alarms <= result.alerts
        assert np.isfinite(result.false_alarms_per_sensor_day)
        assert result.false_alarms_per_sensor_day == pytest.approx(result.false_alarms / data.sensor_days)
        assert np.isfinite(result.recall) == (result.episodes > 0)
    # one test-split fault per type except humidity (dropout and the earlier faults are outside it)
    assert {k: v.episodes for k, v in figures.items()} == {
        "humidity": 0,
        "pressure": 1,
        "temperature": 1,
        "vibration": 1,
        "voltage": 1,
    }
