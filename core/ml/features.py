"""Per-sensor feature engineering for readings: ``SensorFeatureTransformer`` (scikit-learn compatible).

Input: a DataFrame with columns ``sensor_id``, ``timestamp`` (datetime, UTC-aware or naive), ``value`` and
optionally ``sensor_type`` (ignored by the features; kept for callers that pass whole readings frames). Rows may
come in any order and sensors may be interleaved: features are computed per sensor on its rows sorted by time,
and returned in the input's row order (one output row per input row).

Features per row, all from the sensor's own rows at or before the row (never a later row, never another sensor):

``value``                     the reading (gap-filled, see below)
``lag_1`` … ``lag_<n>``       the sensor's previous values; before the sensor's ``k``-th row ``lag_k`` is the
                              sensor's first value (no earlier value exists)
``roll_{mean,std,min,max}_<w>`` over the last ``w`` rows including the current one (fewer at the start; the std
                              of a single row is 0)
``dev_mean_<w>``              ``value - roll_mean_<w>``
``rate_of_change``            ``(value - previous value) / seconds between them`` (0 for the first row or equal
                              timestamps)
``tod_sin``, ``tod_cos``      time of day as a point on the unit circle (``2π · hour / 24``, UTC)

Gaps: a missing ``value`` (NaN) is filled forward, then backward, within its sensor only. The backward fill only
touches a sensor's *leading* NaNs (everything after the first value is forward-filled), which take the sensor's
first observed value; a sensor without any value keeps NaN features, which the scaler output turns into 0
(the training centre). Scaling (``"standard"``, ``"robust"`` or ``None``) is fitted in ``fit`` only and applied
unchanged in ``transform``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

REQUIRED_COLUMNS: tuple[str, ...] = ("sensor_id", "timestamp", "value")
SCALERS = ("standard", "robust")


def _check_frame(X: object) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"SensorFeatureTransformer needs a pandas DataFrame, got {type(X).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in X.columns]
    if missing:
        raise ValueError(f"SensorFeatureTransformer: missing columns {missing}")
    return X


def _time_seconds(timestamps: pd.Series) -> NDArray[np.float64]:
    ts = pd.to_datetime(timestamps, utc=True)
    seconds: NDArray[np.float64] = (ts - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    return seconds


# scikit-learn ships no type information, so its base classes are Any to mypy
class SensorFeatureTransformer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Lag, rolling-window, rate-of-change and time-of-day features per sensor (see the module docstring).

    Parameters
    ----------
    lags: number of lag features (``lag_1`` … ``lag_<lags>``); 0 for none.
    windows: rolling window lengths in rows.
    rate_of_change, time_of_day, deviation: include those feature groups.
    scaler: ``"standard"``, ``"robust"`` or ``None``; fitted on the data given to ``fit``.
    """

    def __init__(
        self,
        lags: int = 5,
        windows: Sequence[int] = (6, 12),
        rate_of_change: bool = True,
        time_of_day: bool = True,
        deviation: bool = True,
        scaler: str | None = "standard",
    ) -> None:
        self.lags = lags
        self.windows = windows
        self.rate_of_change = rate_of_change
        self.time_of_day = time_of_day
        self.deviation = deviation
        self.scaler = scaler

    # --- configuration ---------------------------------------------------------------------------------
    def _validate_params_(self) -> None:
        if int(self.lags) < 0:
            raise ValueError("lags must be >= 0")
        if any(int(w) < 1 for w in self.windows):
            raise ValueError("windows must be positive row counts")
        if self.scaler is not None and self.scaler not in SCALERS:
            raise ValueError(f"scaler must be one of {SCALERS} or None, got {self.scaler!r}")

    def _names(self) -> list[str]:
        names = ["value"] + [f"lag_{k}" for k in range(1, int(self.lags) + 1)]
        for w in self.windows:
            names += [f"roll_mean_{w}", f"roll_std_{w}", f"roll_min_{w}", f"roll_max_{w}"]
            if self.deviation:
                names.append(f"dev_mean_{w}")
        if self.rate_of_change:
            names.append("rate_of_change")
        if self.time_of_day:
            names += ["tod_sin", "tod_cos"]
        return names

    @property
    def warmup_rows(self) -> int:
        """Rows of a sensor's history a row needs for all its features to be fully defined."""
        return max([int(self.lags), *[int(w) - 1 for w in self.windows], 1 if self.rate_of_change else 0])

    # --- the unscaled features -------------------------------------------------------------------------
    def compute(self, X: pd.DataFrame) -> pd.DataFrame:
        """The unscaled features of ``X`` as a DataFrame (columns ``get_feature_names_out()``, X's index)."""
        self._validate_params_()
        X = _check_frame(X)
        n = len(X)
        names = self._names()
        if n == 0:
            return pd.DataFrame(np.empty((0, len(names))), columns=names, index=X.index)
        frame = pd.DataFrame(
            {
                "sensor_id": X["sensor_id"].astype(str).to_numpy(),
                "t": _time_seconds(X["timestamp"]),
                "value": pd.to_numeric(X["value"], errors="coerce").to_numpy(dtype=float),
                "pos": np.arange(n),
            }
        )
        frame = frame.sort_values(["sensor_id", "t", "pos"], kind="stable", ignore_index=True)
        groups = frame.groupby("sensor_id", sort=False)
        value = groups["value"].ffill()
        value = value.groupby(frame["sensor_id"], sort=False).bfill()
        out: dict[str, np.ndarray] = {"value": value.to_numpy()}
        by_sensor = value.groupby(frame["sensor_id"], sort=False)
        first = by_sensor.transform("first")
        for k in range(1, int(self.lags) + 1):
            out[f"lag_{k}"] = by_sensor.shift(k).fillna(first).to_numpy()
        for w in self.windows:
            w = int(w)
            rolling = by_sensor.rolling(w, min_periods=1)
            mean = rolling.mean().reset_index(level=0, drop=True).sort_index().to_numpy()
            std = rolling.std(ddof=0).reset_index(level=0, drop=True).sort_index().to_numpy()
            out[f"roll_mean_{w}"] = mean
            out[f"roll_std_{w}"] = np.where(np.isnan(std) & ~np.isnan(mean), 0.0, std)
            out[f"roll_min_{w}"] = rolling.min().reset_index(level=0, drop=True).sort_index().to_numpy()
            out[f"roll_max_{w}"] = rolling.max().reset_index(level=0, drop=True).sort_index().to_numpy()
            if self.deviation:
                out[f"dev_mean_{w}"] = out["value"] - mean
        if self.rate_of_change:
            dv = by_sensor.diff().to_numpy()
            dt = frame["t"].groupby(frame["sensor_id"], sort=False).diff().to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where((dt > 0) & ~np.isnan(dv), dv / dt, 0.0)
            out["rate_of_change"] = np.where(np.isnan(out["value"]), np.nan, rate)
        if self.time_of_day:
            hours = (frame["t"].to_numpy() % 86400.0) / 3600.0
            out["tod_sin"] = np.sin(2 * np.pi * hours / 24.0)
            out["tod_cos"] = np.cos(2 * np.pi * hours / 24.0)
        features = pd.DataFrame(out, columns=names)
        # back to the input's row order
        order = np.empty(n, dtype=np.int64)
        order[frame["pos"].to_numpy()] = np.arange(n)
        features = features.iloc[order].reset_index(drop=True)
        features.index = X.index
        return features

    # --- scikit-learn API -------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: object = None) -> SensorFeatureTransformer:
        features = self.compute(X)
        self.feature_names_out_ = np.asarray(features.columns, dtype=object)
        self.n_features_in_ = len(REQUIRED_COLUMNS)
        if self.scaler is None:
            self.scaler_ = None
        else:
            scaler = StandardScaler() if self.scaler == "standard" else RobustScaler()
            usable = features.dropna()
            if usable.empty:
                raise ValueError("SensorFeatureTransformer.fit: no row with all features defined")
            self.scaler_ = scaler.fit(usable.to_numpy())
        return self

    def transform(self, X: pd.DataFrame) -> NDArray[np.float64]:
        check_is_fitted(self, "feature_names_out_")
        features: NDArray[np.float64] = self.compute(X).to_numpy(dtype=float)
        if self.scaler_ is not None and len(features):
            features = self.scaler_.transform(features)
        if self.scaler_ is not None:
            features = np.nan_to_num(features, nan=0.0)
        return features

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


__all__ = ["REQUIRED_COLUMNS", "SCALERS", "SensorFeatureTransformer"]
