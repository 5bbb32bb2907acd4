"""Lag features for the LightGBM forecaster, built step by step so recursive forecasting uses exactly the
features the model was trained on.

A series here is one sensor on a regular grid (``core.ml.forecast.models.regular_series``): ``values[t]`` at
``times[t]``. The features of row ``t`` look only at ``values[:t]`` (strictly earlier slots) and at the time of
slot ``t`` itself, so a model trained on them never sees the value it predicts:

* ``lag_k`` = ``values[t - k]`` for each ``k`` in ``lags``;
* ``roll_mean_w`` / ``roll_std_w`` = mean / standard deviation of ``values[t - w : t]`` for each ``w`` in
  ``windows`` (fewer values at the start of a series; std NaN with fewer than two);
* ``season_lag`` = ``values[t - season]`` (NaN while the series is shorter than a season; LightGBM treats NaN as
  missing) — the value one day earlier;
* ``tod_sin`` / ``tod_cos`` = time of day on the unit circle.

:func:`feature_matrix` builds every row of a series at once (training); :func:`feature_row` builds the row of
the next slot from the values so far (recursive forecasting). ``tests/ml/test_forecast_models.py`` checks that
both agree and that changing ``values[t:]`` never changes row ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

_DAY_S = 86_400.0


@dataclass(frozen=True)
class LagFeatureConfig:
    lags: tuple[int, ...] = (1, 2, 3, 6, 12, 24)
    windows: tuple[int, ...] = (6, 24)
    season: int | None = 288

    @property
    def names(self) -> list[str]:
        names = [f"lag_{k}" for k in self.lags]
        for w in self.windows:
            names += [f"roll_mean_{w}", f"roll_std_{w}"]
        if self.season:
            names.append("season_lag")
        return [*names, "tod_sin", "tod_cos"]

    @property
    def min_history(self) -> int:
        """Slots needed before a row has every non-seasonal lag."""
        return max((*self.lags, *self.windows, 1))


def time_of_day(times: pd.DatetimeIndex | Sequence[pd.Timestamp]) -> tuple[np.ndarray, np.ndarray]:
    index = pd.DatetimeIndex(times)
    seconds = (
        index.hour.to_numpy() * 3600.0 + index.minute.to_numpy() * 60.0 + index.second.to_numpy()
    ).astype(float)
    angle = 2.0 * np.pi * seconds / _DAY_S
    return np.sin(angle), np.cos(angle)


def feature_matrix(values: np.ndarray, times: pd.DatetimeIndex, config: LagFeatureConfig) -> np.ndarray:
    """Features of every slot of a series (row ``t`` from ``values[:t]`` and ``times[t]`` only)."""
    series = pd.Series(np.asarray(values, dtype=float))
    past = series.shift(1)
    columns = [series.shift(k).to_numpy() for k in config.lags]
    for w in config.windows:
        rolling = past.rolling(w, min_periods=1)
        columns.append(rolling.mean().to_numpy())
        columns.append(past.rolling(w, min_periods=2).std(ddof=1).to_numpy())
    if config.season:
        columns.append(series.shift(config.season).to_numpy())
    sin, cos = time_of_day(times)
    columns += [sin, cos]
    return np.column_stack(columns)


def feature_row(history: np.ndarray, time: pd.Timestamp, config: LagFeatureConfig) -> np.ndarray:
    """Features of the slot after ``history`` (at ``time``), identical to that slot's row of
    :func:`feature_matrix` over ``history`` extended by it."""
    history = np.asarray(history, dtype=float)
    n = len(history)
    row = [history[n - k] if n >= k else np.nan for k in config.lags]
    for w in config.windows:
        window = history[max(0, n - w) :]
        row.append(float(np.mean(window)) if len(window) else np.nan)
        row.append(float(np.std(window, ddof=1)) if len(window) >= 2 else np.nan)
    if config.season:
        row.append(history[n - config.season] if n >= config.season else np.nan)
    sin, cos = time_of_day([time])
    row += [float(sin[0]), float(cos[0])]
    return np.asarray(row, dtype=float)
