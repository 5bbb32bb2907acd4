"""Configuration of the AI4I classification gauntlet (:mod:`core.ml.ai4i.gauntlet`, notebook 05): the data source,
the cross-validation protocol, the models and feature sets, where figures, summary and MLflow runs go, and the
CI-sized small mode. Shared by the gauntlet and its MLflow logging (:mod:`core.ml.ai4i.tracking`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.ml.ai4i.evaluation import MODELS
from core.ml.ai4i.features import FEATURE_SETS

GENERATED = "generated"
SMALL_PARAMS = {"random_forest": {"n_estimators": 60}, "lightgbm": {"n_estimators": 80}}


@dataclass(frozen=True)
class GauntletConfig:
    data_path: str | None = None  # None: ai4i2020/ai4i2020.csv in SM_DATASETS_DIR; "generated"; or a file
    n_rows: int = 10_000  # generated mode
    seed: int = 0
    n_splits: int = 5
    n_repeats: int = 3
    inner_splits: int = 3
    models: tuple[str, ...] = MODELS
    feature_sets: tuple[str, ...] = FEATURE_SETS
    output_dir: str = "docs/ml/ai4i"
    summary_path: str | None = "docs/ml/ai4i_summary.json"
    tracking_uri: str | None = None
    log_to_mlflow: bool = True
    register: bool = True
    max_rows: int | None = None  # stratified subsample (small mode)
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    small_mode: bool = False

    @classmethod
    def small(cls, **overrides: Any) -> GauntletConfig:
        """CI-sized run: 1,200 rows, 3-fold × 1, 2 inner folds, small forests."""
        base = cls(
            max_rows=1200, n_splits=3, n_repeats=1, inner_splits=2, model_params=SMALL_PARAMS, small_mode=True
        )
        return replace(base, **overrides)

    @classmethod
    def from_parameters(cls, small_mode: bool = False, **parameters: Any) -> GauntletConfig:
        """The notebook's parameters → a config; ``small_mode`` keeps only the explicitly small knobs."""
        given = {k: v for k, v in parameters.items() if v is not None or k == "tracking_uri"}
        for name in ("models", "feature_sets"):
            if name in given:
                given[name] = tuple(given[name])
        if small_mode:
            for knob in ("n_splits", "n_repeats", "inner_splits", "max_rows"):
                given.pop(knob, None)
            return cls.small(**given)
        return cls(**given)

    @property
    def source(self) -> str:
        return GENERATED if self.data_path == GENERATED else "real"

    @property
    def key(self) -> str:
        """Summary key and figure folder: ``real`` / ``generated``, ``_small`` appended in small mode."""
        return f"{self.source}_small" if self.small_mode else self.source


__all__ = ["GENERATED", "SMALL_PARAMS", "GauntletConfig"]
