"""The RUL training run: :func:`core.ml.rul.study.run_study` in **one** MLflow run (experiment ``rul``) with a nested
run ``rul_<name>`` that logs and registers the final model, then ``promote_if_better`` with the RMSE on the
promotion engines (in memory; the same data for candidate and champion: :func:`core.ml.rul.model.rmse_on`).

Notebook 08 (``make train-rul``) is its thin driver.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.ml.rul.model import FAMILY, PROMOTION_METRIC, input_example, pip_requirements, rmse_on, signature
from core.ml.rul.plots import ANCHORS
from core.ml.rul.study import RulConfig, RulStudy, run_study

DEFAULT_EXPERIMENT = "rul"


@dataclass
class RulRun:
    study: RulStudy
    run_id: str | None
    figures: list[Path]
    version: str | None
    decision: dict[str, Any] | None
    summary: dict[str, Any]


def summarise(study: RulStudy, data_file: str) -> dict[str, Any]:
    """The figures a user reads (docs/ml/rul.md): CV mean ± SD, pooled coverage, promotion-engine scores."""
    folds = study.fold_scores
    return {
        "data": data_file,
        "protocol": (
            "validation on held-back FD001 training engines (split by engine, one test-like cut per engine); "
            "not the official test set"
        ),
        "engines": {"development": len(study.development), "promotion": len(study.promotion)},
        "config": study.config.params(),
        "cv": study.cv_summary(),
        "folds": folds.to_dict("records"),
        "holdout": study.holdout_scores,
        "conformal": study.model.calibrator.to_dict(),
        "nested_coverage": _coverage_summary(study),
        "anchors_fd001_test_rmse": ANCHORS,
        "seconds": study.seconds,
    }


def _coverage_summary(study: RulStudy) -> dict[str, Any]:
    """The nested coverage study per calibration variant (empty when not run)."""
    if study.coverage.empty:
        return {}
    from core.ml.rul.coverage import summarise_coverage

    table = summarise_coverage(study.coverage)
    first = study.coverage.iloc[0]
    return {
        "protocol": (
            f"{study.config.coverage_repeats} x {study.config.coverage_folds}-fold engine-grouped nested splits of the "
            f"development engines: {int(first['train_engines'])} training, {int(first['calibration_engines'])} "
            f"calibration, {int(first['evaluation_engines'])} evaluation engines per split; every admissible cut "
            "(true RUL 1..min(145, life-31)) of every evaluation engine scored"
        ),
        "chosen": study.config.calibration_method,
        "variants": table.to_dict("records"),
    }


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}


def run_rul_training(
    trajectories: pd.DataFrame,
    *,
    config: RulConfig | None = None,
    output_dir: str | PathLike[str],
    data_file: str,
    tracking_uri: str | None = None,
    model_name: str = "rul_turbofan",
    register: bool = True,
    log_to_mlflow: bool = True,
    experiment: str = DEFAULT_EXPERIMENT,
    progress: bool = True,
) -> RulRun:
    """Study, figures (``<output_dir>/*.png``), and — unless ``log_to_mlflow`` is False — the MLflow run with its
    nested ``model_name`` run that registers and promotes (``register``)."""
    if not model_name.startswith(f"{FAMILY}_"):
        raise ValueError(f"a RUL model's name starts with {FAMILY}_ (got {model_name!r})")
    from core.ml.eda.plots import save_figures
    from core.ml.rul.plots import build_figures

    study = run_study(trajectories, config, progress=progress)
    paths = save_figures(build_figures(study), output_dir)
    summary = summarise(study, data_file)
    if not log_to_mlflow:
        return RulRun(study, None, paths, None, None, summary)
    run_id, version, decision = _log(
        study, summary, paths, trajectories, tracking_uri, model_name, register, experiment
    )
    summary["registered"] = (
        None if version is None else {"model": model_name, "version": version, "promotion": decision}
    )
    return RulRun(study, run_id, paths, version, decision, summary)


def _log(
    study: RulStudy,
    summary: dict[str, Any],
    paths: list[Path],
    trajectories: pd.DataFrame,
    tracking_uri: str | None,
    model_name: str,
    register: bool,
    experiment: str,
) -> tuple[str, str | None, dict[str, Any] | None]:
    import mlflow

    from core.ml.eda.tracking import _get_or_create_experiment, default_artifact_location, resolve_tracking_uri
    from core.ml.registry.uris import fluent_uri

    uri = resolve_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = _get_or_create_experiment(client, experiment, default_artifact_location(uri))
    config = study.config
    version: str | None = None
    with fluent_uri(uri), mlflow.start_run(experiment_id=experiment_id, run_name="rul-train") as parent:
        mlflow.set_tags({"sm.family": FAMILY, "sm.kind": "training", "sm.dataset": summary["data"]})
        engines = {"development_engines": len(study.development), "promotion_engines": len(study.promotion)}
        mlflow.log_params(config.params() | {"data_file": summary["data"]} | engines)
        holdout = {f"holdout_{k}": v for k, v in study.holdout_scores.items()}
        mlflow.log_metrics(_finite(study.cv_summary() | holdout | study.seconds | _coverage_metrics(summary)))
        for path in paths:
            mlflow.log_artifact(str(path), "plots")
        with tempfile.TemporaryDirectory(prefix="sm-rul-") as tmp:
            tables = Path(tmp)
            study.fold_scores.to_csv(tables / "fold_scores.csv", index=False)
            study.predictions.to_csv(tables / "cv_predictions.csv", index=False)
            study.holdout_predictions.to_csv(tables / "holdout_predictions.csv", index=False)
            if not study.coverage.empty:
                study.coverage.to_csv(tables / "nested_coverage.csv", index=False)
            (tables / "rul_summary.json").write_text(json.dumps(summary, indent=2, default=float))
            mlflow.log_artifacts(str(tables), "tables")
        with mlflow.start_run(experiment_id=experiment_id, run_name=model_name, nested=True):
            model = study.model
            mlflow.set_tags(
                {"sm.family": FAMILY, "sm.model_name": model_name, "sm.rul.channels": ",".join(model.channels)}
            )
            mlflow.log_params(config.params())
            mlflow.log_metrics(_finite(holdout | {k: v for k, v in study.cv_summary().items() if k.endswith("_mean")}))
            example = input_example(trajectories, model.channels, model.min_cycles)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=signature(model, example),
                input_example=example,
                metadata=model.metadata(),
                registered_model_name=model_name if register else None,
                pip_requirements=pip_requirements(),
            )
            if register and info.registered_model_version is not None:
                version = str(info.registered_model_version)
        run_id = str(parent.info.run_id)
    decision = None
    if version is not None:
        decision = _promote(model_name, version, uri, study)
    return run_id, version, decision


def _coverage_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """``nested_coverage_{per_engine,per_cut,width}_{mean,sd}`` of the chosen calibration variant."""
    nested = summary.get("nested_coverage") or {}
    chosen = [v for v in nested.get("variants", []) if v["variant"] == nested.get("chosen")]
    if not chosen:
        return {}
    keys = [f"{m}_{s}" for m in ("per_engine", "per_cut", "width") for s in ("mean", "sd")]
    return {f"nested_coverage_{k}": float(chosen[0][k]) for k in keys}


def _promote(name: str, version: str, uri: str, study: RulStudy) -> dict[str, Any]:
    """``promote_if_better`` (the platform's rule: beat the champion by more than the margin) on the RMSE of the
    promotion engines' cuts, already in memory."""
    from core.ml.registry.promotion import promote_if_better

    metric, higher = PROMOTION_METRIC
    decision = promote_if_better(
        name,
        version,
        tracking_uri=uri,
        evaluate=lambda model: rmse_on(model, study.holdout_observed, study.holdout_truth),
        metric=metric,
        higher_is_better=higher,
    )
    return decision.to_dict()


def small_config(config: RulConfig) -> RulConfig:
    """The reduced configuration of ``small_mode`` (tests, CI): 3 folds × 1, 100 trees, 5 calibration cuts, nested
    coverage 1 × 3."""
    from dataclasses import replace

    return replace(config, folds=3, repeats=1, n_estimators=100, calibration_cuts=5, coverage_repeats=1,
                   coverage_folds=3)  # fmt: skip


def run_from_parameters(
    *,
    data_path: str | None,
    output_dir: str,
    summary_path: str | None,
    tracking_uri: str | None,
    model_name: str,
    small_mode: bool = False,
    folds: int = 5,
    repeats: int = 2,
    seed: int = 0,
    register: bool = True,
    log_to_mlflow: bool = True,
) -> RulRun:
    """Notebook 08's one call: read the training file (``data_path`` or ``cmapss/train_FD001.txt`` in
    ``SM_DATASETS_DIR``; a missing file stops with the file, the folder and ``make datasets``), run, and write the
    summary (``summary_path``, JSON; None: not written)."""
    from core.datasets import resolve_input
    from core.ml.rul.data import DEFAULT_TRAIN_FILE, load_cmapss

    path = resolve_input(data_path, DEFAULT_TRAIN_FILE, "cmapss")
    config = RulConfig(folds=folds, repeats=repeats, seed=seed)
    if small_mode:
        config = small_config(config)
    run = run_rul_training(
        load_cmapss(path),
        config=config,
        output_dir=output_dir,
        data_file=path.name,
        tracking_uri=tracking_uri,
        model_name=model_name,
        register=register,
        log_to_mlflow=log_to_mlflow,
    )
    if summary_path is not None:
        out = Path(summary_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(run.summary | {"small_mode": small_mode}, indent=2, default=float) + "\n")
    return run


def results_table(run: RulRun) -> pd.DataFrame:
    """CV (mean ± SD over folds) and promotion-engine figures side by side, with the published anchors."""
    cv = run.study.cv_summary()
    rows = [
        {"what": "validation (CV, held-back engines)", "rmse": cv["cv_rmse_mean"], "rmse_sd": cv["cv_rmse_sd"],
         "phm08_score": cv["cv_phm08_score_mean"], "coverage_90": cv["cv_coverage_pooled"],
         "engines": float(run.study.fold_scores["engines"].mean())},
        {"what": "promotion engines (final model)", "rmse": run.study.holdout_scores["rmse"], "rmse_sd": np.nan,
         "phm08_score": run.study.holdout_scores["phm08_score"], "coverage_90": run.study.holdout_scores["coverage"],
         "engines": run.study.holdout_scores["engines"]},
    ]  # fmt: skip
    rows += [{"what": f"{name}, FD001 test (published)", "rmse": value} for name, value in ANCHORS.items()]
    return pd.DataFrame(rows)


def coverage_table(run: RulRun) -> pd.DataFrame:
    """The nested coverage study per calibration variant (mean, SD, 5–95 % over splits; empty when not run)."""
    variants = (run.summary.get("nested_coverage") or {}).get("variants", [])
    return pd.DataFrame(variants)


__all__ = [
    "DEFAULT_EXPERIMENT",
    "RulRun",
    "coverage_table",
    "results_table",
    "run_from_parameters",
    "run_rul_training",
    "small_config",
    "summarise",
]
