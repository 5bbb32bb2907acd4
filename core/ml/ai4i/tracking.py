"""MLflow logging of one gauntlet run (see :mod:`core.ml.ai4i.gauntlet`): a parent run ``ai4i-<source>`` in the
experiment ``ai4i_gauntlet`` with nested runs per model/feature set (CV means/SDs, fold table), one for the
published limits (reference) and one for the registered champion (``log_model`` + ``registered_model_name``),
then ``core.ml.registry.promotion.promote_if_better`` evaluated on the held-out part already in memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.ml.ai4i.config import GauntletConfig
from core.ml.ai4i.evaluation import METRICS, CvResult
from core.ml.ai4i.model import MODEL_NAME, PROMOTION_METRIC, f1_on, input_example, log_and_register

EXPERIMENT = "ai4i_gauntlet"


def _experiment_id(uri: str) -> str:
    from mlflow.tracking import MlflowClient

    from core.ml.eda.tracking import _get_or_create_experiment, default_artifact_location

    return _get_or_create_experiment(MlflowClient(tracking_uri=uri), EXPERIMENT, default_artifact_location(uri))


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}


def _params(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def promote(version: str, held: pd.DataFrame, uri: str) -> dict[str, Any]:
    """promote_if_better with an evaluator over the held-out rows in memory (same data for both versions)."""
    from core.ml.registry.promotion import promote_if_better  # lazy: owned by the serving engineer

    decision = promote_if_better(
        MODEL_NAME,
        version,
        tracking_uri=uri,
        evaluate=lambda model: f1_on(model, held),
        metric=PROMOTION_METRIC[0],
        higher_is_better=PROMOTION_METRIC[1],
    )
    return decision.to_dict()


def log_gauntlet(
    config: GauntletConfig,
    params: dict[str, Any],
    frame: pd.DataFrame,
    results: dict[str, CvResult],
    rules: pd.DataFrame,
    fitted: dict[str, Any],
    summary: dict[str, Any],
    figures: list[Path],
) -> str:
    """Log everything; adds ``summary["registered"]`` (version and promotion decision, or None)."""
    import mlflow

    from core.ml.eda.tracking import resolve_tracking_uri
    from core.ml.registry.uris import point_fluent_api_at

    uri = resolve_tracking_uri(config.tracking_uri)
    point_fluent_api_at(uri)
    experiment_id = _experiment_id(uri)
    # nested runs inherit the active experiment, not the parent's
    mlflow.set_experiment(experiment_id=experiment_id)
    champion = summary["champion"]
    tags = {"sm.kind": "gauntlet", "sm.family": "classifier", "sm.dataset": config.source}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"ai4i-{config.source}", tags=tags) as parent:
        mlflow.log_params(
            {
                **{k: _params(v) for k, v in params.items()},
                "rows": len(frame),
                "n_splits": config.n_splits,
                "n_repeats": config.n_repeats,
                "inner_splits": config.inner_splits,
                "seed": config.seed,
                "models": ",".join(config.models),
                "feature_sets": ",".join(config.feature_sets),
                "champion": champion["key"],
            }
        )
        for key, result in results.items():
            with mlflow.start_run(run_name=key, nested=True, tags=tags | {"sm.model_kind": result.model}):
                mlflow.log_params(
                    {
                        "model": result.model,
                        "feature_set": result.feature_set,
                        "model_params": _params(result.params),
                    }
                )
                mean, std = result.mean(), result.std()
                mlflow.log_metrics(
                    _finite({f"cv_{m}_mean": mean[m] for m in (*METRICS, "threshold")})
                    | _finite({f"cv_{m}_std": std[m] for m in METRICS})
                )
                mlflow.log_text(result.folds.to_csv(index=False), "cv_folds.csv")
        with mlflow.start_run(run_name="published_limits", nested=True, tags=tags | {"sm.reference": "true"}):
            mlflow.log_metrics(_finite({f"cv_{m}_mean": float(rules[m].mean()) for m in METRICS}))
            mlflow.log_text(rules.to_csv(index=False), "cv_folds.csv")
        mlflow.log_metrics(
            _finite(
                {
                    "champion_cv_f1_mean": champion["cv_mean"]["f1"],
                    "champion_cv_f1_std": champion["cv_std"]["f1"],
                    "champion_cv_roc_auc_mean": champion["cv_mean"]["roc_auc"],
                    "champion_cv_pr_auc_mean": champion["cv_mean"]["pr_auc"],
                    "holdout_f1": fitted["holdout"]["f1"],
                    "published_limits_cv_f1_mean": float(rules["f1"].mean()),
                }
            )
        )
        for path in figures:
            mlflow.log_artifact(str(path), "plots")
        summary["registered"] = None
        if config.register:
            holdout = fitted["holdout"]
            with mlflow.start_run(run_name=f"champion-{champion['key']}", nested=True, tags=tags):
                mlflow.log_params(
                    {
                        "model": champion["model"],
                        "feature_set": champion["feature_set"],
                        "threshold": fitted["threshold"],
                        "trained_on": "development part (80 %) of the fixed promotion split",
                    }
                )
                version = log_and_register(
                    fitted["model"],
                    input_example(fitted["dev"]),
                    metrics={f"holdout_{m}": holdout[m] for m in METRICS}
                    | {"f1": holdout["f1"], "cv_f1_mean": champion["cv_mean"]["f1"]}
                    | {
                        "cv_roc_auc_mean": champion["cv_mean"]["roc_auc"],
                        "cv_pr_auc_mean": champion["cv_mean"]["pr_auc"],
                    },
                    tags={"sm.feature_set": champion["feature_set"], "sm.dataset": config.source},
                )
            summary["registered"] = {
                "model_name": MODEL_NAME,
                "version": version,
                "promotion": promote(version, fitted["held"], uri),
            }
        mlflow.log_dict(summary, "summary.json")
        run_id: str = parent.info.run_id
        return run_id
