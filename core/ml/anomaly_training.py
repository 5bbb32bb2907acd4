"""Training, evaluation, MLflow logging, registration and promotion of the ``anomaly_<sensor_type>`` models.

:func:`train_type` fits one sensor type on the train split (the early part of the data; labels are not used for
fitting), chooses the IsolationForest threshold, the warm-up ``|z|`` threshold and the ``robust_z`` baseline's
threshold on the validation split (``core.ml.anomaly_eval.choose_threshold``) and reports test-split metrics for

* ``iforest``: the registered model scoring the whole series (earlier readings are history), as offline;
* ``iforest_single``: the same model fed one reading at a time (every reading is a warm-up reading: the level
  path only), i.e. what the agent gets from events of one reading per sensor;
* ``baseline``: the agent's streaming ``robust_z`` (window 288, warm-up 30), threshold chosen on validation too.

:func:`run_training` is the notebook's one MLflow run: a parent run with the summary and the plots, a nested run
per type carrying that type's metrics and the logged model, registered as ``anomaly_<type>`` and then passed to
``core.ml.registry.promote_if_better`` with an evaluator over the same in-memory test split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.anomaly.baseline import BaselineConfig
from core.ml import anomaly_eval as ev
from core.ml.anomaly_models import (
    FAMILY,
    INPUT_COLUMNS,
    PROMOTION_METRIC,
    AnomalyScorer,
    FeatureConfig,
    evaluate_flags_f1,
    fit_scorer,
    model_name,
    pyfunc_model,
)

DEFAULT_EXPERIMENT = "anomaly"
METHODS = ("iforest", "iforest_single", "baseline")


@dataclass(frozen=True)
class TrainConfig:
    n_estimators: int = 200
    max_samples: int | str = "auto"
    max_train_rows: int | None = None
    train_fraction: float = 0.4
    val_fraction: float = 0.2
    alarm_rate: float = 0.01
    random_state: int = 0
    features: FeatureConfig = field(default_factory=FeatureConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def params(self) -> dict[str, Any]:
        f = self.features
        return {
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "max_train_rows": self.max_train_rows,
            "train_fraction": self.train_fraction,
            "val_fraction": self.val_fraction,
            "alarm_rate": self.alarm_rate,
            "random_state": self.random_state,
            "lags": f.lags,
            "windows": ",".join(str(w) for w in f.windows),
            "rate_of_change": f.rate_of_change,
            "time_of_day": f.time_of_day,
            "scaler": f.scaler,
            "baseline_window": self.baseline.window,
            "baseline_warmup": self.baseline.warmup,
        }


@dataclass
class TypeResult:
    sensor_type: str
    scorer: AnomalyScorer
    choices: dict[str, ev.ThresholdChoice]
    metrics: dict[str, dict[str, float]]  # method -> test metrics
    scores: (
        pd.DataFrame
    )  # per reading: sensor_id, timestamp, value, split, faulty, raw and relative scores, flags
    test_faults: pd.DataFrame | None
    label_metrics: dict[str, float] | None = None
    version: str | None = None
    run_id: str | None = None
    decision: Any = None

    def evaluate(self, model: Any) -> float:
        """Promotion F1 of any model with the contract on this type's test split (same data for all)."""
        frame = self.scores.loc[:, list(INPUT_COLUMNS)]
        return evaluate_flags_f1(
            model, frame, self.scores["faulty"].to_numpy(), self.scores["split"].eq("test")
        )


