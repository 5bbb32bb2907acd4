"""The ``forecast_<sensor_type>`` MLflow pyfunc (the ML contracts of issue 5; documented in docs/ml/README.md).

``predict(DataFrame[sensor_id, timestamp (UTC), value] = history, params={"horizon": int, "interval": float})``
→ DataFrame[``sensor_id``, ``timestamp``, ``yhat``, ``yhat_lower``, ``yhat_upper``]: ``horizon`` future slots per
sensor at the model's frequency after that sensor's last history timestamp, sensors in order of first
appearance.

The model is the *method and its hyperparameters* chosen on the validation folds (seasonal naive, Prophet or
LightGBM), the data's frequency and the **interval calibration**
(:class:`core.ml.forecast.conformal.IntervalCalibration`): the sequential calibration's state as of training end
(:mod:`core.ml.forecast.sequential`: the width-normalised scores of every backtest fold, weighted toward the recent
ones, and the adaptive-conformal level shift), the same function the backtest applied at each test origin. The
method's raw interval at the calibration's base level is widened or narrowed to the requested coverage, so the
served intervals are the calibrated ones. The coverage that calibration procedure reached on the test folds is in
the model's metadata (``test_coverage``, by nominal level). The state is not updated by ``predict``: it is the
calibration as of training end (re-train to move it).
All three methods are per-series forecasters, so ``predict`` fits the method on each sensor's history it is given
and forecasts from there (Prophet ~0.1–1 s per sensor, LightGBM less, naive nothing). It keeps no state between
calls. Give at least ``min_history`` readings per sensor (one day + one slot for a seasonal forecast; LightGBM
raises below 35 readings; more history is better — training used up to 50 h).
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from core.ml.forecast.conformal import COVERAGE_LEVELS, IntervalCalibration
from core.ml.forecast.models import (
    DEFAULT_HORIZON,
    DEFAULT_INTERVAL,
    make_forecaster,
    season_steps,
)

INPUT_COLUMNS: tuple[str, ...] = ("sensor_id", "timestamp", "value")
OUTPUT_COLUMNS: tuple[str, ...] = ("sensor_id", "timestamp", "yhat", "yhat_lower", "yhat_upper")


class ForecastModel(PythonModel):
    def __init__(
        self,
        method: str,
        params: dict[str, Any],
        freq_seconds: float,
        sensor_type: str,
        default_horizon: int = DEFAULT_HORIZON,
        default_interval: float = DEFAULT_INTERVAL,
        calibration: IntervalCalibration | None = None,
        test_coverage: dict[str, float] | None = None,
    ) -> None:
        self.method = method
        self.params = dict(params)
        self.freq_seconds = float(freq_seconds)
        self.sensor_type = sensor_type
        self.default_horizon = int(default_horizon)
        self.default_interval = float(default_interval)
        self.calibration = calibration.to_dict() if calibration is not None else None
        self.test_coverage = dict(test_coverage or {})

    @property
    def interval_calibration(self) -> IntervalCalibration | None:
        """The stored calibration (None: raw intervals; models logged before issue 16 have none)."""
        data = getattr(self, "calibration", None)
        return IntervalCalibration.from_dict(data) if data else None

    @property
    def freq(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.freq_seconds)

    @property
    def min_history(self) -> int:
        return season_steps(self.freq) + 1

    def forecast(self, history: pd.DataFrame, horizon: int, interval: float) -> pd.DataFrame:
        frame = pd.DataFrame(history)
        missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"history lacks columns {missing}; expected {list(INPUT_COLUMNS)}")
        frame = frame.loc[:, list(INPUT_COLUMNS)].copy()
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        frame["value"] = frame["value"].astype("float64")
        frame = frame.dropna(subset=["value"])
        calibration = self.interval_calibration
        if calibration is not None:
            calibration.factors(interval)  # an unreachable level fails before any fit
        outputs = []
        for sensor_id in pd.unique(frame["sensor_id"]):
            group = frame[frame["sensor_id"] == sensor_id].sort_values("timestamp")
            forecaster = make_forecaster(self.method, self.params, self.freq)
            forecaster.fit(group["timestamp"], group["value"])
            if calibration is None:
                out = forecaster.predict(horizon, interval)
            else:
                out = forecaster.predict(horizon, calibration.base_interval)
                out["yhat_lower"], out["yhat_upper"] = calibration.apply(
                    out["yhat"], out["yhat_lower"], out["yhat_upper"], interval, np.arange(1, len(out) + 1)
                )
            out.insert(0, "sensor_id", str(sensor_id))
            outputs.append(out)
        if not outputs:
            result = pd.DataFrame({c: pd.Series(dtype="float64") for c in OUTPUT_COLUMNS})
            result["sensor_id"] = result["sensor_id"].astype(object)
        else:
            result = pd.concat(outputs, ignore_index=True)
        result["timestamp"] = pd.to_datetime(result["timestamp"], utc=True).astype("datetime64[ns, UTC]")
        for column in ("yhat", "yhat_lower", "yhat_upper"):
            result[column] = result[column].astype(np.float64)
        return result.loc[:, list(OUTPUT_COLUMNS)]

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        params = params or {}
        horizon = int(params.get("horizon") or self.default_horizon)
        interval = float(params.get("interval") or self.default_interval)
        return self.forecast(model_input, horizon, interval)


def input_example(history: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The last ``rows`` readings of the first sensor in ``history``, in the contract's dtypes."""
    first = history["sensor_id"].iloc[0]
    frame = history[history["sensor_id"] == first].sort_values("timestamp").tail(rows)
    frame = frame.loc[:, list(INPUT_COLUMNS)].reset_index(drop=True)
    frame["sensor_id"] = frame["sensor_id"].astype(str).astype(object)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    frame["value"] = frame["value"].astype("float64")
    return frame


