"""Split-conformal calibration of the forecast intervals (core/ml/forecast/conformal.py) and its use by the served
``forecast_<type>`` pyfunc (core/ml/forecast/pyfunc.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from core.ml.forecast.conformal import (
    IntervalCalibration,
    calibrate_predictions,
    conformity_scores,
    coverage,
    coverage_curve,
    fit_calibrations,
    interval_table,
)
from core.ml.forecast.models import make_forecaster
from core.ml.forecast.pyfunc import ForecastModel, calibration_metadata

FREQ = pd.Timedelta(minutes=5)


def _exchangeable(n: int, rng: np.random.Generator, half_width: float) -> pd.DataFrame:
    """Three 'sensors' with noise SD 0.5, 1 and 3; each forecast is the true mean, its raw interval
    ``± half_width × SD`` (half_width 0.5 → a nominal-80 % interval that covers ~38 %)."""
    sd = rng.choice([0.5, 1.0, 3.0], size=n)
    yhat = rng.normal(50.0, 5.0, size=n)
    actual = yhat + sd * rng.standard_normal(n)
    return pd.DataFrame(
        {
            "sensor_type": "vibration",
            "model": "naive",
            "role": "validation",
            "step": rng.integers(1, 25, size=n),
            "sd": sd,
            "yhat": yhat,
            "actual": actual,
            "yhat_lower": yhat - half_width * sd,
            "yhat_upper": yhat + half_width * sd,
        }
    )


@pytest.mark.parametrize("half_width", [0.5, 3.0])  # far too narrow, far too wide
def test_calibration_gives_nominal_coverage_on_exchangeable_data(half_width: float) -> None:
    rng = np.random.default_rng(7)
    calibration_set = _exchangeable(2000, rng, half_width)
    later = _exchangeable(20_000, rng, half_width).assign(role="test")
    raw = coverage(later["actual"], later["yhat_lower"], later["yhat_upper"])
    assert abs(raw - 0.8) > 0.15  # the uncalibrated interval misses its nominal 80 % by far

    calibrations = fit_calibrations(calibration_set, base_interval=0.8, horizon=24, buckets=1)
    assert set(calibrations) == {("vibration", "naive")}
    calibrated = calibrate_predictions(later, calibrations, 0.8)
    assert calibrated["yhat_lower_raw"].equals(later["yhat_lower"])  # raw bounds kept beside the calibrated ones
    assert coverage(calibrated["actual"], calibrated["yhat_lower"], calibrated["yhat_upper"]) == pytest.approx(
        0.8, abs=0.03
    )
    # the width-normalised score keeps each sensor's own scale: every noise level gets ~80 %, not just the pool
    for _, group in calibrated.groupby("sd"):
        assert coverage(group["actual"], group["yhat_lower"], group["yhat_upper"]) == pytest.approx(0.8, abs=0.05)
    # and every other level from the same scores
    curve = coverage_curve(later, calibrations, levels=(0.5, 0.9, 0.95))
    assert curve["coverage"].to_numpy() == pytest.approx([0.5, 0.9, 0.95], abs=0.03)
    table = interval_table(calibrated, calibrations, 0.8).iloc[0]
    assert table["coverage_raw"] == pytest.approx(raw)
    assert bool(table["width"] > table["width_raw"]) == (half_width < 1.0)  # widened when too narrow, else narrowed


def test_coverage_that_falls_with_the_horizon_is_calibrated_per_horizon_bucket() -> None:
    """Errors that grow with the horizon step under a constant raw interval (as the recursive forecasters' do):
    one pooled factor over-covers the first steps and under-covers the last; one per third covers each."""
    rng = np.random.default_rng(11)

    def frame(n: int) -> pd.DataFrame:
        step = rng.integers(1, 25, size=n)
        yhat = np.zeros(n)
        return pd.DataFrame({"sensor_type": "t", "model": "lightgbm", "role": "validation", "step": step,
                             "yhat": yhat, "actual": (0.2 + step / 8) * rng.standard_normal(n),
                             "yhat_lower": yhat - 1.0, "yhat_upper": yhat + 1.0})  # fmt: skip

    calibration_set, later = frame(3000), frame(30_000)
    thirds = np.ceil(later["step"] / 8)

    def by_third(calibrations: dict) -> list[float]:
        out = calibrate_predictions(later, calibrations, 0.8)
        inside = (out["actual"] >= out["yhat_lower"]) & (out["actual"] <= out["yhat_upper"])
        return inside.groupby(thirds).mean().tolist()

    pooled = by_third(fit_calibrations(calibration_set, 0.8, horizon=24, buckets=1))
    assert pooled[0] > 0.9 and pooled[2] < 0.7
    bucketed = fit_calibrations(calibration_set, 0.8, horizon=24, buckets=3)
    assert bucketed[("t", "lightgbm")].bucket_starts == (1, 9, 17)
    assert by_third(bucketed) == pytest.approx([0.8, 0.8, 0.8], abs=0.03)
    # too few scores for three buckets of at least 20: fewer buckets, down to one
    assert fit_calibrations(calibration_set.head(50), 0.8, horizon=24)[("t", "lightgbm")].bucket_starts == (1, 13)
    assert fit_calibrations(calibration_set.head(12), 0.8, horizon=24)[("t", "lightgbm")].bucket_starts == (1,)


def test_the_factor_is_the_conformal_rank_and_unreachable_levels_are_refused() -> None:
    calibration = IntervalCalibration.pooled(0.8, range(9))  # scores 0..8, n = 9
    assert calibration.factors(0.8) == (7.0,)  # ⌈10 × 0.8⌉ = 8th smallest
    assert calibration.factors(0.5) == (4.0,)
    assert calibration.max_interval == pytest.approx(0.9)
    with pytest.raises(ValueError, match="needs at least 19 calibration scores"):
        calibration.factors(0.95)
    assert IntervalCalibration.from_dict(calibration.to_dict()) == calibration
    two = IntervalCalibration(0.8, ((0.0,) * 4, (1.0,) * 30), (1, 5))
    assert two.bucket_of([1, 4, 5, 99]).tolist() == [0, 0, 1, 1]  # steps past the horizon: the last bucket
    assert two.max_interval == pytest.approx(0.8) and two.describe(0.8) == "1–4: +0.000, 5+: +1.000"
    with pytest.raises(ValueError, match="horizon step"):
        two.apply([1.0], [0.0], [2.0], 0.8)
    # a negative factor narrows, but never past the point forecast
    lower, upper = IntervalCalibration.pooled(0.8, [-0.9]).apply([10.0], [9.0], [12.0], 0.5)
    assert (lower[0], upper[0]) == (10.0, 10.0)
    assert conformity_scores([5.0, 13.0, 10.0], [9.0] * 3, [12.0] * 3) == pytest.approx([4 / 3, 1 / 3, -1 / 3])


def test_calibration_refuses_test_folds() -> None:
    frame = _exchangeable(10, np.random.default_rng(0), 1.0)
    frame.loc[0, "role"] = "test"
    with pytest.raises(ValueError, match="validation"):
        fit_calibrations(frame, 0.8, horizon=24)


def _history(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-11-01", periods=n, freq=FREQ, tz="UTC")
    hours = times.hour + times.minute / 60.0
    values = 20 + 2 * np.cos(2 * np.pi * hours / 24) + rng.normal(0, 0.4, n)
    return pd.DataFrame({"sensor_id": "s-1", "timestamp": times, "value": values})


def test_the_served_pyfunc_applies_its_calibration() -> None:
    history = _history()
    calibration = IntervalCalibration(0.8, (tuple(np.linspace(-0.2, 0.2, 25)), tuple(np.linspace(0.3, 1.0, 25))),
                                      (1, 7))  # fmt: skip
    coverage_by_level = {"0.8": 0.82, "0.9": 0.88}
    model = ForecastModel("naive", {}, FREQ.total_seconds(), "temperature", calibration=calibration,
                          test_coverage=coverage_by_level)  # fmt: skip
    out = model.predict(None, history, {"horizon": 12, "interval": 0.9})
    raw = make_forecaster("naive", {}, FREQ).fit(history["timestamp"], history["value"]).predict(12, 0.8)
    lower, upper = calibration.apply(raw["yhat"], raw["yhat_lower"], raw["yhat_upper"], 0.9, np.arange(1, 13))
    assert out["yhat"].to_numpy() == pytest.approx(raw["yhat"].to_numpy())
    assert out["yhat_lower"].to_numpy() == pytest.approx(lower)
    assert out["yhat_upper"].to_numpy() == pytest.approx(upper)
    assert (out["yhat_upper"] - out["yhat_lower"]).mean() > (raw["yhat_upper"] - raw["yhat_lower"]).mean()
    with pytest.raises(ValueError, match="calibration scores"):
        model.predict(None, history, {"horizon": 3, "interval": 0.97})  # 25 scores per bucket reach 96 % at most

    metadata = calibration_metadata(model)
    assert metadata["test_coverage"] == coverage_by_level
    assert metadata["interval_calibration"]["n"] == 50
    assert metadata["interval_calibration"]["bucket_starts"] == [1, 7]
    assert metadata["interval_calibration"]["factors"]["0.8"] == pytest.approx(calibration.factors(0.8), abs=1e-6)

    # a model pickled before calibration existed (no attribute) serves the method's raw interval
    legacy = pickle.loads(pickle.dumps(ForecastModel("naive", {}, FREQ.total_seconds(), "temperature")))
    del legacy.__dict__["calibration"]
    old = legacy.predict(None, history, {"horizon": 12, "interval": 0.8})
    assert old["yhat_lower"].to_numpy() == pytest.approx(raw["yhat_lower"].to_numpy())
    assert calibration_metadata(legacy) == {}


# --- sequential calibration through the folds (core/ml/forecast/sequential.py) ---------------------------------


def _shifting_folds(rng: np.random.Generator, sds: list[float], roles: list[str]) -> pd.DataFrame:
    """One fold per entry: 3 sensors × 24 steps, forecast = truth's mean, raw interval ±1.28 (a nominal 80 % for
    SD 1), errors of SD ``sds[fold]`` that persist within a fold (AR(1), ρ = 0.8, like a forecast's residuals)."""
    frames = []
    for fold, (sd, role) in enumerate(zip(sds, roles, strict=True)):
        for sensor in range(3):
            noise = np.zeros(24)
            shocks = rng.standard_normal(24) * np.sqrt(1 - 0.8**2)
            noise[0] = rng.standard_normal()
            for k in range(1, 24):
                noise[k] = 0.8 * noise[k - 1] + shocks[k]
            frames.append(pd.DataFrame({
                "sensor_type": "vibration", "model": "prophet", "sensor_id": f"s{sensor}", "fold": fold,
                "role": role, "step": np.arange(1, 25), "yhat": 0.0, "actual": sd * noise, "yhat_lower": -1.2816,
                "yhat_upper": 1.2816, "in_fault": False,
            }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_sequential_calibration_reaches_nominal_coverage_through_a_variance_shift() -> None:
    """The error SD triples after the validation folds. Split-conformal on the validation folds keeps its old
    factor and covers far less than 80 % afterwards; the sequential calibration (recent folds weighted more, ACI
    level update) uses each fold's outcome before the next origin and gets back to nominal."""
    from core.ml.forecast.sequential import SequentialDesign, run_sequential, summarise

    rng = np.random.default_rng(5)
    roles = ["validation"] * 12 + ["test"] * 40
    folds = _shifting_folds(rng, [1.0] * 12 + [3.0] * 40, roles)
    split = fit_calibrations(folds[folds["role"] == "validation"], 0.8, horizon=24, buckets=3)
    later = calibrate_predictions(folds[folds["role"] == "test"], split, 0.8)
    assert coverage(later["actual"], later["yhat_lower"], later["yhat_upper"]) < 0.5

    def test_coverage(design: SequentialDesign) -> float:
        result = run_sequential(folds, design, base_interval=0.8, horizon=24, interval=0.8)
        return float(summarise(result.curve, "test")["coverage"].iloc[0])

    assert test_coverage(SequentialDesign(decay=0.7, gamma=0.1)) == pytest.approx(0.8, abs=0.04)
    # ACI alone (every earlier fold weighs the same): its long-run guarantee, |miss rate − α| ≤ (max(α₁, 1 − α₁) +
    # γ) / (γ T) over the T calibrated folds, here 1.2 / (0.2 × 51) ≈ 0.12, and in fact much closer
    aci = run_sequential(folds, SequentialDesign(decay=1.0, gamma=0.2), base_interval=0.8, horizon=24, interval=0.8)
    per_fold = aci.curve["covered"] / aci.curve["n"]
    assert abs(per_fold.mean() - 0.8) <= 1.2 / (0.2 * len(per_fold))
    assert test_coverage(SequentialDesign(decay=1.0, gamma=0.2)) == pytest.approx(0.8, abs=0.06)
    assert test_coverage(SequentialDesign(decay=1.0, gamma=0.0)) < 0.7  # without ACI nor decay: still lagging
    # the state after the last fold carries the ACI shift and the weights; it round-trips through the model's dict
    final = aci.final[("vibration", "prophet")]
    assert final.level_shift and final.weights is not None and final.n == 52 * 72
    assert IntervalCalibration.from_dict(final.to_dict()).factors(0.8) == pytest.approx(final.factors(0.8))


def test_weighted_quantile_and_level_shift() -> None:
    from core.ml.forecast.sequential import weighted_calibration

    scores = np.arange(10, dtype=float)  # 0..9
    flat = weighted_calibration(scores, np.ones(10, int), np.ones(10), base_interval=0.8, starts=(1,))
    assert flat.factors(0.8) == IntervalCalibration.pooled(0.8, scores).factors(0.8) == (8.0,)  # ⌈11 × 0.8⌉ = 9th
    # the newest half (5..9) weighs 1, the older half nearly nothing: the quantile comes from the newest scores
    recent = weighted_calibration(scores, np.ones(10, int), np.r_[[1e-6] * 5, [1.0] * 5], base_interval=0.8,
                                  starts=(1,))  # fmt: skip
    assert recent.factors(0.5) == (7.0,)  # cumulative weight reaches 0.5 × 6 = 3 at the third newest score
    shifted = weighted_calibration(scores, np.ones(10, int), np.ones(10), base_interval=0.8, starts=(1,),
                                   level_shift=((0.5, 0.1), (0.9, 0.0)))  # fmt: skip
    assert shifted.effective_level(0.5) == pytest.approx(0.6) and shifted.effective_level(0.7) == pytest.approx(0.75)
    assert shifted.factors(0.5) == flat.factors(0.6)
    assert shifted.effective_level(0.99) == pytest.approx(10 / 11)  # clipped to what the scores can reach


def test_the_design_is_chosen_on_the_validation_folds_only() -> None:
    from core.ml.forecast.sequential import SequentialDesign, choose_design

    def rows(design: SequentialDesign, val: float, test: float) -> list[dict]:
        base = {"design": design.label, "decay": design.decay, "gamma": design.gamma, "buckets": design.buckets,
                "sensor_type": "t", "model": "naive", "width": 1.0, "n": 72}  # fmt: skip
        return [base | {"role": "validation", "coverage": val}, base | {"role": "test", "coverage": test}]

    a, b = SequentialDesign(1.0, 0.0, 3), SequentialDesign(0.7, 0.1, 3)
    table = pd.DataFrame(rows(a, 0.79, 0.60) + rows(b, 0.70, 0.80))
    assert choose_design(table, 0.8) == a  # b is better on the test folds, which choose nothing
    tied = pd.DataFrame(rows(b, 0.81, 0.8) + rows(a, 0.79, 0.8))
    assert choose_design(tied, 0.8) == a  # a tie goes to the simpler design


def test_the_served_pyfunc_applies_a_sequential_calibration_state() -> None:
    """The model carries the calibration as of training end (weighted scores + ACI shift); what it serves is that
    state applied to the method's raw interval, the same function the backtest measured."""
    from core.ml.forecast.sequential import weighted_calibration

    rng = np.random.default_rng(2)
    scores, steps = rng.normal(0.3, 0.4, 300), rng.integers(1, 25, 300)
    state = weighted_calibration(scores, steps, 0.8 ** rng.integers(0, 5, 300), base_interval=0.8,
                                 starts=(1, 9, 17), level_shift=((0.8, 0.05), (0.9, 0.02)))  # fmt: skip
    model = pickle.loads(pickle.dumps(ForecastModel("naive", {}, FREQ.total_seconds(), "vibration",
                                                    calibration=state)))  # fmt: skip
    history = _history()
    out = model.predict(None, history, {"horizon": 24, "interval": 0.8})
    raw = make_forecaster("naive", {}, FREQ).fit(history["timestamp"], history["value"]).predict(24, 0.8)
    lower, upper = state.apply(raw["yhat"], raw["yhat_lower"], raw["yhat_upper"], 0.8, np.arange(1, 25))
    assert out["yhat_lower"].to_numpy() == pytest.approx(lower) and out["yhat_upper"].to_numpy() == pytest.approx(upper)
    assert not np.allclose(lower, raw["yhat_lower"])
    metadata = calibration_metadata(model)["interval_calibration"]
    assert metadata["level_shift"] == {"0.8": 0.05, "0.9": 0.02}
    assert metadata["factors"]["0.8"] == pytest.approx(state.factors(0.8), abs=1e-6)
