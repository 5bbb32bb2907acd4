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