def train_type(
    sensor_type: str,
    readings: pd.DataFrame,
    faults: pd.DataFrame | None,
    cuts: ev.SplitTimes,
    config: TrainConfig | None = None,
    labels: pd.DataFrame | None = None,
) -> TypeResult:
    """Fit, choose thresholds on validation, evaluate on test (see the module docstring)."""
    from core.ml.datasets import fault_mask

    config = config or TrainConfig()
    data = (
        readings.loc[:, list(INPUT_COLUMNS)]
        .sort_values(["sensor_id", "timestamp"], kind="stable", ignore_index=True)
        .astype({"value": "float64"})
    )
    split = cuts.labels(data["timestamp"])
    faulty = fault_mask(data, faults).to_numpy()
    train, val, test = split == "train", split == "validation", split == "test"
    if not train.any() or not val.any() or not test.any():
        raise ValueError(
            f"{sensor_type}: every split needs readings (train/val/test: {train.sum()}/{val.sum()}/{test.sum()})"
        )

    scorer = fit_scorer(
        sensor_type,
        data[train],
        feature_config=config.features,
        n_estimators=config.n_estimators,
        max_samples=config.max_samples,
        max_train_rows=config.max_train_rows,
        random_state=config.random_state,
    )
    forest = scorer.forest_scores(data)
    point = scorer.point_scores(data)
    baseline, baseline_warm = ev.robust_z_scores(data, config.baseline)
    baseline = np.where(baseline_warm, 0.0, baseline)  # the agent never flags during warm-up

    choices = {
        "iforest": ev.choose_threshold(forest[val], faulty[val], alarm_rate=config.alarm_rate),
        "iforest_single": ev.choose_threshold(point[val], faulty[val], alarm_rate=config.alarm_rate),
        "baseline": ev.choose_threshold(baseline[val], faulty[val], alarm_rate=config.alarm_rate),
    }
    scorer.threshold = choices["iforest"].threshold
    scorer.point_threshold = choices["iforest_single"].threshold

    model_out = scorer.predict(data)
    flags = {
        "iforest": model_out["is_anomaly"].to_numpy(),
        "iforest_single": point / scorer.point_threshold >= 1.0,
        "baseline": baseline >= choices["baseline"].threshold,
    }
    test_faults = None
    if faults is not None:
        test_faults = faults[faults["sensor_id"].isin(data["sensor_id"].unique())]
    metrics = {
        method: ev.detection_metrics(data[test], flags[method][test], test_faults, is_faulty=faulty[test])
        for method in METHODS
    }
    scores = data.assign(
        split=split,
        faulty=faulty,
        forest_score=forest,
        point_score=point,
        baseline_score=baseline,
        score=model_out["score"].to_numpy(),
        flag_iforest=flags["iforest"],
        flag_baseline=flags["baseline"],
    )
    label_metrics = None
    if labels is not None and len(labels):
        label_metrics = ev.label_agreement(data, flags["iforest"], labels)
    return TypeResult(sensor_type, scorer, choices, metrics, scores, test_faults, label_metrics)


# --- MLflow ----------------------------------------------------------------------------------------------------
def input_example(scores: pd.DataFrame, rows: int = 12) -> pd.DataFrame:
    """A batch shaped like the agent's: one sensor's consecutive readings."""
    first = scores["sensor_id"].iloc[0]
    frame = scores.loc[scores["sensor_id"] == first, list(INPUT_COLUMNS)].head(rows).reset_index(drop=True)
    return frame.astype({"sensor_id": object, "value": "float64"})


