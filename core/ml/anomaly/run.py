"""The notebook's one MLflow run of the anomaly models (:func:`run_training`): a parent run with the summary and
the plots, a nested run per sensor type carrying that type's test metrics and the logged pyfunc model, registered
as ``anomaly_<type>`` and then promoted by :func:`core.ml.anomaly.promotion.promote_detector`: challenger, and
champion only if its alerts beat those of what serves the type (its champion, else the ``robust_z`` baseline) on
the same in-memory test split, injected faults and work-order labels. Training and evaluation themselves:
:mod:`core.ml.anomaly.training`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.anomaly.baseline import BaselineConfig
from core.ml.anomaly import evaluation as ev
from core.ml.anomaly import promotion as ap
from core.ml.anomaly.episodes import EvaluationData, evaluation_data
from core.ml.anomaly.models import FAMILY, INPUT_COLUMNS, model_name, pyfunc_model
from core.ml.anomaly.training import (
    DEFAULT_EXPERIMENT,
    TrainConfig,
    TypeResult,
    summary_table,
    train_type,
)
from core.ml.registry.uris import fluent_uri


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
            [
                ColSpec("string", "sensor_id"),
                # mlflow leaves AnyType.__init__ unannotated, so a call to it is untyped
                ColSpec(AnyType(), "timestamp"),  # type: ignore[no-untyped-call]
                ColSpec("double", "value"),
            ]
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


def promotion_data(result: TypeResult, labels: pd.DataFrame | None = None) -> EvaluationData:
    """The labelled evaluation of ``result``'s type: its readings (all splits as history), the test split
    evaluated, its injected faults and ``labels`` (work-order labels, optional)."""
    return evaluation_data(
        result.scores.loc[:, list(INPUT_COLUMNS)],
        result.scores["split"].eq("test").to_numpy(),
        result.test_faults,
        labels,
        sensor_type=result.sensor_type,
    )


def promote(
    result: TypeResult,
    tracking_uri: str,
    data: EvaluationData | None = None,
    baseline: BaselineConfig | None = None,
) -> Any:
    """``result.version`` becomes challenger, and champion only if it beats what serves its type on ``data``
    (default: :func:`promotion_data` without labels; ``core.ml.anomaly.promotion``); returns the
    ``PromotionDecision``."""
    return ap.promote_detector(
        model_name(result.sensor_type),
        str(result.version),
        promotion_data(result) if data is None else data,
        tracking_uri=tracking_uri,
        baseline=baseline,
    )


def log_decision(decision: Any, sensor_type: str, run_id: str | None, tracking_uri: str) -> None:
    """The decision's figures as metrics: ``promotion.<candidate|serving>.<figure>`` and ``promotion.promoted``
    on the type's run, ``<type>.promotion_*`` on the active (parent) run."""
    import mlflow

    figures = {f"promotion.candidate.{k}": v for k, v in decision.candidate_figures.items()}
    figures |= {f"promotion.serving.{k}": v for k, v in decision.serving_figures.items()}
    figures["promotion.promoted"] = float(decision.promoted)
    if run_id is not None:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        for key, value in ev.jsonable_metrics(figures).items():
            client.log_metric(run_id, key, value)
        client.set_tag(run_id, "sm.promotion.reason", decision.reason[:5000])
    parent = {"promoted": float(decision.promoted), "candidate_score": decision.candidate_score}
    parent |= {f"serving_{k}": v for k, v in decision.serving_figures.items()}
    parent |= {f"candidate_{k}": v for k, v in decision.candidate_figures.items()}
    mlflow.log_metrics({f"{sensor_type}.promotion_{k}": v for k, v in ev.jsonable_metrics(parent).items()})


# --- the whole run ---------------------------------------------------------------------------------------------
HISTORY_BEFORE_LABELS = pd.Timedelta(hours=2)


def work_order_labels(
    labels_path: str | PathLike[str] | None = None, *, from_db: bool = False, settings: Any = None
) -> tuple[pd.DataFrame | None, str]:
    """Work-order labels from an ``export-labels`` CSV, else from the database when ``from_db``; returns
    ``(labels or None, what happened)``. An unreachable database is reported, not raised (labels are optional)."""
    from core.ml import datasets

    if labels_path:
        labels = datasets.load_labels_csv(labels_path)
        return labels, f"{len(labels)} labels from {labels_path}"
    if not from_db:
        return None, "labels not requested"
    try:
        labels = datasets.load_work_order_labels(settings=settings)
    except Exception as exc:  # noqa: BLE001 - optional input: report why there is none
        return None, f"no labels: the database is unavailable ({type(exc).__name__}: {exc})"
    if labels.empty:
        return None, "no completed work orders in the database"
    return labels, f"{len(labels)} labels from the database"


