"""The MLflow pyfunc wrapper of :class:`core.ml.anomaly.models.AnomalyScorer` (kept apart so that importing the
model code does not import MLflow)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel


class AnomalyPyFunc(PythonModel):
    """``predict(DataFrame[sensor_id, timestamp, value]) -> DataFrame[score, is_anomaly]``; the scorer carries
    its feature list and thresholds (``self.scorer.metadata()``)."""

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = self.scorer.feature_names
        return names

    @property
    def threshold(self) -> float:
        return float(self.scorer.threshold)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.scorer.predict(model_input)


__all__ = ["AnomalyPyFunc"]
