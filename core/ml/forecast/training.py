"""Forecasting study and its MLflow run: backtest → choose on validation folds → report on test folds →
register ``forecast_<sensor_type>`` → promote on evidence.

:func:`run_study` (:mod:`core.ml.forecast.study`) is the computation (no MLflow); :func:`run_forecast_training`
wraps it in **one** MLflow run (experiment ``forecast``) with a nested run per sensor type that logs and registers
that type's model and carries its metrics, then calls ``core.ml.registry.promotion.promote_if_better`` with an
evaluator over the same in-memory data (MAE on the latest backtest fold,
:func:`core.ml.forecast.models.latest_fold_mae`).

Notebook 03 (``make train-forecast``) runs it with the default hyperparameters (``grids=None``); notebook 04
(``make tune-forecast``) with the grids of :mod:`core.ml.forecast.tuning`. Either way the method registered for a
type is the one with the lowest validation MAE, and the reported numbers come from the later test folds.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from core.ml.forecast.conformal import IntervalCalibration
from core.ml.forecast.models import METHODS, PROMOTION_METRIC, infer_frequency, latest_fold_mae
from core.ml.forecast.sequential import SequentialDesign
from core.ml.forecast.study import (
    INTERVAL_COLUMNS,
    METRIC_COLUMNS,
    ForecastConfig,
    ForecastStudy,
    run_study,
)

FAMILY = "forecast"
DEFAULT_EXPERIMENT = "forecast"


@dataclass
class ForecastRun:
    study: ForecastStudy
    run_id: str
    figures: list[Path]
    versions: dict[str, str | None]
    decisions: dict[str, Any]

    def promotions(self) -> pd.DataFrame:
        rows = []
        for sensor_type, decision in self.decisions.items():
            d = decision.to_dict() if hasattr(decision, "to_dict") else dict(decision)
            rows.append({"sensor_type": sensor_type} | d)
        return pd.DataFrame(rows)


def _type_metrics(report: pd.DataFrame, sensor_type: str) -> dict[str, float]:
    """Metrics of a type's nested run: the registered method's (``val_mae``, ``test_*``) and every method's."""
    rows = report[report["sensor_type"] == sensor_type]
    out: dict[str, float] = {}
    keys = ("val_mae", *(f"test_{c}" for c in METRIC_COLUMNS), "test_mae_with_faults")
    keys += (*(f"test_{c}" for c in INTERVAL_COLUMNS[:3]), "cal_n")
    for row in rows.to_dict("records"):
        for key in keys:
            out[f"{row['method']}.{key}"] = row[key]
            if row["registered"]:
                out[key] = row[key]
    return {k: float(v) for k, v in out.items() if pd.notna(v)}


def _test_coverage(study: ForecastStudy, sensor_type: str, method: str) -> dict[str, float]:
    """Calibrated test-fold coverage of one (type, method) by nominal level (``{"0.8": 0.81, ...}``)."""
    curve = study.coverage_curve
    rows = curve[(curve["sensor_type"] == sensor_type) & (curve["model"] == method)]
    return {f"{r.nominal:g}": float(r.coverage) for r in rows.itertuples() if pd.notna(r.coverage)}


def _calibration_params(
    calibration: IntervalCalibration | None, interval: float, design: SequentialDesign
) -> dict[str, Any]:
    """Run params that make the served interval reproducible (the scores, weights and ACI shift are an artifact)."""
    if calibration is None:
        return {"interval_calibration": "none"}
    return {
        "interval_calibration": "sequential conformal through the folds, state as of training end",
        "calibration_decay": design.decay,
        "calibration_gamma": design.gamma,
        "calibration_level_shift": ", ".join(f"{n:g}: {d:+.4f}" for n, d in calibration.level_shift) or "none",
        "calibration_base_interval": calibration.base_interval,
        "calibration_n": calibration.n,
        "calibration_buckets": ",".join(str(s) for s in calibration.bucket_starts),
        "calibration_factors": calibration.describe(interval),
    }


