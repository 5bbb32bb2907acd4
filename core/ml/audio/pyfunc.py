"""The registered audio anomaly model ``audio_<machine>_<kind>`` as an MLflow pyfunc.

``predict(DataFrame[path: str])`` — paths of WAV clips readable by the serving process — returns
``DataFrame[score: float (mean frame score, higher = more anomalous), is_anomaly: bool (score > threshold)]`` in
the input order. The model carries its feature configuration (:class:`core.ml.audio.features.MelConfig`), the
fitted frame model and the threshold (quantile of cross-fitted normal clip scores). A clip that cannot be read
raises :class:`core.ml.audio.features.FeatureExtractionError`: no score is ever invented.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

try:
    from mlflow.pyfunc.model import PythonModel
except ImportError:  # pragma: no cover - mlflow is a dependency; keeps the module importable without it
    PythonModel = object  # type: ignore[misc,assignment]

from core.ml.audio.evaluation import FittedAudioModel
from core.ml.audio.features import DEFAULT_MEL, MelConfig, clip_context_vectors

FAMILY = "audio"


def model_name(machine: str, kind: str) -> str:
    return f"audio_{machine}_{kind}"


class AudioAnomalyModel(PythonModel):
    def __init__(self, fitted: FittedAudioModel, config: MelConfig = DEFAULT_MEL) -> None:
        self.fitted = fitted
        self.config = config

    def metadata(self) -> dict[str, Any]:
        return {
            "machine": self.fitted.machine,
            "kind": self.fitted.model.kind,
            "threshold": self.fitted.threshold,
            "n_training_clips": self.fitted.n_training_clips,
            "features": asdict(self.config),
            "model_params": self.fitted.model.params(),
            "input": "DataFrame[path: str] (WAV files, resampled to 16 kHz, first channel)",
        }

    def score_paths(self, paths: list[str]) -> pd.DataFrame:
        scores = [self.fitted.model.score_clip(clip_context_vectors(p, self.config)) for p in paths]
        frame = pd.DataFrame({"score": pd.Series(scores, dtype=float)})
        frame["is_anomaly"] = frame["score"] > self.fitted.threshold
        return frame

    def predict(self, context: Any, model_input: Any, params: Any = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        if "path" not in frame.columns:
            raise ValueError("audio model input needs a 'path' column of WAV file paths")
        return self.score_paths([str(p) for p in frame["path"]])


def signature_and_example(example_path: str) -> tuple[Any, pd.DataFrame]:
    from mlflow.models import infer_signature

    example = pd.DataFrame({"path": [example_path]})
    output = pd.DataFrame({"score": [0.0], "is_anomaly": [False]})
    return infer_signature(example, output), example
