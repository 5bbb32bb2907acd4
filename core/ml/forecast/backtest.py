"""Rolling-origin backtest of the forecasters and its error metrics.

**Folds.** ``n_folds`` cut-offs, ``step`` slots apart (default: the horizon, so target windows do not overlap),
the last one ``horizon`` slots before the end of the data. A fold's history is every reading at or before its
cut-off; its targets are the ``horizon`` slots after it. The first ``n_validation`` folds are *validation* folds
(hyperparameters and the registered method are chosen on them), the later ones are *test* folds (reported, never
used for choosing). :func:`check_folds` asserts that every test target comes after every validation target.

**Metrics** (per sensor type, pooled over its sensors, folds and horizon steps): MAE, RMSE, sMAPE (%, the
symmetric ``2|y − ŷ| / (|y| + |ŷ|)``), interval coverage, and skill against the seasonal naive forecast,
``1 − MAE_model / MAE_naive`` on the same target points (negative: worse than naive). Target readings inside an
injected fault window (``data/sensor_data_faults.csv``) are **excluded** from the metrics by default
(``exclude_faults``): a forecaster is not expected to predict a drift or a stuck sensor, and the anomaly models
are there to catch them. Faults inside a fold's *history* stay in it (as they would in production).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from core.ml.datasets import fault_mask
from core.ml.forecast.models import DEFAULT_INTERVAL, make_forecaster

VALIDATION, TEST = "validation", "test"


@dataclass(frozen=True)
class Fold:
    index: int
    cutoff: pd.Timestamp  # last history timestamp
    role: str  # VALIDATION | TEST
    horizon: int
    freq: pd.Timedelta

    @property
    def first_target(self) -> pd.Timestamp:
        return self.cutoff + self.freq

    @property
    def last_target(self) -> pd.Timestamp:
        return self.cutoff + self.horizon * self.freq


@dataclass(frozen=True)
class ModelSpec:
    """One candidate: ``label`` names it in tables (``naive``, ``prophet``, ``lightgbm#3`` …)."""

    label: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)


def make_folds(
    end: pd.Timestamp,
    *,
    horizon: int,
    n_folds: int,
    n_validation: int,
    freq: pd.Timedelta,
    step: int | None = None,
) -> list[Fold]:
    """``n_folds`` rolling origins ending at ``end``, oldest first; the first ``n_validation`` are validation."""
    if horizon < 1 or n_folds < 2:
        raise ValueError("need horizon >= 1 and n_folds >= 2")
    if not 1 <= n_validation < n_folds:
        raise ValueError(f"n_validation must be in [1, {n_folds - 1}], got {n_validation}")
    step = step or horizon
    if step < horizon:
        raise ValueError("step < horizon would let validation targets overlap test targets")
    folds = []
    for i in range(n_folds):
        cutoff = end - freq * (horizon + step * (n_folds - 1 - i))
        role = VALIDATION if i < n_validation else TEST
        folds.append(Fold(i, cutoff, role, horizon, freq))
    check_folds(folds)
    return folds


def check_folds(folds: Sequence[Fold]) -> None:
    """Raise unless the folds are ordered by cut-off and every test target follows every validation target."""
    cutoffs = [f.cutoff for f in folds]
    if cutoffs != sorted(cutoffs) or len(set(cutoffs)) != len(cutoffs):
        raise ValueError("fold cut-offs must be strictly increasing")
    val = [f for f in folds if f.role == VALIDATION]
    test = [f for f in folds if f.role == TEST]
    if val and test and max(f.last_target for f in val) >= min(f.first_target for f in test):
        raise ValueError("validation targets overlap the test targets")
    if val and test and max(f.index for f in val) > min(f.index for f in test):
        raise ValueError("validation folds must come before the test folds")


def select_sensors(
    readings: pd.DataFrame, sensor_types: Iterable[str] | None = None, max_sensors_per_type: int | None = None
) -> pd.DataFrame:
    """The readings of the chosen types, at most ``max_sensors_per_type`` sensors each (lowest ids).

    ``sensor_types`` may be a list or a string (``"vibration,pressure"`` or ``'["vibration"]'``, as papermill's
    ``-p`` passes it); an unknown type raises ValueError."""
    frame = readings
    if isinstance(sensor_types, str):
        text = sensor_types.strip().strip("[]")
        sensor_types = [t.strip().strip("'\"") for t in text.split(",") if t.strip().strip("'\"")]
    if sensor_types is not None:
        unknown = sorted(set(sensor_types) - set(readings["sensor_type"].unique()))
        if unknown:
            raise ValueError(f"no readings of sensor types {unknown}")
        frame = frame[frame["sensor_type"].isin(list(sensor_types))]
    if max_sensors_per_type is not None:
        keep = (
            frame[["sensor_type", "sensor_id"]]
            .drop_duplicates()
            .sort_values(["sensor_type", "sensor_id"])
            .groupby("sensor_type")
            .head(max_sensors_per_type)["sensor_id"]
        )
        frame = frame[frame["sensor_id"].isin(keep)]
    return frame.reset_index(drop=True)


