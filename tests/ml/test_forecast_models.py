"""Forecasters, lag features, rolling-origin folds, tuning protocol and the registered forecast pyfunc
(core/ml/forecast_*.py) on small generated series."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ml.forecast.backtest import (
    TEST,
    VALIDATION,
    Fold,
    ModelSpec,
    backtest,
    check_folds,
    make_folds,
    score_table,
)
from core.ml.forecast.features import LagFeatureConfig, feature_matrix, feature_row
from core.ml.forecast.models import (
    PROMOTION_METRIC,
    SeasonalNaiveForecaster,
    infer_frequency,
    make_forecaster,
    regular_series,
    season_steps,
)
from core.ml.forecast.tuning import candidate_specs, grid_configs, select_on_validation
from core.ml.registry.uris import fluent_uri

FREQ = pd.Timedelta(minutes=5)
SEASON = 288
END = pd.Timestamp("2026-11-01T00:00:00Z")


def _times(n: int, end: pd.Timestamp = END) -> pd.DatetimeIndex:
    return pd.date_range(end=end, periods=n, freq=FREQ)


def _periodic(times: pd.DatetimeIndex, amplitude: float = 5.0, base: float = 50.0) -> np.ndarray:
    hours = times.hour + times.minute / 60.0
    return base + amplitude * np.cos(2 * np.pi * (hours - 15) / 24)


def _ar_seasonal(
    n: int, seed: int, phi: float = 0.9, sigma: float = 1.0, amplitude: float = 5.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = phi * e[t - 1] + np.sqrt(1 - phi**2) * sigma * rng.standard_normal()
    return _periodic(_times(n), amplitude) + e


def _readings(types: dict[str, int], n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Demo-fleet-like readings: per sensor a daily cosine plus AR(1) noise, 5-minute slots ending at END."""
    frames = []
    number = 0
    for sensor_type, count in types.items():
        for _ in range(count):
            number += 1
            times = _times(n)
            frames.append(
                pd.DataFrame(
                    {
                        "sensor_id": f"sensor-{number:03d}",
                        "sensor_type": sensor_type,
                        "value": _ar_seasonal(n, seed + number, sigma=0.3),
                        "unit": "u",
                        "timestamp": times,
                        "quality": 1.0,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


# --- frequency, grid --------------------------------------------------------------------------------------------


def test_frequency_and_season_of_five_minute_data() -> None:
    times = _times(50).delete([10, 11, 12])  # a gap does not change the cadence
    assert infer_frequency(pd.Series(times)) == FREQ
    assert season_steps(FREQ) == 288
    assert season_steps(pd.Timedelta(hours=1)) == 24


def test_regular_series_interpolates_gaps_but_marks_them_unobserved() -> None:
    times = _times(10).delete([4, 5])
    values = np.arange(10.0)[[0, 1, 2, 3, 6, 7, 8, 9]]
    grid, filled, observed = regular_series(times, values, FREQ)
    assert len(grid) == 10
    assert observed.tolist() == [True] * 4 + [False, False] + [True] * 4
    np.testing.assert_allclose(filled, np.arange(10.0))


# --- forecasters --------------------------------------------------------------------------------------------


def test_seasonal_naive_is_exact_on_a_periodic_signal() -> None:
    times = _times(2 * SEASON)
    values = _periodic(times)
    fc = SeasonalNaiveForecaster(FREQ).fit(times, values).predict(36, 0.8)
    truth = _periodic(pd.date_range(times[-1] + FREQ, periods=36, freq=FREQ))
    np.testing.assert_allclose(fc["yhat"], truth, atol=1e-9)
    np.testing.assert_allclose(fc["yhat_upper"] - fc["yhat_lower"], 0.0, atol=1e-9)  # no residuals → no width
    assert list(fc["timestamp"]) == list(pd.date_range(times[-1] + FREQ, periods=36, freq=FREQ))


def test_seasonal_naive_beyond_one_season_repeats_the_last_season() -> None:
    times = _times(SEASON + 10)
    values = np.arange(len(times), dtype=float)
    fc = SeasonalNaiveForecaster(FREQ).fit(times, values).predict(SEASON + 5, None)
    n = len(values)
    expected = [values[n - 1 + k - SEASON * int(np.ceil(k / SEASON))] for k in range(1, SEASON + 6)]
    np.testing.assert_allclose(fc["yhat"], expected)


def test_seasonal_naive_falls_back_to_the_last_value_on_a_short_history() -> None:
    times = _times(20)
    values = np.linspace(0, 19, 20)
    fc = SeasonalNaiveForecaster(FREQ).fit(times, values).predict(4, 0.8)
    assert (fc["yhat"] == 19.0).all()
    width = (fc["yhat_upper"] - fc["yhat_lower"]).to_numpy()
    assert np.all(np.diff(width) >= 0)  # widening with the horizon (√k)


def test_naive_interval_covers_about_its_nominal_share() -> None:
    values = _ar_seasonal(SEASON * 2 + 200, seed=3, phi=0.0)  # white noise around the cycle
    times = _times(len(values))
    cut = SEASON * 2
    fc = SeasonalNaiveForecaster(FREQ).fit(times[:cut], values[:cut]).predict(200, 0.8)
    inside = (values[cut:] >= fc["yhat_lower"]) & (values[cut:] <= fc["yhat_upper"])
    assert 0.65 <= inside.mean() <= 0.95


def test_unknown_method_and_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown forecasting method"):
        make_forecaster("arima")
    fitted = SeasonalNaiveForecaster(FREQ).fit(_times(30), np.ones(30))
    with pytest.raises(ValueError, match="horizon"):
        fitted.predict(0)
    with pytest.raises(ValueError, match="interval"):
        fitted.predict(5, 1.5)


# --- lag features: no look-ahead ----------------------------------------------------------------------------


def test_lag_feature_rows_use_only_earlier_values() -> None:
    config = LagFeatureConfig(lags=(1, 2, 5), windows=(3, 6), season=12)
    rng = np.random.default_rng(1)
    values = rng.normal(size=60)
    times = _times(60)
    base = feature_matrix(values, times, config)
    assert base.shape == (60, len(config.names))
    for t in (0, 1, 7, 12, 30, 59):
        changed = values.copy()
        changed[t:] = 1e6  # the value of slot t and everything later
        np.testing.assert_array_equal(feature_matrix(changed, times, config)[t], base[t])
        # the step-wise builder used by recursive forecasting gives the same row
        np.testing.assert_allclose(feature_row(values[:t], times[t], config), base[t], equal_nan=True)
    assert base[20, config.names.index("lag_1")] == values[19]
    assert base[20, config.names.index("season_lag")] == values[8]
    assert base[20, config.names.index("roll_mean_3")] == pytest.approx(values[17:20].mean())


@pytest.mark.heavy_ml
def test_lightgbm_beats_seasonal_naive_at_short_horizons_on_autocorrelated_data() -> None:
    # AR(1) φ = 0.9 around a daily cycle: the last value carries information the day-old value does not.
    values = _ar_seasonal(2 * SEASON + 96, seed=0, phi=0.9)
    times = _times(len(values))
    maes: dict[str, list[float]] = {"naive": [], "lightgbm": []}
    for cut in range(2 * SEASON, len(values), 12):  # 8 origins, horizon 6
        for method, errors in maes.items():
            params = {"n_estimators": 150, "learning_rate": 0.1} if method == "lightgbm" else {}
            fc = make_forecaster(method, params, FREQ).fit(times[:cut], values[:cut]).predict(6, 0.8)
            errors.append(np.mean(np.abs(values[cut : cut + 6] - fc["yhat"].to_numpy())))
            assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert np.mean(maes["lightgbm"]) < 0.8 * np.mean(maes["naive"])


@pytest.mark.heavy_ml
def test_prophet_learns_the_daily_cycle() -> None:
    rng = np.random.default_rng(0)
    times = _times(2 * SEASON)
    values = _periodic(times) + rng.normal(0, 0.2, len(times))
    fc = make_forecaster("prophet", {}, FREQ).fit(times, values).predict(48, 0.9)
    truth = _periodic(pd.date_range(times[-1] + FREQ, periods=48, freq=FREQ))
    assert np.mean(np.abs(fc["yhat"] - truth)) < 0.5  # amplitude 5, noise 0.2
    inside = (truth >= fc["yhat_lower"]) & (truth <= fc["yhat_upper"])
    assert inside.mean() > 0.8


# --- folds and backtest -------------------------------------------------------------------------------------


def test_folds_are_ordered_and_validation_precedes_test() -> None:
    folds = make_folds(END, horizon=24, n_folds=6, n_validation=3, freq=FREQ)
    assert [f.role for f in folds] == [VALIDATION] * 3 + [TEST] * 3
    assert [f.cutoff for f in folds] == sorted(f.cutoff for f in folds)
    assert folds[-1].last_target == END
    val_targets = {f.first_target + k * FREQ for f in folds if f.role == VALIDATION for k in range(24)}
    test_targets = {f.first_target + k * FREQ for f in folds if f.role == TEST for k in range(24)}
    assert not val_targets & test_targets
    assert max(val_targets) < min(test_targets)
    with pytest.raises(ValueError):
        make_folds(END, horizon=24, n_folds=4, n_validation=4, freq=FREQ)  # no test fold
    with pytest.raises(ValueError):
        make_folds(END, horizon=24, n_folds=4, n_validation=2, freq=FREQ, step=12)  # overlapping targets
    swapped = [Fold(0, END - 48 * FREQ, TEST, 24, FREQ), Fold(1, END - 24 * FREQ, VALIDATION, 24, FREQ)]
    with pytest.raises(ValueError):
        check_folds(swapped)


def test_backtest_scores_exclude_fault_readings_and_naive_skill_is_zero() -> None:
    readings = _readings({"vibration": 2}, n=400)
    folds = make_folds(END, horizon=12, n_folds=3, n_validation=1, freq=FREQ)
    first = folds[-1].first_target
    faults = pd.DataFrame(
        {
            "sensor_id": ["sensor-001"],
            "kind": ["step"],
            "started_at": [first],
            "ended_at": [first + 5 * FREQ],
            "magnitude": [3.0],
            "description": ["test"],
        }
    )
    specs = [ModelSpec("naive", "naive"), ModelSpec("last", "naive")]
    pred = backtest(readings, faults, folds, specs, progress=False)
    assert len(pred) == 2 * 3 * 2 * 12
    assert pred["in_fault"].sum() == 2 * 6  # six target slots of sensor-001, for each of the two specs
    with_faults = score_table(pred, exclude_faults=False)
    without = score_table(pred)
    assert (with_faults["n"] - without["n"]).tolist() == [6, 6]
    assert without["skill"].tolist() == [0.0, 0.0]  # identical forecasts → no skill either way


def test_grid_sampling_is_deterministic_and_bounded() -> None:
    grid = {"a": (1, 2, 3), "b": (10, 20)}
    assert len(grid_configs(grid)) == 6
    assert grid_configs(grid, 4, seed=1) == grid_configs(grid, 4, seed=1)
    assert len(grid_configs(grid, 4)) == 4
    specs = candidate_specs({"lightgbm": {"num_leaves": (7, 15)}}, None)
    assert [s.label for s in specs] == ["naive", "prophet", "lightgbm#0", "lightgbm#1"]
    assert specs[-1].params["num_leaves"] == 15 and "learning_rate" in specs[-1].params


def test_selection_refuses_test_folds() -> None:
    pred = pd.DataFrame({"role": [VALIDATION, TEST]})
    with pytest.raises(ValueError, match="validation"):
        select_on_validation(pred, [])


@pytest.mark.heavy_ml
def test_tuning_chooses_on_validation_folds_only() -> None:
    from core.ml.forecast.training import ForecastConfig, run_study

    readings = _readings({"vibration": 1}, n=2 * SEASON + 36)
    config = ForecastConfig(
        horizon=12,
        n_folds=3,
        n_validation=2,
        calibration_folds=1,
        grids={"lightgbm": {"num_leaves": (3, 15), "n_estimators": (20, 80)}},
    )
    study = run_study(readings, None, config, progress=False)
    assert set(study.validation_predictions["role"]) == {VALIDATION}
    assert set(study.test_predictions["role"]) == {TEST}
    assert study.validation_predictions["timestamp"].max() < study.test_predictions["timestamp"].min()
    # only the chosen spec of each method reaches the test folds
    assert sorted(study.test_predictions["model"].unique()) == ["lightgbm", "naive", "prophet"]
    # the choice is the validation argmin
    val = study.validation_scores
    lgbm = val[val["method"] == "lightgbm"].sort_values("mae").iloc[0]
    assert study.selected["vibration"]["lightgbm"].params == lgbm["params"]
    best = val.loc[val["mae"].idxmin(), "method"]
    assert study.chosen["vibration"].method == best

    # wrecking the test period changes the test report but not one choice
    wrecked = readings.copy()
    late = wrecked["timestamp"] > study.folds[-1].cutoff
    wrecked.loc[late, "value"] = wrecked.loc[late, "value"] * 10 + 100
    again = run_study(wrecked, None, config, progress=False)
    assert again.selected == study.selected and again.chosen == study.chosen
    pd.testing.assert_frame_equal(again.validation_scores, study.validation_scores)
    assert not again.test_scores["mae"].equals(study.test_scores["mae"])


# --- training: registered model, logged metrics, pyfunc contract ----------------------------------------------


@pytest.mark.heavy_ml
@pytest.mark.slow
def test_training_registers_a_model_that_honours_the_contract(tmp_path) -> None:
    import mlflow
    from mlflow import MlflowClient

    from core.ml.forecast.training import ForecastConfig, run_forecast_training

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    readings = _readings({"vibration": 2}, n=SEASON + 60)
    config = ForecastConfig(horizon=6, n_folds=3, n_validation=1, calibration_folds=2)
    run = run_forecast_training(
        readings, None, output_dir=tmp_path / "plots", tracking_uri=uri, config=config, progress=False
    )
    assert run.versions == {"vibration": "1"}
    decision = run.decisions["vibration"]
    assert decision.promoted and decision.metric == PROMOTION_METRIC[0] and decision.higher_is_better is False
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {
        "train_forecast_vibration.png",
        "train_error_by_horizon.png",
        "train_skill.png",
        "train_coverage.png",
    }

    client = MlflowClient(tracking_uri=uri)
    version = client.get_model_version_by_alias("forecast_vibration", "champion")
    assert str(version.version) == "1"
    child = client.get_run(version.run_id)
    assert child.data.tags["sm.family"] == "forecast" and child.data.tags["sm.sensor_type"] == "vibration"
    chosen = run.study.chosen["vibration"].method
    assert child.data.tags["sm.forecast.method"] == chosen
    report = run.study.report().set_index("method")
    for key in ("val_mae", "test_mae", "test_rmse", "test_smape", "test_skill", "test_coverage", "test_coverage_raw",
                "test_width", "cal_n"):  # fmt: skip
        assert child.data.metrics[key] == pytest.approx(report.loc[chosen, key])
    # the interval calibration: the sequential state as of training end, from every fold (2 calibration + 1
    # validation + 2 test folds × 6 steps × 2 sensors), its design chosen on the validation fold; reproducible from
    # the run's params and artifact
    assert [f.role for f in run.study.calibration_folds] == ["calibration"] * 2
    assert run.study.calibration_folds[-1].cutoff < run.study.folds[0].cutoff
    calibration = run.study.calibrations[("vibration", chosen)]
    assert calibration.n == 60 == child.data.metrics["cal_n"] and calibration.weights is not None
    design = run.study.calibration_design
    assert child.data.params["interval_calibration"] == (
        "sequential conformal through the folds, state as of training end"
    )
    assert float(child.data.params["calibration_decay"]) == design.decay
    assert float(child.data.params["calibration_gamma"]) == design.gamma
    assert child.data.params["calibration_factors"] == calibration.describe(0.8)
    designs = run.study.calibration_designs
    assert set(designs["role"]) == {"calibration", "validation", "test"} and designs["chosen"].any()
    stored = client.download_artifacts(version.run_id, "calibration/interval_calibration.json", str(tmp_path))
    from core.ml.forecast.conformal import IntervalCalibration

    assert IntervalCalibration.from_dict(json.loads(Path(stored).read_text())) == IntervalCalibration.from_dict(
        calibration.to_dict()
    )
    parent = client.get_run(run.run_id)
    assert child.info.experiment_id == parent.info.experiment_id  # nested in the notebook's one run
    assert child.data.tags["mlflow.parentRunId"] == run.run_id
    assert parent.data.metrics["vibration.naive.test_skill"] == 0.0

    with fluent_uri(uri):  # run_forecast_training restored the process's MLflow URIs
        model = mlflow.pyfunc.load_model(f"models:/forecast_vibration/{version.version}")
    history = readings[readings["sensor_type"] == "vibration"][["sensor_id", "timestamp", "value"]]
    history = history.astype({"sensor_id": object}).reset_index(drop=True)
    history["timestamp"] = history["timestamp"].astype("datetime64[ns, UTC]")
    out = model.predict(history, params={"horizon": 5, "interval": 0.9})
    assert list(out.columns) == ["sensor_id", "timestamp", "yhat", "yhat_lower", "yhat_upper"]
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    for sensor_id, group in out.groupby("sensor_id"):
        last = history[history["sensor_id"] == sensor_id]["timestamp"].max()
        assert list(group["timestamp"]) == [last + k * FREQ for k in range(1, 6)]
    assert len(out) == 10
    assert ((out["yhat_lower"] <= out["yhat"]) & (out["yhat"] <= out["yhat_upper"])).all()
    narrow = model.predict(history, params={"horizon": 5, "interval": 0.5})
    assert (
        (narrow["yhat_upper"] - narrow["yhat_lower"]) <= (out["yhat_upper"] - out["yhat_lower"]) + 1e-9
    ).all()
    default = model.predict(history)  # params default to the schema's horizon
    assert len(default) == 2 * config.horizon
    # the served interval is the calibrated one: the method's raw 80 % interval moved by the stored factor, and the
    # model states the coverage measured on the test folds
    raw = pd.concat(
        [make_forecaster(chosen, run.study.chosen["vibration"].params, FREQ).fit(g["timestamp"], g["value"])
         .predict(5, 0.8) for _, g in history.groupby("sensor_id", sort=False)], ignore_index=True,
    )  # fmt: skip
    steps = np.tile(np.arange(1, 6), 2)
    lower, upper = calibration.apply(raw["yhat"], raw["yhat_lower"], raw["yhat_upper"], 0.9, steps)
    assert out["yhat_lower"].to_numpy() == pytest.approx(lower) and out["yhat_upper"].to_numpy() == pytest.approx(upper)
    metadata = model.metadata.metadata
    assert metadata["interval_calibration"]["n"] == 60
    curve = run.study.coverage_curve.set_index("model").loc[[chosen]]
    assert metadata["test_coverage"] == {f"{r.nominal:g}": pytest.approx(r.coverage, abs=1e-4)
                                         for r in curve.itertuples()}  # fmt: skip
    assert metadata["test_coverage"]["0.8"] == pytest.approx(child.data.metrics["test_coverage"], abs=1e-4)

    # the same model registered again does not displace the champion (it cannot beat itself by the margin)
    from core.ml.forecast.pyfunc import ForecastModel, input_example, log_forecast_model
    from core.ml.forecast.training import _promote

    spec = run.study.chosen["vibration"]
    again = ForecastModel(spec.method, spec.params, FREQ.total_seconds(), "vibration", config.horizon)
    with fluent_uri(uri), mlflow.start_run(experiment_id=parent.info.experiment_id):
        info = log_forecast_model(
            again, input_example(history, 300), registered_model_name="forecast_vibration"
        )
    assert str(info.registered_model_version) == "2"
    decision = _promote("forecast_vibration", "2", uri, readings, None, config)
    assert not decision.promoted and decision.champion_version == "1"
    assert decision.candidate_score == pytest.approx(decision.champion_score)
    assert str(client.get_model_version_by_alias("forecast_vibration", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("forecast_vibration", "challenger").version) == "2"


@pytest.mark.heavy_ml
def test_evaluate_for_promotion_scores_the_latest_fold_of_the_demo_data() -> None:
    from core.ml.forecast.models import evaluate_for_promotion
    from core.ml.forecast.pyfunc import ForecastModel

    class Wrapped:  # what a loaded PyFuncModel offers: predict(frame, params=...)
        def __init__(self, model: ForecastModel) -> None:
            self.model = model

        def predict(self, frame: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
            return self.model.predict(None, frame, params)

    naive = evaluate_for_promotion(
        Wrapped(ForecastModel("naive", {}, 300, "vibration")), "forecast_vibration"
    )
    assert 0 < naive < 1.0  # mm/s; the vibration sensors' daily amplitude is 0.35
    offset = ForecastModel("naive", {}, 300, "vibration")
    worse = Wrapped(offset)
    base_forecast = offset.forecast

    def shifted(history: pd.DataFrame, horizon: int, interval: float) -> pd.DataFrame:
        out = base_forecast(history, horizon, interval)
        return out.assign(yhat=out["yhat"] + 1.0)

    offset.forecast = shifted  # type: ignore[method-assign]
    assert evaluate_for_promotion(worse, "forecast_vibration") > naive