def run_forecast_training(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None,
    *,
    output_dir: str | PathLike[str],
    tracking_uri: str | None = None,
    config: ForecastConfig | None = None,
    sensor_types: Sequence[str] | None = None,
    max_sensors_per_type: int | None = None,
    register: bool = True,
    promote_models: bool = True,
    params: Mapping[str, Any] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str = "forecast-train",
    prefix: str = "train",
    progress: bool = True,
) -> ForecastRun:
    """One MLflow run: :func:`run_study`, figures (``<output_dir>/<prefix>_*.png``, logged under ``plots/``),
    tables (``tables/``), and per type a nested run ``forecast_<type>`` that logs, registers and promotes."""
    import mlflow

    from core.ml.eda.tracking import (
        _get_or_create_experiment,
        default_artifact_location,
        resolve_tracking_uri,
    )
    from core.ml.forecast.plots import build_figures, save_figures
    from core.ml.forecast.pyfunc import ForecastModel, input_example, log_forecast_model
    from core.ml.registry.uris import fluent_uri

    config = config or ForecastConfig()
    uri = resolve_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = _get_or_create_experiment(client, experiment, default_artifact_location(uri))
    versions: dict[str, str | None] = {}
    decisions: dict[str, Any] = {}
    with fluent_uri(uri), mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as parent:
        mlflow.set_tags({"sm.family": FAMILY, "sm.kind": "tuning" if config.grids else "training"})
        started = time.perf_counter()
        study = run_study(
            readings,
            faults,
            config,
            sensor_types=sensor_types,
            max_sensors_per_type=max_sensors_per_type,
            progress=progress,
        )
        report = study.report()
        data = study.readings
        mlflow.log_params(
            dict(params or {})
            | config.params()
            | {
                "sensor_types": ",".join(sorted(study.chosen)),
                "max_sensors_per_type": max_sensors_per_type,
                "sensors": data["sensor_id"].nunique(),
                "rows": len(data),
                "candidates": len(study.specs),
                "folds": json.dumps([[f.role, f.cutoff.isoformat()] for f in study.folds]),
                "calibration_fold_cutoffs": json.dumps([f.cutoff.isoformat() for f in study.calibration_folds]),
                "calibration_design": study.calibration_design.label,
            }
        )
        metrics = {}
        for row in report.to_dict("records"):
            for key in ("val_mae", "test_mae", "test_rmse", "test_smape", "test_skill", "test_coverage",
                        "test_coverage_raw", "test_width", "test_width_raw"):  # fmt: skip
                if pd.notna(row[key]):
                    metrics[f"{row['sensor_type']}.{row['method']}.{key}"] = float(row[key])
        metrics["study_seconds"] = time.perf_counter() - started
        mlflow.log_metrics(metrics)
        paths = save_figures(build_figures(study, prefix), output_dir)
        for path in paths:
            mlflow.log_artifact(str(path), "plots")
        with tempfile.TemporaryDirectory(prefix="sm-forecast-") as tmp:
            tables = Path(tmp)
            report.to_csv(tables / "report.csv", index=False)
            scores = study.validation_scores.assign(params=study.validation_scores["params"].map(json.dumps))
            scores.to_csv(tables / "validation_scores.csv", index=False)
            study.test_scores.to_csv(tables / "test_scores.csv", index=False)
            study.horizon_errors.to_csv(tables / "test_error_by_horizon.csv", index=False)
            study.folds_table().to_csv(tables / "folds.csv", index=False)
            study.test_intervals.to_csv(tables / "test_intervals.csv", index=False)
            study.coverage_curve.to_csv(tables / "test_coverage_curve.csv", index=False)
            study.calibration_designs.to_csv(tables / "calibration_designs.csv", index=False)
            calibrations = {"/".join(k): c.to_dict() for k, c in study.calibrations.items()}
            (tables / "interval_calibrations.json").write_text(json.dumps(calibrations))
            mlflow.log_artifacts(str(tables), "tables")

        freq_s = infer_frequency(data["timestamp"]).total_seconds()
        for sensor_type, spec in study.chosen.items():
            name = f"{FAMILY}_{sensor_type}"
            of_type = data[data["sensor_type"] == sensor_type]
            calibration = study.calibrations.get((sensor_type, spec.method))
            model = ForecastModel(
                spec.method,
                spec.params,
                freq_s,
                sensor_type,
                config.horizon,
                config.interval,
                calibration=calibration,
                test_coverage=_test_coverage(study, sensor_type, spec.method),
            )
            with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True):
                mlflow.set_tags(
                    {
                        "sm.family": FAMILY,
                        "sm.sensor_type": sensor_type,
                        "sm.model_name": name,
                        "sm.forecast.method": spec.method,
                    }
                )
                mlflow.log_params(
                    {"method": spec.method, "horizon": config.horizon, "interval": config.interval}
                    | {f"hp.{k}": v for k, v in spec.params.items()}
                    | _calibration_params(calibration, config.interval, study.calibration_design)
                )
                if calibration is not None:
                    mlflow.log_dict(calibration.to_dict(), "calibration/interval_calibration.json")
                mlflow.log_metrics(_type_metrics(report, sensor_type))
                example = input_example(of_type, model.min_history + config.horizon)
                info = log_forecast_model(model, example, registered_model_name=name if register else None)
                versions[sensor_type] = (
                    str(info.registered_model_version) if register and info.registered_model_version else None
                )
            version = versions[sensor_type]
            if register and promote_models and version is not None:
                decisions[sensor_type] = _promote(name, version, uri, of_type, faults, config)
                mlflow.log_metric(
                    f"{sensor_type}.promotion_candidate_mae", decisions[sensor_type].candidate_score
                )
                mlflow.log_metric(f"{sensor_type}.promoted", float(decisions[sensor_type].promoted))
        run_id: str = parent.info.run_id
    return ForecastRun(study, run_id, paths, versions, decisions)


def _promote(
    name: str,
    version: str,
    uri: str,
    of_type: pd.DataFrame,
    faults: pd.DataFrame | None,
    config: ForecastConfig,
) -> Any:
    """``promote_if_better`` with the MAE on the latest fold of the in-memory data (candidate and champion)."""
    from core.ml.registry.promotion import promote_if_better  # engineer D's module; imported lazily

    sensor_type = name.removeprefix(f"{FAMILY}_")

    def evaluate(model: Any) -> float:
        return latest_fold_mae(model, of_type, faults, sensor_type, horizon=config.horizon)

    metric, higher = PROMOTION_METRIC
    return promote_if_better(
        name, version, tracking_uri=uri, evaluate=evaluate, metric=metric, higher_is_better=higher
    )


__all__ = ["METHODS", "ForecastConfig", "ForecastRun", "ForecastStudy", "run_forecast_training", "run_study"]
