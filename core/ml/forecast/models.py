"""Forecasters for one sensor's series: seasonal naive, Prophet and LightGBM on lag features.

Every forecaster has the same two steps: ``fit(timestamps, values)`` on one sensor's history, then
``predict(horizon, interval)`` → DataFrame[``timestamp``, ``yhat``, ``yhat_lower``, ``yhat_upper``] for the
``horizon`` slots after the last history timestamp, at the forecaster's frequency (5 minutes for the demo fleet).

* **Seasonal naive** (``naive``): the value one season (one day = 288 slots at 5 minutes) before each target slot.
  Interval: the empirical ``(1 ± interval) / 2`` quantiles of the history's one-season differences
  ``y[t] − y[t − season]`` (these *are* the method's errors at every horizon up to a season). A history shorter
  than a season + 1 falls back to the last value, with the lag-1 differences scaled by √k as interval.
* **Prophet** (``prophet``): daily seasonality only (the data span two days), linear trend;
  ``changepoint_prior_scale`` and ``seasonality_prior_scale`` are the tuned hyperparameters; intervals from
  Prophet's own simulation (``interval_width`` = ``interval``). cmdstanpy's logging is silenced.
* **LightGBM** (``lightgbm``): a regressor on the lag features of :mod:`core.ml.forecast.features` (lags, rolling
  mean/std, the value one day earlier, time of day), **recursive** multi-step: the one-step model's prediction is
  appended to the series and the next slot's features are built from it. Interval: signed residual quantiles of
  recursive forecasts made by a calibration model fitted on the history minus its last ``n_calibration`` ×
  ``horizon`` slots, from ``n_calibration`` origins inside that held-back tail (out-of-sample errors of the same
  recursion; in-sample tree residuals would be far too narrow).

Gaps (a sensor's dropout) are handled on the regular grid: model inputs are linearly interpolated across a gap,
but only observed slots are training targets (Prophet is fitted on observed slots only).

:func:`make_forecaster` builds one from ``(method, params)``; the registered ``forecast_<sensor_type>`` pyfunc
(:mod:`core.ml.forecast.pyfunc`) stores exactly that pair plus the frequency, and refits on the history it is
given. :data:`PROMOTION_METRIC` and :func:`evaluate_for_promotion` are what
``core.ml.registry.promotion.promote_if_better`` uses for ``forecast_*`` models; both it and the training run score
with :func:`latest_fold_mae` (MAE on the latest backtest fold).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from core.ml import datasets
from core.ml.forecast.features import LagFeatureConfig, feature_matrix, feature_row

METHODS: tuple[str, ...] = ("naive", "prophet", "lightgbm")
DEFAULT_FREQ = pd.Timedelta(minutes=5)
DEFAULT_HORIZON = 24
DEFAULT_INTERVAL = 0.8
#: (metric, higher_is_better) for ``promote_if_better``: MAE on the latest backtest fold.
PROMOTION_METRIC: tuple[str, bool] = ("mae", False)

PROPHET_DEFAULTS: dict[str, float] = {"changepoint_prior_scale": 0.05, "seasonality_prior_scale": 10.0}
LIGHTGBM_DEFAULTS: dict[str, float] = {
    "num_leaves": 15,
    "learning_rate": 0.05,
    "n_estimators": 200,
    "min_child_samples": 20,
}
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "naive": {},
    "prophet": PROPHET_DEFAULTS,
    "lightgbm": LIGHTGBM_DEFAULTS,
}
OUTPUT_COLUMNS: tuple[str, ...] = ("timestamp", "yhat", "yhat_lower", "yhat_upper")


def infer_frequency(timestamps: pd.Series | pd.DatetimeIndex) -> pd.Timedelta:
    """The most common spacing of consecutive timestamps (the data's cadence)."""
    diffs = pd.Series(pd.DatetimeIndex(timestamps).sort_values()).diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        raise ValueError("need at least two distinct timestamps to infer the frequency")
    return pd.Timedelta(diffs.mode().iloc[0])


def season_steps(freq: pd.Timedelta) -> int:
    """Slots in one day at ``freq`` (288 at 5 minutes)."""
    return int(pd.Timedelta(days=1) // freq)


def regular_series(
    timestamps: Sequence[pd.Timestamp] | pd.Series, values: Sequence[float] | pd.Series, freq: pd.Timedelta
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """One sensor's readings on the regular grid from its first to its last timestamp.

    Returns ``(grid, filled, observed)``: ``filled`` linearly interpolated across gaps (model inputs),
    ``observed`` a mask of the slots that hold a real reading (the only training targets).
    """
    index = pd.DatetimeIndex(timestamps)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    series = pd.Series(np.asarray(values, dtype=float), index=index)
    series = series[~series.index.duplicated(keep="last")].sort_index()
    if series.empty:
        raise ValueError("empty history")
    grid = pd.date_range(series.index[0], series.index[-1], freq=freq)
    on_grid = series.reindex(grid)
    observed = on_grid.notna().to_numpy()
    if not observed.any():
        raise ValueError("no reading falls on the regular grid; is the frequency right?")
    filled = on_grid.interpolate(limit_direction="both").to_numpy()
    return grid, filled, observed


def _interval_frame(
    times: pd.DatetimeIndex, yhat: np.ndarray, lower: np.ndarray | None, upper: np.ndarray | None
) -> pd.DataFrame:
    if lower is None or upper is None:
        lower = upper = np.full(len(times), np.nan)
    return pd.DataFrame(
        {
            "timestamp": times,
            "yhat": np.asarray(yhat, float),
            "yhat_lower": np.minimum(lower, yhat),
            "yhat_upper": np.maximum(upper, yhat),
        }
    )


def _quantiles(residuals: np.ndarray, interval: float) -> tuple[float, float]:
    residuals = residuals[np.isfinite(residuals)]
    if residuals.size == 0:
        return 0.0, 0.0
    lo, hi = np.quantile(residuals, [(1.0 - interval) / 2.0, (1.0 + interval) / 2.0])
    return float(lo), float(hi)


def _check_interval(interval: float) -> float:
    interval = float(interval)
    if not 0.0 < interval < 1.0:
        raise ValueError(f"interval must be in (0, 1), got {interval}")
    return interval


class Forecaster:
    """Base: stores the history on the regular grid; subclasses implement ``_fit`` and ``_predict``."""

    method = "base"

    def __init__(self, freq: pd.Timedelta = DEFAULT_FREQ, **params: Any) -> None:
        self.freq = pd.Timedelta(freq)
        self.season = season_steps(self.freq)
        self.params = dict(params)

    def fit(self, timestamps: Sequence[pd.Timestamp] | pd.Series, values: Sequence[float]) -> Forecaster:
        self.grid_, self.values_, self.observed_ = regular_series(timestamps, values, self.freq)
        self._fit()
        return self

    def future_times(self, horizon: int) -> pd.DatetimeIndex:
        return pd.date_range(self.grid_[-1] + self.freq, periods=int(horizon), freq=self.freq)

    def predict(
        self, horizon: int = DEFAULT_HORIZON, interval: float | None = DEFAULT_INTERVAL
    ) -> pd.DataFrame:
        """Forecast of the ``horizon`` slots after the history. ``interval`` None means "no interval needed":
        LightGBM then skips its calibration fit and returns NaN bounds (the others return their 0.8 interval)."""
        if int(horizon) < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        return self._predict(int(horizon), None if interval is None else _check_interval(interval))

    def _fit(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(self, horizon: int, interval: float | None) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError


class SeasonalNaiveForecaster(Forecaster):
    method = "naive"

    def _fit(self) -> None:
        y, obs, s = self.values_, self.observed_, self.season
        self.seasonal_ = len(y) > s
        if self.seasonal_:
            both = obs[s:] & obs[:-s]
            self.residuals_ = (y[s:] - y[:-s])[both]
        else:
            both = obs[1:] & obs[:-1]
            self.residuals_ = (y[1:] - y[:-1])[both]

    def _predict(self, horizon: int, interval: float | None) -> pd.DataFrame:
        y, n, s = self.values_, len(self.values_), self.season
        steps = np.arange(1, horizon + 1)
        lo, hi = _quantiles(self.residuals_, interval or DEFAULT_INTERVAL)
        if self.seasonal_:
            back = s * np.ceil(steps / s).astype(int)
            yhat = y[n - 1 + steps - back]
            return _interval_frame(self.future_times(horizon), yhat, yhat + lo, yhat + hi)
        yhat = np.full(horizon, y[-1])
        scale = np.sqrt(steps)
        return _interval_frame(self.future_times(horizon), yhat, yhat + lo * scale, yhat + hi * scale)


def _quiet_prophet() -> type:
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("cmdstanpy").disabled = True
    from prophet import Prophet

    return Prophet


class ProphetForecaster(Forecaster):
    method = "prophet"

    def _fit(self) -> None:
        prophet_cls = _quiet_prophet()
        params = {**PROPHET_DEFAULTS, **self.params}
        self.model_ = prophet_cls(
            growth="linear",
            daily_seasonality=True,
            weekly_seasonality=False,
            yearly_seasonality=False,
            changepoint_prior_scale=float(params["changepoint_prior_scale"]),
            seasonality_prior_scale=float(params["seasonality_prior_scale"]),
            uncertainty_samples=int(params.get("uncertainty_samples", 300)),
        )
        frame = pd.DataFrame(
            {
                "ds": self.grid_[self.observed_].tz_convert("UTC").tz_localize(None),
                "y": self.values_[self.observed_],
            }
        )
        if len(frame) < 2:
            raise ValueError("Prophet needs at least two readings")
        self.model_.fit(frame)

    def _predict(self, horizon: int, interval: float | None) -> pd.DataFrame:
        times = self.future_times(horizon)
        self.model_.interval_width = interval or DEFAULT_INTERVAL
        # Prophet samples its interval from NumPy's global generator: seed it (and restore it) so that the same
        # history gives the same interval.
        state = np.random.get_state()
        np.random.seed(int(self.params.get("seed", 0)))
        try:
            out = self.model_.predict(pd.DataFrame({"ds": times.tz_convert("UTC").tz_localize(None)}))
        finally:
            np.random.set_state(state)
        return _interval_frame(
            times, out["yhat"].to_numpy(), out["yhat_lower"].to_numpy(), out["yhat_upper"].to_numpy()
        )


class LightGBMForecaster(Forecaster):
    method = "lightgbm"

    def __init__(self, freq: pd.Timedelta = DEFAULT_FREQ, **params: Any) -> None:
        super().__init__(freq, **params)
        self.n_calibration = int(self.params.pop("n_calibration", 3))
        self.features = LagFeatureConfig(season=self.season)

    def _regressor(self) -> Any:
        import lightgbm as lgb

        params = {**LIGHTGBM_DEFAULTS, **self.params}
        return lgb.LGBMRegressor(
            num_leaves=int(params["num_leaves"]),
            learning_rate=float(params["learning_rate"]),
            n_estimators=int(params["n_estimators"]),
            min_child_samples=int(params["min_child_samples"]),
            subsample_freq=0,
            random_state=0,
            n_jobs=1,
            verbose=-1,
        )

    def _train(self, end: int) -> Any | None:
        """A one-step model on the slots before ``end`` (None when too few rows)."""
        X = feature_matrix(self.values_[:end], self.grid_[:end], self.features)
        rows = self.observed_[:end].copy()
        rows[: self.features.min_history] = False
        if rows.sum() < 10:
            return None
        return self._regressor().fit(X[rows], self.values_[:end][rows])

    def _recursive(self, model: Any, end: int, horizon: int) -> np.ndarray:
        """Forecast slots ``end .. end + horizon - 1`` from ``values[:end]``, feeding predictions back."""
        buffer = list(self.values_[:end])
        times = self.grid_[0] + self.freq * np.arange(end, end + horizon)
        out = np.empty(horizon)
        for k in range(horizon):
            row = feature_row(np.asarray(buffer), times[k], self.features)
            out[k] = float(model.predict(row.reshape(1, -1))[0])
            buffer.append(out[k])
        return out

    def _fit(self) -> None:
        self.model_ = self._train(len(self.values_))
        if self.model_ is None:
            raise ValueError(
                f"LightGBM needs at least {self.features.min_history + 10} readings, got {len(self.values_)}"
            )
        self._residuals: dict[int, np.ndarray] = {}

    def calibration_residuals(self, horizon: int) -> np.ndarray:
        """Signed errors (actual − forecast) of recursive forecasts from origins in the held-back tail."""
        if horizon in self._residuals:
            return self._residuals[horizon]
        n = len(self.values_)
        residuals: list[np.ndarray] = []
        for n_cal in range(self.n_calibration, 0, -1):
            start = n - n_cal * horizon
            model = self._train(start) if start > self.features.min_history else None
            if model is None:
                continue
            for origin in range(start, n, horizon):
                steps = min(horizon, n - origin)
                pred = self._recursive(model, origin, steps)
                actual = self.values_[origin : origin + steps]
                mask = self.observed_[origin : origin + steps]
                residuals.append((actual - pred)[mask])
            break
        self._residuals[horizon] = np.concatenate(residuals) if residuals else np.zeros(0)
        return self._residuals[horizon]

    def _predict(self, horizon: int, interval: float | None) -> pd.DataFrame:
        yhat = self._recursive(self.model_, len(self.values_), horizon)
        if interval is None:
            return _interval_frame(self.future_times(horizon), yhat, None, None)
        lo, hi = _quantiles(self.calibration_residuals(horizon), interval)
        return _interval_frame(self.future_times(horizon), yhat, yhat + lo, yhat + hi)


FORECASTERS: dict[str, type[Forecaster]] = {
    "naive": SeasonalNaiveForecaster,
    "prophet": ProphetForecaster,
    "lightgbm": LightGBMForecaster,
}


def make_forecaster(
    method: str, params: Mapping[str, Any] | None = None, freq: pd.Timedelta = DEFAULT_FREQ
) -> Forecaster:
    if method not in FORECASTERS:
        raise ValueError(f"unknown forecasting method {method!r}; expected one of {METHODS}")
    return FORECASTERS[method](freq, **dict(params or {}))


def evaluate_for_promotion(
    model: Any,
    model_name: str,
    *,
    data_path: str | PathLike[str] | None = None,
    faults_path: str | PathLike[str] | None = None,
    horizon: int = DEFAULT_HORIZON,
) -> float:
    """MAE of ``model`` (a ``forecast_<sensor_type>`` pyfunc) on the latest backtest fold of
    ``data/sensor_data.csv``: each sensor of the type is given its history up to ``horizon`` slots before the end
    and forecasts them; readings inside injected fault windows are not scored. Lower is better."""
    sensor_type = model_name.removeprefix("forecast_")
    readings = datasets.load_sensor_csv(data_path or datasets.DEFAULT_READINGS_PATH)
    faults = datasets.load_fault_labels(faults_path or datasets.DEFAULT_FAULTS_PATH)
    return latest_fold_mae(model, readings, faults, sensor_type, horizon=horizon)


def latest_fold_mae(
    model: Any, readings: pd.DataFrame, faults: pd.DataFrame | None, sensor_type: str, *, horizon: int
) -> float:
    """MAE of a ``forecast_<type>`` pyfunc on the last ``horizon`` slots of the data (the latest backtest
    fold): one ``predict`` call with every sensor of the type's history up to the cut-off; readings inside fault
    windows are not scored."""
    frame = readings[readings["sensor_type"] == sensor_type]
    if frame.empty:
        raise ValueError(f"no readings of sensor type {sensor_type!r}")
    freq = infer_frequency(frame["timestamp"])
    cutoff = frame["timestamp"].max() - horizon * freq
    history = frame[frame["timestamp"] <= cutoff][["sensor_id", "timestamp", "value"]]
    history = history.astype({"sensor_id": object, "value": "float64"}).reset_index(drop=True)
    history["timestamp"] = history["timestamp"].astype("datetime64[ns, UTC]")
    out = model.predict(history, params={"horizon": int(horizon), "interval": DEFAULT_INTERVAL})
    actual = frame.assign(in_fault=datasets.fault_mask(frame, faults).to_numpy())
    actual = actual[~actual["in_fault"] & (actual["timestamp"] > cutoff)][["sensor_id", "timestamp", "value"]]
    actual = actual.astype({"sensor_id": object})
    actual["timestamp"] = actual["timestamp"].astype("datetime64[ns, UTC]")
    out = pd.DataFrame(out).astype({"sensor_id": object})
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    merged = out.merge(actual, on=["sensor_id", "timestamp"], how="inner")
    if merged.empty:
        raise ValueError(f"no scorable reading in the latest fold of {sensor_type!r}")
    return float(np.mean(np.abs(merged["value"] - merged["yhat"])))