def score_work_order_labels(
    results: dict[str, TypeResult],
    labels: pd.DataFrame,
    *,
    readings: pd.DataFrame | None = None,
    lookback: pd.Timedelta = ev.DEFAULT_LABEL_LOOKBACK,
    history: pd.Timedelta = HISTORY_BEFORE_LABELS,
    settings: Any = None,
) -> pd.DataFrame:
    """Per sensor type: agreement of the trained model's flags with the work-order labels
    (``core.ml.anomaly.evaluation.label_agreement``), on ``readings`` or, when None, on the database's readings of
    the labelled sensors from ``lookback + history`` (history: the model's feature warm-up) before the first
    label to the last."""
    from core.ml import datasets

    labelled = labels[labels["sensor_id"].notna()]
    if labelled.empty:
        return pd.DataFrame()
    if readings is None:
        at = labelled["alert_opened_at"].fillna(labelled["completed_at"])
        readings = datasets.load_readings_from_db(
            sensor_ids=sorted(labelled["sensor_id"].unique()),
            start=(at.min() - lookback - history).to_pydatetime(),
            end=(at.max() + pd.Timedelta(seconds=1)).to_pydatetime(),
            settings=settings,
        )
    rows = []
    for sensor_type, result in results.items():
        part = readings[readings["sensor_type"] == sensor_type].reset_index(drop=True)
        if part.empty:
            continue
        flags = result.scorer.predict(part.loc[:, list(INPUT_COLUMNS)])["is_anomaly"].to_numpy()
        rows.append(
            {"sensor_type": sensor_type} | ev.label_agreement(part, flags, labelled, lookback=lookback)
        )
    return pd.DataFrame(rows)


def parse_sensor_types(value: str | Sequence[str]) -> list[str]:
    """A list of sensor types from a list, or from the string papermill's ``-p sensor_types …`` passes:
    ``"temperature,voltage"`` or ``'["temperature", "voltage"]'``."""
    if not isinstance(value, str):
        return [str(v) for v in value]
    text = value.strip()
    if text.startswith("["):
        import ast

        return [str(v) for v in ast.literal_eval(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass
class TrainingRun:
    run_id: str | None
    results: dict[str, TypeResult]
    summary: pd.DataFrame
    figures: list[Path]
    cuts: ev.SplitTimes
    tracking_uri: str | None
    label_table: pd.DataFrame | None = None
    promotion: pd.DataFrame | None = None


def run_training(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None,
    *,
    output_dir: str | PathLike[str],
    tracking_uri: str | None = None,
    sensor_types: str | Sequence[str] | None = None,
    config: TrainConfig | None = None,
    labels: pd.DataFrame | None = None,
    score_labels_on_db: bool = True,
    register: bool = True,
    promote_models: bool = True,
    params: dict[str, Any] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    progress: Callable[[str], None] | None = None,
) -> TrainingRun:
    """One MLflow run (nested runs per type): train, evaluate, plot, register and promote every sensor type."""
    import mlflow
    from tqdm.auto import tqdm

    from core.ml.anomaly.plots import save_all_figures
    from core.ml.eda.tracking import (
        _get_or_create_experiment,
        default_artifact_location,
        resolve_tracking_uri,
    )

    config = config or TrainConfig()
    uri = resolve_tracking_uri(tracking_uri)
    cuts = ev.split_times(readings["timestamp"], config.train_fraction, config.val_fraction)
    types = (
        sorted(readings["sensor_type"].unique()) if sensor_types is None else parse_sensor_types(sensor_types)
    )
    unknown = sorted(set(types) - set(readings["sensor_type"]))
    if unknown:
        raise ValueError(f"no readings of sensor types {unknown}")

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = _get_or_create_experiment(client, experiment, default_artifact_location(uri))
    results: dict[str, TypeResult] = {}
    with (
        fluent_uri(uri),
        mlflow.start_run(experiment_id=experiment_id, run_name="anomaly-isolation-forest") as parent,
    ):
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
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"anomaly_{sensor_type}", nested=True
            ) as child:
                result.run_id = child.info.run_id
                result.version = log_and_register(result, config, register=register)
                mlflow.log_metric("train_seconds", time.perf_counter() - started)
            if register and promote_models and result.version is not None:
                data = promotion_data(result, type_labels)
                result.decision = promote(result, uri, data, config.baseline)
                log_decision(result.decision, sensor_type, result.run_id, uri)
                mlflow.log_metrics(
                    {
                        f"{sensor_type}.promotion_labels_used": data.labels_used,
                        f"{sensor_type}.promotion_labels_unused": data.labels_unused,
                    }
                )
            results[sensor_type] = result
            if progress:
                progress(f"{sensor_type}: f1={result.metrics['iforest']['f1']:.3f} version={result.version}")
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
        promotion = ap.promotion_table({t: r.decision for t, r in results.items()})
        if len(promotion):
            mlflow.log_text(promotion.to_csv(index=False), "summary/promotion.csv")
        label_table = None
        if labels is not None and len(labels) and score_labels_on_db:
            label_table = score_work_order_labels(results, labels)
            for row in label_table.to_dict("records"):
                for key, value in ev.jsonable_metrics(row).items():
                    mlflow.log_metric(f"{row['sensor_type']}.labels.{key}", value)
            mlflow.log_text(label_table.to_csv(index=False), "summary/work_order_labels.csv")
        run_id = parent.info.run_id
    return TrainingRun(run_id, results, summary, figures, cuts, uri, label_table, promotion)


__all__ = [
    "TrainingRun",
    "input_example",
    "log_and_register",
    "log_decision",
    "model_signature",
    "parse_sensor_types",
    "promote",
    "promotion_data",
    "run_training",
    "score_work_order_labels",
    "work_order_labels",
]
