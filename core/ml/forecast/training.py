"""Forecasting study and its MLflow run: backtest → choose on validation folds → report on test folds →
register ``forecast_<sensor_type>`` → promote on evidence.

:func:`run_study` is the computation (no MLflow); :func:`run_forecast_training` wraps it in **one** MLflow run
(experiment ``forecast``) with a nested run per sensor type that logs and registers that type's model and carries
its metrics, then calls ``core.ml.registry.promotion.promote_if_better`` with an evaluator over the same in-memory data
(MAE on the latest backtest fold, :func:`core.ml.forecast.backtest.latest_fold_mae`).

Notebook 03 (``make train-forecast``) runs it with the default hyperparameters (``grids=None``); notebook 04
(``make tune-forecast``) with the grids of :mod:`core.ml.forecast.tuning`. Either way the method registered for a
type is the one with the lowest validation MAE, and the reported numbers come from the later test folds.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from core.ml.forecast.backtest import (
    TEST,
    VALIDATION,
    Fold,
    ModelSpec,
    backtest,
    error_by_horizon,
    latest_fold_mae,
    make_folds,
    score_table,
    select_sensors,
)
from core.ml.forecast.models import DEFAULT_HORIZON, DEFAULT_INTERVAL, METHODS, infer_frequency
from core.ml.forecast.tuning import candidate_specs, select_on_validation

FAMILY = "forecast"
DEFAULT_EXPERIMENT = "forecast"
METRIC_COLUMNS = ("mae", "rmse", "smape", "skill", "coverage", "n")


@dataclass(frozen=True)
class ForecastConfig:
    horizon: int = DEFAULT_HORIZON
    n_folds: int = 6
    n_validation: int | None = None  # None: n_folds // 2
    step: int | None = None  # slots between cut-offs; None: the horizon
    interval: float = DEFAULT_INTERVAL
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None  # None: default hyperparameters only
    max_configs: int | None = None
    seed: int = 0
    exclude_faults: bool = True

    @property
    def validation_folds(self) -> int:
        return self.n_validation if self.n_validation is not None else self.n_folds // 2

    def params(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "grids"}
        out["n_validation"] = self.validation_folds
        out["grids"] = json.dumps(self.grids) if self.grids is not None else "defaults"
        return out


@dataclass
class ForecastStudy:
    config: ForecastConfig
    folds: list[Fold]
    specs: list[ModelSpec]
    validation_predictions: pd.DataFrame
    validation_scores: pd.DataFrame
    selected: dict[str, dict[str, ModelSpec]]
    chosen: dict[str, ModelSpec]
    test_predictions: pd.DataFrame
    test_scores: pd.DataFrame
    test_scores_with_faults: pd.DataFrame
    horizon_errors: pd.DataFrame
    readings: pd.DataFrame = field(repr=False)
    faults: pd.DataFrame | None = field(repr=False)

    def report(self) -> pd.DataFrame:
        """One row per (sensor type, method): validation MAE, test metrics (faults excluded), test MAE with
        the fault readings included, the chosen hyperparameters and whether the method is registered."""
        val = self.validation_scores.copy()
        rows = []
        for sensor_type, methods in self.selected.items():
            for method, spec in methods.items():
                v = val[(val["sensor_type"] == sensor_type) & (val["method"] == method)]
                v = v[v["params"].map(lambda p, spec=spec: p == spec.params)]
                t = self.test_scores[
                    (self.test_scores["sensor_type"] == sensor_type) & (self.test_scores["model"] == method)
                ]
                a = self.test_scores_with_faults
                a = a[(a["sensor_type"] == sensor_type) & (a["model"] == method)]
                row = {"sensor_type": sensor_type, "method": method, "val_mae": _first(v, "mae")}
                row |= {f"test_{c}": _first(t, c) for c in METRIC_COLUMNS}
                row["test_mae_with_faults"] = _first(a, "mae")
                row["params"] = json.dumps(spec.params, sort_keys=True)
                row["registered"] = self.chosen[sensor_type].method == method
                rows.append(row)
        return pd.DataFrame(rows)

    def folds_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "fold": f.index,
                    "role": f.role,
                    "cutoff": f.cutoff,
                    "first_target": f.first_target,
                    "last_target": f.last_target,
                }
                for f in self.folds
            ]
        )


def _first(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].iloc[0]) if len(frame) and column in frame else float("nan")


def run_study(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None,
    config: ForecastConfig | None = None,
    *,
    sensor_types: Sequence[str] | None = None,
    max_sensors_per_type: int | None = None,
    progress: bool = True,
) -> ForecastStudy:
    """Backtest every candidate on the validation folds, choose per type, backtest the choice on the test folds."""
    config = config or ForecastConfig()
    data = select_sensors(readings, sensor_types, max_sensors_per_type)
    if data.empty:
        raise ValueError(f"no readings for sensor types {sensor_types}")
    freq = infer_frequency(data["timestamp"])
    folds = make_folds(
        data["timestamp"].max(),
        horizon=config.horizon,
        n_folds=config.n_folds,
        n_validation=config.validation_folds,
        freq=freq,
        step=config.step,
    )
    specs = candidate_specs(config.grids, config.max_configs, config.seed)
    val_folds = [f for f in folds if f.role == VALIDATION]
    test_folds = [f for f in folds if f.role == TEST]
    # Validation: point forecasts only (the choice is by MAE; LightGBM then skips its calibration fit).
    val_pred = backtest(data, faults, val_folds, specs, interval=None, progress=progress, desc="validation")
    val_scores, selected, chosen = select_on_validation(val_pred, specs, exclude_faults=config.exclude_faults)
    # Test: only the chosen spec of each method, never used for choosing.
    test_specs = {t: list(methods.values()) for t, methods in selected.items()}
    test_pred = backtest(
        data, faults, test_folds, test_specs, interval=config.interval, progress=progress, desc="test"
    )
    return ForecastStudy(
        config=config,
        folds=folds,
        specs=specs,
        validation_predictions=val_pred,
        validation_scores=val_scores,
        selected=selected,
        chosen=chosen,
        test_predictions=test_pred,
        test_scores=score_table(test_pred, exclude_faults=config.exclude_faults),
        test_scores_with_faults=score_table(test_pred, exclude_faults=False),
        horizon_errors=error_by_horizon(test_pred, exclude_faults=config.exclude_faults),
        readings=data,
        faults=faults,
    )


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
    for row in rows.to_dict("records"):
        for key in ("val_mae", *(f"test_{c}" for c in METRIC_COLUMNS), "test_mae_with_faults"):
            out[f"{row['method']}.{key}"] = row[key]
            if row["registered"]:
                out[key] = row[key]
    return {k: float(v) for k, v in out.items() if pd.notna(v)}


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
    with fluent_uri(uri), mlflow.start_run(experiment_id=experiment_id, run_name=run_name):
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
            }
        )
        metrics = {}
        for row in report.to_dict("records"):
            for key in ("val_mae", "test_mae", "test_rmse", "test_smape", "test_skill", "test_coverage"):
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
            mlflow.log_artifacts(str(tables), "tables")

        freq_s = infer_frequency(data["timestamp"]).total_seconds()
        for sensor_type, spec in study.chosen.items():
            name = f"{FAMILY}_{sensor_type}"
            of_type = data[data["sensor_type"] == sensor_type]
            model = ForecastModel(
                spec.method, spec.params, freq_s, sensor_type, config.horizon, config.interval
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
                )
                mlflow.log_metrics(_type_metrics(report, sensor_type))
                example = input_example(of_type, model.min_history + config.horizon)
                info = log_forecast_model(model, example, registered_model_name=name if register else None)
                versions[sensor_type] = (
                    str(info.registered_model_version) if register and info.registered_model_version else None
                )
            if register and promote_models and versions[sensor_type] is not None:
                decisions[sensor_type] = _promote(name, versions[sensor_type], uri, of_type, faults, config)
                mlflow.log_metric(
                    f"{sensor_type}.promotion_candidate_mae", decisions[sensor_type].candidate_score
                )
                mlflow.log_metric(f"{sensor_type}.promoted", float(decisions[sensor_type].promoted))
        run_id = mlflow.active_run().info.run_id
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
    from core.ml.forecast.models import PROMOTION_METRIC
    from core.ml.registry.promotion import promote_if_better  # engineer D's module; imported lazily

    sensor_type = name.removeprefix(f"{FAMILY}_")

    def evaluate(model: Any) -> float:
        return latest_fold_mae(model, of_type, faults, sensor_type, horizon=config.horizon)

    metric, higher = PROMOTION_METRIC
    return promote_if_better(
        name, version, tracking_uri=uri, evaluate=evaluate, metric=metric, higher_is_better=higher
    )


__all__ = ["METHODS", "ForecastConfig", "ForecastRun", "ForecastStudy", "run_forecast_training", "run_study"]
