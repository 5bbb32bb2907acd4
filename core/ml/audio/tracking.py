"""MLflow logging of the audio gauntlet (one parent run, one nested run per dataset and model; the deployable
frame model registered as ``audio_<machine>_<kind>``) and the summary JSON ``docs/ml/audio_summary.json``."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.ml.audio.gauntlet import DatasetResult
from core.ml.audio.metrics import MAX_FPR, auc
from core.ml.audio.pyfunc import FAMILY, AudioAnomalyModel, model_name, signature_and_example

EXPERIMENT = "audio-gauntlet"
# DCASE 2020 Task 2 baseline (dense autoencoder on 5-frame log-mel vectors), development set, AUC in %, as given
# in issue 6. pAUC reference figures are not carried: they could not be verified offline.
REFERENCE_AUC = {"fan": 65.2, "pump": 72.6, "slider": 85.0, "valve": 66.5}
PAUC_DEFINITION = (
    "DCASE 2020 Task 2 definition: area under the ROC curve for FPR in [0, 0.1] divided by 0.1 (random = 0.05); "
    "pauc_mcclish is scikit-learn's roc_auc_score(max_fpr=0.1) standardisation of the same area (random = 0.5)"
)


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def caveats(result: DatasetResult) -> list[str]:
    """Plain statements of what limits the figures of this dataset (small counts, no reference machine type)."""
    notes = []
    by_id = next(iter(result.evaluations.values())).by_id
    for row in by_id.itertuples():
        if row.n_anomaly < 5 or row.n_normal < 10:
            notes.append(
                f"{row.machine} {row.machine_id}: {row.n_normal} normal and {row.n_anomaly} anomalous clips - "
                "AUC moves "
                f"in steps of {1 / max(1, row.n_normal * row.n_anomaly):.3g}; with {row.n_normal} normal clips the "
                f"FPR range [0, 0.1] spans only the top {0.1 * row.n_normal:g} normal clip(s), so pAUC counts only "
                "anomalous clips that outrank every normal clip; far too few clips to compare with DCASE figures"
            )
    for machine in sorted(result.clips["machine"].unique()):
        if machine not in REFERENCE_AUC:
            notes.append(f"machine '{machine}' is not a DCASE 2020 machine type: no reference figure applies")
    if "rf" in result.evaluations and result.evaluations["rf"].params.get("single_class_folds"):
        notes.append(
            "rf: some folds had no anomalous clip to train on; their clips get probability 0 (a classifier that has "
            "seen only normal sound), so the RandomForest figure is not meaningful here"
        )
    return notes


def dataset_summary(result: DatasetResult) -> dict[str, Any]:
    models = {}
    for name, ev in result.evaluations.items():
        models[name] = {
            "params": ev.params,
            "by_id": ev.by_id.to_dict("records"),
            "mean_auc": float(ev.by_id["auc"].mean()),
            "mean_pauc": float(ev.by_id["pauc"].mean()),
            "fit_seconds": ev.fit_seconds,
        }
    summary: dict[str, Any] = _clean(
        {
            "source": result.source,
            "clips": result.counts().to_dict("records"),
            "n_clips": len(result.clips),
            "feature_seconds": result.feature_seconds,
            "caveats": caveats(result),
            "models": models,
            "registered": {
                m: {
                    "name": model_name(m, f.model.kind),
                    "threshold": f.threshold,
                    "n_training_clips": f.n_training_clips,
                }
                for m, f in result.finals.items()
            },
        }
    )
    return summary


def write_summary(
    results: Sequence[DatasetResult], path: str | PathLike[str], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write the summary JSON (measured figures per dataset and model, and the reference) and return it."""
    summary = {
        "gauntlet": "audio (MIMII / DCASE 2020 Task 2)",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "max_fpr": MAX_FPR,
        "pauc_definition": PAUC_DEFINITION,
        "reference": {
            "what": "DCASE 2020 Task 2 baseline autoencoder, development set, mean AUC per machine type (%)",
            "auc_percent": REFERENCE_AUC,
        },
        "datasets": {r.name: dataset_summary(r) for r in results},
        "protocol": (
            "unsupervised models trained per machine type on normal clips only; MIMII layout: cross-fitting over "
            "folds of clips (each clip scored once by a model that never saw it); DCASE layout: train/ vs test/; "
            "hyperparameters fixed a priori; registered model refitted on all normal training clips, its "
            "promotion check (AUC over the dataset's clips, candidate and champion alike) is in-sample for normals"
        ),
    } | dict(extra or {})
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_clean(summary), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def _evaluate_closure(result: DatasetResult, machine: str) -> Any:
    clips = result.clips[result.clips["machine"] == machine]
    paths = list(clips["path"])
    y = (clips["label"] == "anomaly").to_numpy(int)

    def evaluate(model: Any) -> float:
        return auc(y, model.predict(pd.DataFrame({"path": paths}))["score"].to_numpy(float))

    return evaluate