def model_signature() -> Any:
    """Input ``sensor_id`` string, ``timestamp`` any, ``value`` double; output ``score`` double, ``is_anomaly``
    boolean. ``timestamp`` is typed ``any`` because MLflow's ``datetime`` schema type rejects timezone-aware
    values, which is what the agent passes (``datetime64[ns, UTC]``); the model parses it with
    ``pd.to_datetime(utc=True)``, so ISO 8601 strings (JSON serving) work too."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    return ModelSignature(
        inputs=Schema(
            [ColSpec("string", "sensor_id"), ColSpec(AnyType(), "timestamp"), ColSpec("double", "value")]
        ),
        outputs=Schema([ColSpec("double", "score"), ColSpec("boolean", "is_anomaly")]),
    )


def _pip_requirements() -> list[str]:
    import mlflow
    import sklearn

    return [
        f"mlflow=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]


def _type_metrics(result: TypeResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for method, values in result.metrics.items():
        prefix = "" if method == "iforest" else f"{method}_"
        out |= {f"{prefix}{k}": v for k, v in ev.jsonable_metrics(values).items()}
    for method, choice in result.choices.items():
        prefix = "" if method == "iforest" else f"{method}_"
        out[f"{prefix}threshold"] = choice.threshold
        out[f"{prefix}validation_f1"] = choice.validation_f1
    out["validation_positives"] = result.choices["iforest"].validation_positives
    if result.label_metrics:
        out |= {f"labels_{k}": v for k, v in ev.jsonable_metrics(result.label_metrics).items()}
    return out


def log_and_register(result: TypeResult, config: TrainConfig, *, register: bool = True) -> str | None:
    """In the active MLflow run (a nested run per type): params, metrics, tags and the pyfunc model, registered as
    ``anomaly_<type>``. Returns the registered version (None when ``register`` is False)."""
    import mlflow

    scorer = result.scorer
    name = model_name(result.sensor_type)
    mlflow.set_tags({"sm.family": FAMILY, "sm.sensor_type": result.sensor_type, "sm.model_name": name})
    mlflow.log_params(
        config.params()
        | {
            "sensor_type": result.sensor_type,
            "features": ",".join(scorer.feature_names),
            "threshold_rule": result.choices["iforest"].rule,
            "sensors": ",".join(sorted(scorer.sensor_stats)),
        }
    )
    mlflow.log_metrics(_type_metrics(result))
    example = input_example(result.scores)
    signature = model_signature()
    info = mlflow.pyfunc.log_model(
        name=f"anomaly_{result.sensor_type}",
        python_model=pyfunc_model(scorer),
        signature=signature,
        input_example=example,
        registered_model_name=name if register else None,
        pip_requirements=_pip_requirements(),
        metadata=scorer.metadata(),
    )
    version = getattr(info, "registered_model_version", None)
    if register and version is not None:
        client = mlflow.MlflowClient()
        meta = scorer.metadata()
        for key in ("threshold", "point_threshold", "warmup"):
            client.set_model_version_tag(name, str(version), f"sm.{key}", str(meta[key]))
        client.set_model_version_tag(name, str(version), "sm.features", ",".join(scorer.feature_names))
        client.set_model_version_tag(name, str(version), "sm.family", FAMILY)
        client.set_model_version_tag(name, str(version), "sm.sensor_type", result.sensor_type)
    return None if version is None else str(version)


def promote(result: TypeResult, tracking_uri: str, margin: float | None = None) -> Any:
    """``core.ml.registry.promote_if_better`` on this type's test split (candidate and champion alike)."""
    from core.ml.registry import promote_if_better  # engineer D's module; imported lazily

    metric, higher = PROMOTION_METRIC
    return promote_if_better(
        model_name(result.sensor_type),
        str(result.version),
        tracking_uri=tracking_uri,
        margin=margin,
        evaluate=result.evaluate,
        metric=metric,
        higher_is_better=higher,
    )


# --- the whole run ---------------------------------------------------------------------------------------------
@dataclass
class TrainingRun:
    run_id: str | None
    results: dict[str, TypeResult]
    summary: pd.DataFrame
    figures: list[Path]
    cuts: ev.SplitTimes
    tracking_uri: str | None


def summary_table(results: dict[str, TypeResult]) -> pd.DataFrame:
    rows = []
    for sensor_type, result in results.items():
        for method in METHODS:
            m = result.metrics[method]
            rows.append(
                {
                    "sensor_type": sensor_type,
                    "method": method,
                    "threshold": result.choices[method].threshold,
                    "rule": result.choices[method].rule,
                    "precision": m["precision"],
                    "recall": m["recall"],
                    "f1": m["f1"],
                    "events": f"{m['events_detected']}/{m['events']}",
                    "mean_delay_min": m["mean_delay_min"],
                    "false_alarms": m["false_alarms"],
                    "flagged": m["flagged"],
                    "faulty_readings": m["faulty_readings"],
                }
            )
    return pd.DataFrame(rows)


