"""The audio gauntlet on one dataset: features, every model's leak-free evaluation, the deployable models, figures.

:func:`run_dataset` is what notebook 07 calls for the real clips and for the generated ones; MLflow logging and
the summary JSON are in :mod:`core.ml.audio.tracking`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.ml.audio import plots
from core.ml.audio.evaluation import FittedAudioModel, ModelEvaluation, evaluate_frame_model, fit_final
from core.ml.audio.features import (
    DEFAULT_MEL,
    MelConfig,
    extract_context_vectors,
    extract_mfcc_table,
    mfcc_feature_names,
)
from core.ml.audio.io import describe, read_clips
from core.ml.audio.metrics import scores_by_id
from core.ml.audio.models import random_forest_oof

DEFAULT_MODELS = ("pca", "gmm", "ae")


@dataclass
class DatasetResult:
    name: str
    clips: pd.DataFrame
    evaluations: dict[str, ModelEvaluation]
    finals: dict[str, FittedAudioModel] = field(default_factory=dict)  # per machine, for ``register_kind``
    register_kind: str = "pca"
    source: dict[str, Any] = field(default_factory=dict)
    feature_seconds: float = 0.0
    config: MelConfig = DEFAULT_MEL

    def table(self) -> pd.DataFrame:
        """AUC / pAUC per model and machine id (one row each)."""
        rows = [ev.by_id.assign(model=name) for name, ev in self.evaluations.items()]
        frame = pd.concat(rows, ignore_index=True)
        return frame[
            ["model", "machine", "machine_id", "n_normal", "n_anomaly", "auc", "pauc", "pauc_mcclish"]
        ]

    def counts(self) -> pd.DataFrame:
        return describe(self.clips)


def limit_clips(clips: pd.DataFrame, max_clips: int | None, seed: int = 0) -> pd.DataFrame:
    """At most ``max_clips`` clips per (machine, id, split, label), drawn with a seeded shuffle (None: all)."""
    if max_clips is None:
        return clips
    parts = [
        group.sample(n=min(max_clips, len(group)), random_state=seed)
        for _, group in clips.groupby(["machine", "machine_id", "split", "label"])
    ]
    return pd.concat(parts).sort_values(
        ["machine", "machine_id", "split", "label", "path"], ignore_index=True
    )


#: the machine-sound clips under the datasets folder (SM_DATASETS_DIR), as ``make datasets`` lays them out
MIMII_RELATIVE_PATH = "mimii"


def resolve_data_path(data_path: str | PathLike[str] | None) -> Path:
    """The clips' folder: ``data_path`` as given, or ``mimii`` in SM_DATASETS_DIR when None. Raises
    :class:`core.datasets.DatasetMissingError` when it is missing or holds no ``.wav`` file."""
    from core.datasets import DatasetMissingError, missing_message, resolve_input

    root = resolve_input(data_path, MIMII_RELATIVE_PATH, "mimii", kind="folder")
    if not any(root.rglob("*.wav")):
        raise DatasetMissingError(missing_message(root / "id_00", "mimii", what="folder of .wav clips"))
    return root


def load_dataset(
    data_path: str | PathLike[str] | None = None,
    layout: str = "mimii",
    max_clips: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Clip table of a dataset on disk (see :mod:`core.ml.audio.io`), optionally limited per id and label;
    ``data_path`` None: ``mimii`` in SM_DATASETS_DIR (:func:`resolve_data_path`)."""
    return limit_clips(read_clips(resolve_data_path(data_path), layout), max_clips, seed)


def run_dataset(
    name: str,
    clips: pd.DataFrame,
    models: Sequence[str] | str = DEFAULT_MODELS,
    *,
    model_options: Mapping[str, Mapping[str, Any]] | None = None,
    n_folds: int = 5,
    seed: int = 0,
    random_forest: bool = True,
    segment_s: float = 1.0,
    register_kind: str = "pca",
    config: MelConfig = DEFAULT_MEL,
    source: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> DatasetResult:
    """Extract features (failing loudly on any bad file), evaluate every frame model per machine id, the
    RandomForest on MFCC statistics for comparison, and fit the deployable ``register_kind`` model per machine."""
    if isinstance(models, str):  # "pca,gmm" from a command line (-p models=pca,gmm)
        models = [m.strip() for m in models.split(",") if m.strip()]
    options = dict(model_options or {})
    started = time.perf_counter()
    vectors = extract_context_vectors(clips["path"], config, progress=progress)
    feature_seconds = time.perf_counter() - started
    evaluations: dict[str, ModelEvaluation] = {}
    for kind in models:
        evaluations[kind] = evaluate_frame_model(clips, vectors, kind, options.get(kind), n_folds, seed)
    if random_forest:
        began = time.perf_counter()
        table = extract_mfcc_table(clips, config, segment_s, progress=progress)
        rf_clips, info = random_forest_oof(table, mfcc_feature_names(), random_state=seed)
        paths = clips.set_index("clip")["path"]
        rf_clips = rf_clips.assign(path=rf_clips["clip"].map(paths), fold=-1)
        evaluations["rf"] = ModelEvaluation(
            "rf",
            rf_clips[["clip", "path", "machine", "machine_id", "label", "fold", "score"]],
            scores_by_id(rf_clips),
            info | {"segment_s": segment_s, "features": "mfcc20+delta mean/std", "supervised": True},
            time.perf_counter() - began,
        )
    finals: dict[str, FittedAudioModel] = {}
    if register_kind in evaluations and register_kind != "rf":
        for machine in sorted(clips["machine"].unique()):
            finals[machine] = fit_final(
                clips, vectors, evaluations[register_kind], machine, options.get(register_kind)
            )
    return DatasetResult(
        name, clips, evaluations, finals, register_kind, dict(source or {}), feature_seconds, config
    )


def build_figures(result: DatasetResult) -> dict[str, Figure]:
    label = f"{result.name}: {len(result.clips)} clips"
    return {
        f"{result.name}_score_distributions": plots.plot_score_distributions(result.evaluations, label),
        f"{result.name}_roc_per_id": plots.plot_roc_per_id(result.evaluations, label),
        f"{result.name}_spectrograms": plots.plot_example_spectrograms(result.clips, result.config),
    }


def save_dataset_figures(result: DatasetResult, output_dir: str | PathLike[str]) -> list[Path]:
    from core.ml.eda.plots import save_figures

    figures = build_figures(result)
    paths = save_figures(figures, output_dir)
    for fig in figures.values():
        fig.clear()
    return paths


def mean_auc(result: DatasetResult, model: str) -> float:
    return float(np.nanmean(result.evaluations[model].by_id["auc"]))


def generated_dataset(
    n_generated: int = 12,
    *,
    ids: tuple[int, ...] = (0, 2),
    duration_s: float = 10.0,
    severity: float = 0.3,
    seed: int = 0,
    workdir: str | PathLike[str] | None = None,
) -> pd.DataFrame:
    """Write ``n_generated`` normal and ``n_generated // 2`` anomalous clips per id with
    :func:`core.ml.audio.generator.write_generated_dataset` into ``workdir`` (default: a new temporary directory,
    outside the repository) and return the clip table."""
    import tempfile

    from core.ml.audio.generator import write_generated_dataset

    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="sm-audio-generated-"))
    return write_generated_dataset(
        root,
        ids=ids,
        n_normal=n_generated,
        n_anomaly=max(1, n_generated // 2),
        duration_s=duration_s,
        severity=severity,
        seed=seed,
    )