def model_signature(outputs: Any, params: Any) -> Any:
    """Input ``sensor_id`` string, ``timestamp`` any, ``value`` double (as the anomaly models): MLflow's
    ``datetime`` schema type rejects timezone-aware values, which is what callers pass (``datetime64[ns, UTC]``);
    :meth:`ForecastModel.forecast` parses ``timestamp`` with ``pd.to_datetime(utc=True)`` (aware, naive-UTC or
    ISO 8601 strings)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "sensor_id"),
            # mlflow leaves AnyType.__init__ unannotated, so a call to it is untyped
            ColSpec(AnyType(), "timestamp"),  # type: ignore[no-untyped-call]
            ColSpec("double", "value"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def pip_requirements(method: str) -> list[str]:
    """Pinned from the running environment (MLflow's own inference imports the model in a subprocess: slow)."""
    from importlib.metadata import version

    names = ["mlflow", "pandas", "numpy"] + {"prophet": ["prophet"], "lightgbm": ["lightgbm"]}.get(method, [])
    return [f"{name}=={version(name)}" for name in names]


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None))


def log_forecast_model(
    model: ForecastModel,
    example: pd.DataFrame,
    *,
    registered_model_name: str | None = None,
    name: str = "model",
) -> Any:
    """Log ``model`` into the active run (signature :func:`model_signature` with the params schema
    ``horizon``/``interval``; input example with params) and register it when ``registered_model_name`` is
    given. Returns MLflow's ``ModelInfo``."""
    from mlflow.models import infer_signature

    params = {"horizon": model.default_horizon, "interval": model.default_interval}
    output = model.forecast(example, model.default_horizon, model.default_interval)
    inferred = infer_signature(_naive_utc(example), _naive_utc(output), params=params)
    signature = model_signature(inferred.outputs, inferred.params)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=model,
        signature=signature,
        input_example=(example, params),
        pip_requirements=pip_requirements(model.method),
        registered_model_name=registered_model_name,
        metadata={
            "method": model.method,
            "params": model.params,
            "freq_seconds": model.freq_seconds,
            "sensor_type": model.sensor_type,
            "min_history": model.min_history,
        }
        | calibration_metadata(model),
    )


def calibration_metadata(model: ForecastModel) -> dict[str, Any]:
    """What the API reports beside an interval: ``interval_calibration`` (method, base level, number of
    validation scores, first step of each horizon bucket, factors per level and bucket) and ``test_coverage``
    (calibrated coverage on the test folds by nominal level, keys like ``"0.8"``). Empty for an uncalibrated
    model."""
    calibration = model.interval_calibration
    if calibration is None:
        return {}
    factors = {f"{level:g}": [round(f, 6) for f in calibration.factors(level)] for level in COVERAGE_LEVELS
               if level <= calibration.max_interval}  # fmt: skip
    sequential = calibration.weights is not None
    method = (
        "sequential conformal through the rolling-origin folds (every fold before training end, weighted toward "
        "recent ones; ACI level shift), per horizon bucket — the state as of training end"
        if sequential
        else "split-conformal (width-normalised CQR scores) on the validation folds, per horizon bucket"
    )
    described: dict[str, Any] = {
        "method": method,
        "base_interval": calibration.base_interval,
        "n": calibration.n,
        "bucket_starts": list(calibration.bucket_starts),
        "factors": factors,
    }
    if calibration.level_shift:
        described["level_shift"] = {f"{n:g}": round(d, 6) for n, d in calibration.level_shift}
    return {
        "interval_calibration": described,
        "test_coverage": {k: round(float(v), 4) for k, v in model.test_coverage.items()},
    }