def run_training(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None,
    *,
    output_dir: str | PathLike[str],
    tracking_uri: str | None = None,
    sensor_types: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    labels: pd.DataFrame | None = None,
    register: bool = True,
    promote_models: bool = True,
    params: dict[str, Any] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    progress: Callable[[str], None] | None = None,
) -> TrainingRun:
    """One MLflow run (nested runs per type): train, evaluate, plot, register and promote every sensor type."""
    import mlflow
    from tqdm.auto import tqdm

    from core.ml.anomaly_plots import save_all_figures
    from core.ml.eda_tracking import (
        _get_or_create_experiment,
        default_artifact_location,
        resolve_tracking_uri,
    )

    config = config or TrainConfig()
    uri = resolve_tracking_uri(tracking_uri)
    cuts = ev.split_times(readings["timestamp"], config.train_fraction, config.val_fraction)
    types = sorted(readings["sensor_type"].unique()) if sensor_types is None else list(sensor_types)
    unknown = sorted(set(types) - set(readings["sensor_type"]))
    if unknown:
        raise ValueError(f"no readings of sensor types {unknown}")

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = _get_or_create_experiment(client, experiment, default_artifact_location(uri))
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    results: dict[str, TypeResult] = {}
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name="anomaly-isolation-forest") as parent:
            mlflow.set_tags({"sm.family": FAMILY, "sm.kind": "training"})
            mlflow.log_params(
                (params or {})
                | config.params()
                | {
                    "sensor_types": ",".join(types),
                    "train_end": cuts.train_end.isoformat(),
                    "val_end": cuts.val_end.isoformat(),
                    "rows": len(readings),
                }
            )
            for sensor_type in tqdm(types, desc="anomaly models", unit="type"):
                started = time.perf_counter()
                of_type = readings[readings["sensor_type"] == sensor_type]
                type_labels = None
                if labels is not None and len(labels):
                    type_labels = labels[labels["sensor_id"].isin(of_type["sensor_id"].unique())]
                result = train_type(sensor_type, of_type, faults, cuts, config, type_labels)
                with mlflow.start_run(run_name=f"anomaly_{sensor_type}", nested=True) as child:
                    result.run_id = child.info.run_id
                    result.version = log_and_register(result, config, register=register)
                    mlflow.log_metric("train_seconds", time.perf_counter() - started)
                if register and promote_models and result.version is not None:
                    result.decision = promote(result, uri)
                    for key, value in {
                        "promoted": float(result.decision.promoted),
                        "candidate_score": result.decision.candidate_score,
                    }.items():
                        mlflow.log_metric(f"{sensor_type}.promotion_{key}", value)
                results[sensor_type] = result
                if progress:
                    progress(
                        f"{sensor_type}: f1={result.metrics['iforest']['f1']:.3f} version={result.version}"
                    )
            summary = summary_table(results)
            for row in summary.itertuples(index=False):
                for key in ("precision", "recall", "f1", "mean_delay_min", "false_alarms"):
                    value = getattr(row, key)
                    if pd.notna(value):
                        mlflow.log_metric(f"{row.sensor_type}.{row.method}.{key}", float(value))
            figures = save_all_figures(results, cuts, output_dir)
            for path in figures:
                mlflow.log_artifact(str(path), "plots")
            mlflow.log_text(summary.to_csv(index=False), "summary/metrics.csv")
            run_id = parent.info.run_id
    finally:
        mlflow.set_tracking_uri(previous_uri)
    return TrainingRun(run_id, results, summary, figures, cuts, uri)


__all__ = [
    "DEFAULT_EXPERIMENT",
    "METHODS",
    "TrainConfig",
    "TrainingRun",
    "TypeResult",
    "input_example",
    "log_and_register",
    "model_signature",
    "promote",
    "run_training",
    "summary_table",
    "train_type",
]
