"""MLflow side of the vibration gauntlet: the pyfunc wrapper of a detector (per-window feature table → score),
one nested run per model inside the notebook's run, registration and promotion (evidence: Youden's J on a
held-out healthy recording and the same recording with a simulated outer-race defect, see
:mod:`core.ml.vibration.promotion`)."""

from __future__ import annotations

import contextlib
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from core.ml.eda.tracking import default_artifact_location, resolve_tracking_uri
from core.ml.registry.uris import point_fluent_api_at
from core.ml.vibration.features import FEATURE_COLUMNS
from core.ml.vibration.models import VibrationDetector
from core.ml.vibration.promotion import Evidence, heldout_ims_evidence, youden

FAMILY = "vibration"
EXPERIMENT = "vibration_gauntlet"
PROMOTION_METRIC = ("heldout_youden_j", True)


class VibrationPyFunc(PythonModel):
    """``predict(DataFrame[rms, peak_to_peak, kurtosis, skewness, crest_factor, dominant_frequency,
    spectral_centroid, hf_energy, env_bpfo, env_bpfi, env_bsf, env_ftf])`` (one row per window, as produced by
    ``core.ml.vibration.features.window_features``) → DataFrame[``score`` (higher = more anomalous),
    ``is_anomaly`` (score above the 99th percentile of the healthy training windows)]."""

    def __init__(self, detector: VibrationDetector) -> None:
        self.detector = detector

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        scores = self.detector.score(frame)
        return pd.DataFrame({"score": scores.astype(float), "is_anomaly": scores > self.detector.threshold})


def start_experiment(tracking_uri: str | None, experiment: str = EXPERIMENT) -> str:
    """Point mlflow (tracking and registry) at the tracking URI and select (create when missing) the experiment;
    returns the URI."""
    uri = resolve_tracking_uri(tracking_uri)
    point_fluent_api_at(uri)
    client = mlflow.MlflowClient(uri)
    if client.get_experiment_by_name(experiment) is None:
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # created concurrently
            client.create_experiment(experiment, artifact_location=default_artifact_location(uri))
    mlflow.set_experiment(experiment)
    return uri


def _pip_requirements() -> list[str]:
    import scipy
    import sklearn

    return [
        f"mlflow=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"scipy=={scipy.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]


def clean_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric, finite metrics only (MLflow rejects None; NaN means 'not measured' and is left out)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (bool, np.bool_)) or value is None:
            continue
        if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
            out[key] = float(value)
    return out


def log_detector_run(
    detector: VibrationDetector,
    windows: pd.DataFrame,
    *,
    run_name: str,
    metrics: dict[str, Any],
    params: dict[str, Any],
    registered_model_name: str | None,
    heldout: Evidence | None = None,
    tracking_uri: str | None = None,
    promote: bool = True,
    log_model: bool = True,
) -> dict[str, Any]:
    """A nested run for one model: params, metrics, tags, the pyfunc (unless ``log_model`` is False; registered
    when a name is given) and, when registered, ``promote_if_better`` on ``heldout`` (built by
    :func:`core.ml.vibration.promotion.build_evidence` from the held-out healthy recording): Youden's J = share of
    flagged windows with the simulated defect − share of flagged healthy windows (higher is better). With
    ``heldout`` the run also gets the metrics ``heldout_youden_j``, ``heldout_tpr`` and ``heldout_fpr``."""
    from mlflow.models import infer_signature

    out: dict[str, Any] = {"run_name": run_name, "model_name": registered_model_name}
    with mlflow.start_run(run_name=run_name, nested=True) as run:
        out["run_id"] = run.info.run_id
        mlflow.set_tags({"sm.family": FAMILY, "sm.sensor_type": "vibration", "sm.model_kind": detector.kind})
        mlflow.log_params({k: str(v) for k, v in params.items()} | {"train_windows": detector.train_rows})
        mlflow.log_metrics(clean_metrics(metrics | {"window_threshold": detector.threshold}))
        if heldout is not None:
            evidence = youden(_InMemory(VibrationPyFunc(detector)), heldout)
            out["heldout_evidence"] = evidence
            mlflow.log_metrics({f"heldout_{key}": value for key, value in evidence.items()})
        if not log_model:
            return out | {"version": None}
        example = windows.loc[:, list(FEATURE_COLUMNS)].head(5).reset_index(drop=True)
        pyfunc = VibrationPyFunc(detector)
        signature = infer_signature(example, pyfunc.predict(None, example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc,
            signature=signature,
            input_example=example,
            registered_model_name=registered_model_name,
            pip_requirements=_pip_requirements(),
            metadata={"threshold": detector.threshold, "features": list(FEATURE_COLUMNS)},
        )
    version = getattr(info, "registered_model_version", None)
    out["version"] = None if version is None else str(version)
    if registered_model_name and version is not None:
        client = mlflow.MlflowClient()
        for key, value in {
            "sm.family": FAMILY,
            "sm.sensor_type": "vibration",
            "sm.model_kind": detector.kind,
        }.items():
            client.set_model_version_tag(registered_model_name, str(version), key, value)
        if promote and heldout is not None:
            out["promotion"] = _promote(registered_model_name, str(version), heldout, tracking_uri)
    return out


class _InMemory:
    """The PyFuncModel call shape (``predict(frame)``) around an unlogged :class:`VibrationPyFunc`."""

    def __init__(self, pyfunc: VibrationPyFunc) -> None:
        self.pyfunc = pyfunc

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.pyfunc.predict(None, frame)


def _promote(name: str, version: str, heldout: Evidence, tracking_uri: str | None) -> dict[str, Any]:
    from core.ml.registry.promotion import promote_if_better  # engineer D's module

    def evaluate(
        model: Any,
    ) -> float:  # the same function as evaluate_for_promotion, on the caller's evidence
        return youden(model, heldout)["youden_j"]

    metric, higher = PROMOTION_METRIC
    decision = promote_if_better(
        name, version, tracking_uri=tracking_uri, evaluate=evaluate, metric=metric, higher_is_better=higher
    )
    return {
        "promoted": decision.promoted,
        "reason": decision.reason,
        "candidate_score": decision.candidate_score,
    }


def evaluate_for_promotion(model: Any, model_name: str) -> float:
    """The registry's family evaluator for ``vibration_ims_*``: Youden's J (:data:`PROMOTION_METRIC`, higher is
    better) on a held-out healthy IMS recording (test 2, second file — the detectors of notebook 06 train on the
    first): share of flagged (``is_anomaly``) windows of the recording with a simulated outer-race defect added
    (BPFO impacts, peak 2.5 × each channel's RMS, fixed seeds) − share of flagged windows of the recording as is.
    A detector that flags nothing, or everything, scores 0. Same code as the notebook's promotion
    (:func:`core.ml.vibration.promotion.youden`); the evidence is computed once per process."""
    return youden(model, heldout_ims_evidence())["youden_j"]