def _log_registered(
    result: DatasetResult, machine: str, metrics: Mapping[str, float], promote: bool
) -> dict[str, Any]:
    import mlflow

    fitted = result.finals[machine]
    name = model_name(machine, fitted.model.kind)
    python_model = AudioAnomalyModel(fitted, result.config)
    example_path = str(result.clips.loc[result.clips["machine"] == machine, "path"].iloc[0])
    signature, example = signature_and_example(example_path)
    mlflow.set_tags({"sm.family": FAMILY, "sm.machine": machine, "sm.model_name": name})
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=python_model,
        signature=signature,
        input_example=example,
        registered_model_name=name,
        metadata=_clean(python_model.metadata()),
    )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    client.set_model_version_tag(name, version, "sm.family", FAMILY)
    client.set_model_version_tag(name, version, "sm.machine", machine)
    client.set_model_version_tag(name, version, "sm.threshold", str(fitted.threshold))
    entry: dict[str, Any] = {"name": name, "version": version}
    if promote:
        from core.ml.registry.promotion import promote_if_better

        decision = promote_if_better(
            name, version, evaluate=_evaluate_closure(result, machine), metric="auc", higher_is_better=True
        )
        entry |= {"promoted": decision.promoted, "reason": decision.reason}
    return entry


def log_gauntlet(
    results: Sequence[DatasetResult],
    figure_paths: Sequence[str | PathLike[str]],
    params: Mapping[str, Any] | None = None,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    summary_path: str | PathLike[str] | None = None,
    *,
    register: bool = True,
    promote: bool = True,
) -> dict[str, Any]:
    """One parent run ``audio-gauntlet`` (params, figures, summary) with a nested run per dataset and model
    (params, AUC/pAUC per id, clip scores); the ``register_kind`` run of each dataset also logs and registers
    the deployable model per machine and passes it to ``core.ml.registry.promotion.promote_if_better`` (evaluation: AUC
    over the dataset's clips — the same clips for candidate and champion; for the MIMII layout the refitted
    model has seen the normal ones, so this is a relative check, the reported AUC is the cross-fitted one)."""
    import mlflow

    from core.ml.eda.tracking import (
        _get_or_create_experiment,
        default_artifact_location,
        resolve_tracking_uri,
    )
    from core.ml.registry.uris import fluent_uri

    uri = resolve_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = _get_or_create_experiment(client, experiment, default_artifact_location(uri))
    out: dict[str, Any] = {"runs": {}, "registered": []}
    with fluent_uri(uri), mlflow.start_run(experiment_id=experiment_id, run_name="audio-gauntlet") as parent:
        out["parent_run_id"] = parent.info.run_id
        mlflow.set_tags({"sm.family": FAMILY, "sm.kind": "gauntlet"})
        mlflow.log_params(
            {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in (params or {}).items()}
        )
        for result in results:
            for kind, ev in result.evaluations.items():
                with mlflow.start_run(
                    run_name=f"{result.name}-{kind}", nested=True, experiment_id=experiment_id
                ) as child:
                    started = time.perf_counter()
                    mlflow.set_tags({"sm.family": FAMILY, "sm.dataset": result.name, "sm.model": kind})
                    mlflow.log_params(
                        {
                            f"model.{k}": json.dumps(v) if isinstance(v, list | dict) else v
                            for k, v in ev.params.items()
                        }
                        | {"dataset": result.name, "n_clips": len(result.clips)}
                    )
                    metrics = ev.metrics()
                    mlflow.log_metrics(metrics)
                    mlflow.log_text(ev.clip_scores.to_csv(index=False), "scores/clip_scores.csv")
                    mlflow.log_text(ev.by_id.to_csv(index=False), "scores/by_id.csv")
                    out["runs"][f"{result.name}-{kind}"] = child.info.run_id
                    if register and kind == result.register_kind:
                        for machine in sorted(result.finals):
                            entry = _log_registered(result, machine, metrics, promote)
                            out["registered"].append(entry | {"dataset": result.name})
                    mlflow.log_metric("log_seconds", time.perf_counter() - started)
                for key in ("mean_auc", "mean_pauc"):
                    if key in metrics:
                        mlflow.log_metric(f"{result.name}.{kind}.{key}", metrics[key])
        for path in figure_paths:
            mlflow.log_artifact(str(path), "plots")
        if summary_path is not None:
            summary = write_summary(results, summary_path, {"registered": out["registered"]})
            mlflow.log_dict(_clean(summary), "summary/audio_summary.json")
    return out


def comparison_table(results: Sequence[DatasetResult]) -> pd.DataFrame:
    """Mean AUC and pAUC (%) over the ids of each dataset, machine and model, beside the DCASE 2020 baseline AUC
    of the machine type when the machine name is one of fan/pump/slider/valve (NaN otherwise)."""
    rows = []
    for result in results:
        for model, ev in result.evaluations.items():
            for row in ev.machine_means().itertuples():
                rows.append(
                    {
                        "dataset": result.name,
                        "machine": row.machine,
                        "model": model,
                        "ids": int((ev.by_id["machine"] == row.machine).sum()),
                        "auc_percent": 100 * row.auc,
                        "pauc_percent": 100 * row.pauc,
                        "reference_auc_percent": REFERENCE_AUC.get(str(row.machine), np.nan),
                    }
                )
    return pd.DataFrame(rows)
