"""The ``rul_<name>`` MLflow pyfunc: a gradient-boosted regressor on cycle features with a conformal interval.

``predict(DataFrame[unit, cycle, <channels>])`` — one or more trajectories (rows in any order, one per unit and
cycle; the channels named in the model's metadata ``channels``, extra columns ignored) →
DataFrame[``unit``, ``last_cycle``, ``cycles``, ``rul``, ``rul_lower``, ``rul_upper``]: one row per unit, the
estimate at its last cycle (cycles remaining, ≥ 0) and the bounds of the ``1 − alpha`` interval (metadata
``interval``, 0.9 by default), units in ascending order. Fewer than ``min_cycles`` cycles for a unit, a missing
channel or a non-finite value raise ``ValueError`` naming it (serving answers 422); nothing is imputed.

Promotion (:data:`PROMOTION_METRIC` = ("rmse", False)): the RMSE at the last cycle of the fixed promotion engines
(:func:`promotion_data`: 20 engines of FD001 held back from every training and calibration, 5 test-like cuts each,
seed 2008), the same data for every version.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from core.ml.rul.evaluation import ConformalCalibrator, rmse, split_off, truncate
from core.ml.rul.features import Scaler, cycle_features

if TYPE_CHECKING:
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import PyFuncModel

FAMILY = "rul"
DEFAULT_MODEL_NAME = "rul_turbofan"
PROMOTION_METRIC: tuple[str, bool] = ("rmse", False)
PROMOTION_FRACTION = 0.2
PROMOTION_SEED = 2008
PROMOTION_CUTS = 5
DEFAULT_MIN_CYCLES = 10
OUTPUT_COLUMNS: tuple[str, ...] = ("unit", "last_cycle", "cycles", "rul", "rul_lower", "rul_upper")


class RulModel(PythonModel):
    """Fitted regressor + scaler + feature windows + conformal offsets (everything ``predict`` needs)."""

    def __init__(
        self,
        estimator: Any,
        scaler: Scaler,
        channels: Sequence[str],
        mean_windows: Sequence[int],
        slope_windows: Sequence[int],
        calibrator: ConformalCalibrator,
        *,
        cap: float,
        use_cycle: bool = True,
        min_cycles: int = DEFAULT_MIN_CYCLES,
    ) -> None:
        self.estimator = estimator
        self.scaler = scaler
        self.channels = tuple(channels)
        self.mean_windows = tuple(int(w) for w in mean_windows)
        self.slope_windows = tuple(int(w) for w in slope_windows)
        self.calibrator = calibrator
        self.cap = float(cap)
        self.use_cycle = bool(use_cycle)
        self.min_cycles = int(min_cycles)

    # --- features -----------------------------------------------------------------------------------------------
    def feature_columns(self) -> list[str]:
        from core.ml.rul.features import feature_names

        names = feature_names(self.channels, self.mean_windows, self.slope_windows)
        return [*names, "cycle"] if self.use_cycle else names

    def features(self, trajectories: pd.DataFrame) -> pd.DataFrame:
        """Feature rows of every cycle (columns ``unit``, ``cycle`` + :meth:`feature_columns`)."""
        return cycle_features(trajectories, self.channels, self.scaler, self.mean_windows, self.slope_windows)

    def predict_rows(self, features: pd.DataFrame) -> np.ndarray:
        """Point estimates for feature rows, clipped to [0, cap]."""
        raw = np.asarray(self.estimator.predict(features.loc[:, self.feature_columns()]), dtype=float)
        return np.asarray(np.clip(raw, 0.0, self.cap), dtype=float)

    # --- pyfunc -------------------------------------------------------------------------------------------------
    def predict_frame(self, trajectories: pd.DataFrame) -> pd.DataFrame:
        frame = pd.DataFrame(trajectories)
        missing = [c for c in ("unit", "cycle", *self.channels) if c not in frame.columns]
        if missing:
            raise ValueError(f"the trajectories lack the columns {missing} (model channels: {list(self.channels)})")
        if frame.empty:
            raise ValueError("no cycles to estimate from")
        if frame.duplicated(["unit", "cycle"]).any():
            raise ValueError("a unit has the same cycle twice")
        counts = frame.groupby("unit")["cycle"].count()
        short = counts[counts < self.min_cycles]
        if len(short):
            raise ValueError(
                f"{len(short)} unit(s) have fewer than {self.min_cycles} cycles "
                f"(e.g. unit {short.index[0]}: {int(short.iloc[0])})"
            )
        features = self.features(frame)
        last = features.groupby("unit", sort=True).tail(1)
        rul = self.predict_rows(last)
        lower, upper = self.calibrator.interval(rul)
        return pd.DataFrame(
            {
                "unit": last["unit"].to_numpy(),
                "last_cycle": last["cycle"].to_numpy(),
                "cycles": counts.loc[last["unit"]].to_numpy(),
                "rul": rul,
                "rul_lower": lower,
                "rul_upper": upper,
            }
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.predict_frame(model_input)

    def metadata(self) -> dict[str, Any]:
        return {
            "family": FAMILY,
            "channels": list(self.channels),
            "cap": self.cap,
            "interval": 1.0 - self.calibrator.alpha,
            "min_cycles": self.min_cycles,
            "mean_windows": list(self.mean_windows),
            "slope_windows": list(self.slope_windows),
            "use_cycle": self.use_cycle,
            "conformal": self.calibrator.to_dict(),
        }


def model_of(loaded: Any) -> RulModel | None:
    """The :class:`RulModel` inside a loaded pyfunc (or the model itself), None for another model."""
    if isinstance(loaded, RulModel):
        return loaded
    unwrap = getattr(loaded, "unwrap_python_model", None)
    if unwrap is None:  # not a pyfunc
        return None
    from mlflow.exceptions import MlflowException

    try:
        inner = unwrap()
    except MlflowException:  # a pyfunc of another flavour: no Python model inside
        return None
    return inner if isinstance(inner, RulModel) else None


def model_channels(model: Any) -> tuple[str, ...]:
    """The channels a :class:`RulModel` or a loaded ``rul_*`` pyfunc reads (its metadata ``channels``)."""
    if isinstance(model, RulModel):
        return model.channels
    metadata = getattr(getattr(model, "metadata", None), "metadata", None) or {}
    channels = metadata.get("channels")
    if not channels:
        raise ValueError("the model states no input channels (not a rul_* model?)")
    return tuple(str(c) for c in channels)


def predict_last(model: Any, trajectories: pd.DataFrame) -> pd.DataFrame:
    """``model.predict`` for a :class:`RulModel` or a loaded pyfunc (the output frame of the module docstring);
    only the columns the model reads are passed."""
    columns = ["unit", "cycle", *model_channels(model)]
    missing = [c for c in columns if c not in trajectories.columns]
    if missing:
        raise ValueError(f"the trajectories lack the columns {missing}")
    frame = trajectories.loc[:, columns]
    out = model.predict_frame(frame) if isinstance(model, RulModel) else model.predict(frame)
    return pd.DataFrame(out).sort_values("unit").reset_index(drop=True)


def input_example(trajectories: pd.DataFrame, channels: Sequence[str], min_cycles: int) -> pd.DataFrame:
    """The first ``min_cycles`` cycles of the first unit, as the input example."""
    first = trajectories[trajectories["unit"] == trajectories["unit"].min()].sort_values("cycle")
    return first.loc[:, ["unit", "cycle", *channels]].head(max(min_cycles, 1)).reset_index(drop=True)


def signature(model: RulModel, example: pd.DataFrame) -> ModelSignature:
    from mlflow.models import infer_signature

    return infer_signature(example, model.predict_frame(example))


def pip_requirements() -> list[str]:
    """The model's runtime packages pinned to the installed versions (loading also needs this project's ``core``)."""
    from importlib.metadata import version

    return [f"{n}=={version(n)}" for n in ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy", "cloudpickle")]


# --- promotion evidence -------------------------------------------------------------------------------------------
def promotion_engines(units: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(development, promotion)`` engines: the promotion engines (20 %, seed 2008) are never trained or
    calibrated on by :func:`core.ml.rul.training.run_rul_training`."""
    return split_off(units, PROMOTION_FRACTION, PROMOTION_SEED)