def backtest(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None,
    folds: Sequence[Fold],
    specs: Sequence[ModelSpec] | dict[str, Sequence[ModelSpec]],
    *,
    interval: float | None = DEFAULT_INTERVAL,
    progress: bool = True,
    desc: str = "backtest",
) -> pd.DataFrame:
    """Forecasts of every spec for every sensor and fold, with the actual values.

    ``specs`` is one list for all sensors or a dict by sensor type. Returns one row per (sensor, fold, model,
    step): ``sensor_id, sensor_type, fold, role, cutoff, model, method, step, timestamp, yhat, yhat_lower,
    yhat_upper, actual`` (NaN where no reading exists), ``in_fault``.
    """
    from tqdm.auto import tqdm

    freq = folds[0].freq
    frame = readings.loc[:, ["sensor_id", "sensor_type", "timestamp", "value"]].copy()
    frame["in_fault"] = fault_mask(readings, faults).to_numpy()
    sensors = frame.groupby("sensor_id", sort=True)
    total = sum(
        len(specs if not isinstance(specs, dict) else specs.get(g["sensor_type"].iloc[0], []))
        for _, g in sensors
    ) * len(folds)
    rows = []
    with tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        for sensor_id, group in sensors:
            sensor_type = str(group["sensor_type"].iloc[0])
            sensor_specs = specs.get(sensor_type, []) if isinstance(specs, dict) else specs
            actual = group.set_index("timestamp")
            for fold in folds:
                history = group[group["timestamp"] <= fold.cutoff]
                for spec in sensor_specs:
                    forecaster = make_forecaster(spec.method, spec.params, freq)
                    out = forecaster.fit(history["timestamp"], history["value"]).predict(
                        fold.horizon, interval
                    )
                    out["actual"] = actual["value"].reindex(out["timestamp"]).to_numpy()
                    out["in_fault"] = (
                        actual["in_fault"].reindex(out["timestamp"]).fillna(False).to_numpy(bool)
                    )
                    out = out.assign(
                        sensor_id=sensor_id,
                        sensor_type=sensor_type,
                        fold=fold.index,
                        role=fold.role,
                        cutoff=fold.cutoff,
                        model=spec.label,
                        method=spec.method,
                        step=np.arange(1, len(out) + 1),
                    )
                    rows.append(out)
                    bar.update(1)
    columns = ["sensor_id", "sensor_type", "fold", "role", "cutoff", "model", "method", "step", "timestamp"]
    columns += ["yhat", "yhat_lower", "yhat_upper", "actual", "in_fault"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True).loc[:, columns]


def scored(predictions: pd.DataFrame, exclude_faults: bool = True) -> pd.DataFrame:
    """The rows that count: an actual reading exists and (by default) it is outside every fault window."""
    keep = predictions["actual"].notna()
    if exclude_faults:
        keep &= ~predictions["in_fault"].astype(bool)
    return predictions[keep]


def error_metrics(
    actual: ArrayLike, yhat: ArrayLike, lower: ArrayLike | None = None, upper: ArrayLike | None = None
) -> dict[str, float]:
    y, y_hat = np.asarray(actual, float), np.asarray(yhat, float)
    err = y - y_hat
    denom = np.abs(y) + np.abs(y_hat)
    smape = np.where(denom > 0, 2.0 * np.abs(err) / np.where(denom > 0, denom, 1.0), 0.0)
    out = {
        "mae": float(np.mean(np.abs(err))) if err.size else float("nan"),
        "rmse": float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        "smape": float(100.0 * np.mean(smape)) if err.size else float("nan"),
        "n": float(err.size),
    }
    coverage = float("nan")
    if lower is not None and upper is not None:
        low, high = np.asarray(lower, float), np.asarray(upper, float)
        has = np.isfinite(low) & np.isfinite(high)
        if has.any():
            coverage = float(np.mean((y[has] >= low[has]) & (y[has] <= high[has])))
    out["coverage"] = coverage
    return out


def score_table(
    predictions: pd.DataFrame,
    by: Sequence[str] = ("sensor_type", "model"),
    *,
    exclude_faults: bool = True,
    baseline: str = "naive",
) -> pd.DataFrame:
    """MAE, RMSE, sMAPE, coverage, n per group, and ``skill`` = 1 − MAE / MAE of ``baseline`` on the same
    points (groups without the baseline get NaN)."""
    rows = scored(predictions, exclude_faults)
    records = []
    for key, group in rows.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        metrics = error_metrics(group["actual"], group["yhat"], group["yhat_lower"], group["yhat_upper"])
        records.append(dict(zip(by, key, strict=True)) | metrics)
    table = pd.DataFrame(records, columns=[*by, "mae", "rmse", "smape", "coverage", "n"])
    if "model" in by and not table.empty:
        keys = [c for c in by if c != "model"]
        points = ["sensor_id", "fold", "step"]
        base = rows[rows["model"] == baseline][[*keys, *points, "actual", "yhat"]]
        skills = []
        for record in table.itertuples(index=False):
            sel = rows["model"] == record.model
            for k in keys:
                sel &= rows[k] == getattr(record, k)
            merged = rows[sel][[*keys, *points, "actual", "yhat"]].merge(
                base, on=[*keys, *points], suffixes=("", "_base")
            )
            base_mae = (
                float(np.mean(np.abs(merged["actual_base"] - merged["yhat_base"]))) if len(merged) else 0
            )
            mae = float(np.mean(np.abs(merged["actual"] - merged["yhat"]))) if len(merged) else np.nan
            skills.append(1.0 - mae / base_mae if base_mae > 0 else np.nan)
        table["skill"] = skills
    return table


def error_by_horizon(predictions: pd.DataFrame, exclude_faults: bool = True) -> pd.DataFrame:
    """MAE per sensor type, model and horizon step."""
    rows = scored(predictions, exclude_faults)
    table = rows.assign(abs_err=(rows["actual"] - rows["yhat"]).abs())
    return (
        table.groupby(["sensor_type", "model", "step"], as_index=False)["abs_err"]
        .mean()
        .rename(columns={"abs_err": "mae"})
    )
