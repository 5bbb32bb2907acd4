"""Leak-free evaluation protocol of the unsupervised frame models, per machine type and machine id.

One model is trained per machine type on normal clips (as the DCASE 2020 baseline). Which clips score it:

* **DCASE layout** (clips carry ``split`` train/test): train on ``train`` normals, score every ``test`` clip.
* **MIMII layout** (no predefined split): cross-fitting. Within each (machine, id, label) the clips are shuffled
  (seeded) and dealt round-robin into ``n_folds`` folds; for fold k the model is trained on the normal clips of
  the other folds and scores the clips of fold k (normal and anomalous). Every clip is scored exactly once, by a
  model that never saw it; normal clips used for training are never in the evaluated set of that model.

Per id the clip scores give AUC and the DCASE pAUC (:mod:`core.ml.audio.metrics`). Hyperparameters are the fixed
defaults of :mod:`core.ml.audio.models`; nothing is chosen on the evaluated clips. The deployable model
(:func:`fit_final`) is refitted on all normal training clips of the machine; its reported metrics are the
cross-fitted ones, and its decision threshold is a quantile of the out-of-fold scores of normal clips.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.ml.audio.metrics import MAX_FPR, scores_by_id
from core.ml.audio.models import FrameModel, make_frame_model

THRESHOLD_QUANTILE = 0.9


@dataclass
class ModelEvaluation:
    model: str
    clip_scores: pd.DataFrame  # clip, path, machine, machine_id, label, fold, score
    by_id: pd.DataFrame  # machine, machine_id, n_normal, n_anomaly, auc, pauc, pauc_mcclish
    params: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = 0.0

    def machine_means(self) -> pd.DataFrame:
        """Mean AUC / pAUC over the ids of each machine (the DCASE per-machine-type figure)."""
        return self.by_id.groupby("machine", as_index=False)[["auc", "pauc", "pauc_mcclish"]].mean()

    def metrics(self) -> dict[str, float]:
        """Flat metric dict for MLflow: ``auc_<machine>_<id>``, ``pauc_<machine>_<id>``, means."""
        out: dict[str, float] = {}
        for row in self.by_id.itertuples():
            key = f"{row.machine}_{row.machine_id}"
            if not np.isnan(row.auc):
                out[f"auc_{key}"] = float(row.auc)
                out[f"pauc_{key}"] = float(row.pauc)
        means = self.by_id[["auc", "pauc", "pauc_mcclish"]].mean()
        for name, value in means.items():
            if not np.isnan(value):
                out[f"mean_{name}"] = float(value)
        out["n_clips_scored"] = float(len(self.clip_scores))
        out["fit_seconds"] = self.fit_seconds
        return out


def has_predefined_split(clips: pd.DataFrame) -> bool:
    return bool(clips["split"].isin(["train", "test"]).all())


def assign_folds(clips: pd.DataFrame, n_folds: int = 5, seed: int = 0) -> pd.Series:
    """Fold of each clip (index aligned with ``clips``). DCASE layout: train clips -1, test clips 0. MIMII layout:
    round-robin within (machine, machine_id, label) after a seeded shuffle; ``n_folds`` is capped at the smallest
    number of normal clips of an id (at least 2 folds are needed to keep a training set)."""
    if has_predefined_split(clips):
        return pd.Series(np.where(clips["split"] == "train", -1, 0), index=clips.index, name="fold")
    normals = clips[clips["label"] == "normal"].groupby(["machine", "machine_id"]).size()
    if normals.empty or normals.min() < 2:
        raise ValueError("cross-fitting needs at least 2 normal clips per machine id")
    folds = int(min(n_folds, normals.min()))
    folds = max(folds, 2)
    rng = np.random.default_rng(seed)
    result = pd.Series(0, index=clips.index, name="fold")
    for _, group in clips.groupby(["machine", "machine_id", "label"]):
        order = rng.permutation(group.index.to_numpy())
        result.loc[order] = np.arange(len(order)) % folds
    return result


def _training_vectors(frame: pd.DataFrame, vectors: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    return [vectors[p] for p in frame.loc[frame["label"] == "normal", "path"]]


def evaluate_frame_model(
    clips: pd.DataFrame,
    vectors: Mapping[str, np.ndarray],
    kind: str,
    options: Mapping[str, Any] | None = None,
    n_folds: int = 5,
    seed: int = 0,
    max_fpr: float = MAX_FPR,
) -> ModelEvaluation:
    """Score every evaluated clip with a ``kind`` frame model that never saw it (see module doc)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # small fits: one BLAS thread is faster on a shared 2-core machine
        return _evaluate(clips, vectors, kind, options, n_folds, seed, max_fpr)


def _evaluate(
    clips: pd.DataFrame,
    vectors: Mapping[str, np.ndarray],
    kind: str,
    options: Mapping[str, Any] | None,
    n_folds: int,
    seed: int,
    max_fpr: float,
) -> ModelEvaluation:
    folds = assign_folds(clips, n_folds, seed)
    frame = clips.assign(fold=folds)
    scores = pd.Series(np.nan, index=frame.index)
    started = time.perf_counter()
    params: dict[str, Any] = {}
    for _, machine_frame in frame.groupby("machine"):
        for fold in sorted(f for f in machine_frame["fold"].unique() if f >= 0):
            if has_predefined_split(clips):
                train = machine_frame[machine_frame["fold"] == -1]
            else:
                train = machine_frame[machine_frame["fold"] != fold]
            train = train[train["label"] == "normal"]
            test = machine_frame[machine_frame["fold"] == fold]
            assert not set(train["path"]) & set(test["path"]), "a training clip reached the evaluated set"
            model = make_frame_model(kind, options).fit(_training_vectors(train, vectors))
            params = model.params()
            scores.loc[test.index] = model.score_clips([vectors[p] for p in test["path"]])
    evaluated = frame[frame["fold"] >= 0].assign(score=scores)
    if evaluated["score"].isna().any():
        raise RuntimeError("some evaluated clips were not scored")
    clip_scores = evaluated[["clip", "path", "machine", "machine_id", "label", "fold", "score"]].reset_index(
        drop=True
    )
    by_id = scores_by_id(clip_scores, max_fpr=max_fpr)
    params |= {"protocol": "dcase_split" if has_predefined_split(clips) else f"crossfit_{folds.max() + 1}"}
    return ModelEvaluation(kind, clip_scores, by_id, params, time.perf_counter() - started)


@dataclass
class FittedAudioModel:
    machine: str
    model: FrameModel
    threshold: float
    n_training_clips: int


def fit_final(
    clips: pd.DataFrame,
    vectors: Mapping[str, np.ndarray],
    evaluation: ModelEvaluation,
    machine: str,
    options: Mapping[str, Any] | None = None,
    quantile: float = THRESHOLD_QUANTILE,
) -> FittedAudioModel:
    """The deployable model of one machine: refit on all its normal training clips (``train`` split for DCASE);
    threshold = ``quantile`` of the evaluation's out-of-fold normal clip scores of that machine."""
    own = clips[clips["machine"] == machine]
    if has_predefined_split(clips):
        own = own[own["split"] == "train"]
    train = own[own["label"] == "normal"]
    model = make_frame_model(evaluation.model, options).fit(_training_vectors(train, vectors))
    oof = evaluation.clip_scores
    normal_scores = oof.loc[(oof["machine"] == machine) & (oof["label"] == "normal"), "score"]
    return FittedAudioModel(machine, model, float(np.quantile(normal_scores, quantile)), len(train))