def promotion_cuts(trajectories: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-like cuts of the promotion engines of ``trajectories`` (a run-to-failure table): ``(observed, truth)``."""
    _, held = promotion_engines(trajectories["unit"].unique())
    return truncate(trajectories[trajectories["unit"].isin(held)], PROMOTION_SEED, cuts_per_engine=PROMOTION_CUTS)


def rmse_on(model: Any, observed: pd.DataFrame, truth: pd.DataFrame) -> float:
    """RMSE of the model's estimates at the units' last cycles against ``truth`` (``unit``, ``rul``)."""
    out = predict_last(model, observed)
    merged = out.merge(truth.loc[:, ["unit", "rul"]].rename(columns={"rul": "true_rul"}), on="unit", validate="1:1")
    if len(merged) != len(truth):
        raise ValueError("the model did not estimate every unit")
    return rmse(merged["rul"], merged["true_rul"])


@lru_cache(maxsize=1)
def promotion_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Promotion cuts of FD001 in the datasets folder (raises ``DatasetMissingError`` when it is absent)."""
    from core.datasets import DatasetMissingError, missing_message
    from core.ml.rul.data import default_train_path, load_cmapss

    path = default_train_path()
    if not path.is_file():
        raise DatasetMissingError(missing_message(path, "cmapss"))
    return promotion_cuts(load_cmapss(path))


def evaluate_for_promotion(model: PyFuncModel, model_name: str = DEFAULT_MODEL_NAME) -> float:
    """Registry evaluator (core.ml.registry.promotion): RMSE on :func:`promotion_data` (lower is better)."""
    observed, truth = promotion_data()
    return rmse_on(model, observed, truth)


__all__ = [
    "DEFAULT_MODEL_NAME",
    "FAMILY",
    "OUTPUT_COLUMNS",
    "PROMOTION_METRIC",
    "RulModel",
    "evaluate_for_promotion",
    "input_example",
    "model_channels",
    "model_of",
    "pip_requirements",
    "predict_last",
    "promotion_cuts",
    "promotion_data",
    "promotion_engines",
    "rmse_on",
    "signature",
]
