"""Hyperparameter search for the forecasters on the validation folds, and the test-fold report of the choice.

Protocol (``tests/ml/test_forecast_models.py`` checks it):

1. Every candidate (seasonal naive, each Prophet and each LightGBM configuration) is backtested on the
   **validation** folds only.
2. Per sensor type, the configuration with the lowest validation MAE is chosen for each method, and the method
   with the lowest validation MAE among the three chosen ones becomes the type's registered model (this may be
   the seasonal naive).
3. Only then are the three chosen specs backtested on the **test** folds; those numbers are reported and never
   feed back into a choice.

The default grids are modest (Prophet 3 × 3, LightGBM 3 × 2 × 2 × 2, at most ``max_configs`` of each, sampled
with a fixed seed) so that the full run stays within minutes on two shared cores.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from core.ml.forecast.backtest import ModelSpec, score_table
from core.ml.forecast.models import DEFAULT_PARAMS, METHODS

PROPHET_GRID: dict[str, tuple[float, ...]] = {
    "changepoint_prior_scale": (0.01, 0.05, 0.3),
    "seasonality_prior_scale": (0.1, 1.0, 10.0),
}
LIGHTGBM_GRID: dict[str, tuple[float, ...]] = {
    "num_leaves": (7, 15, 31),
    "learning_rate": (0.03, 0.1),
    "n_estimators": (100, 300),
    "min_child_samples": (5, 20),
}
DEFAULT_GRIDS: dict[str, Mapping[str, Sequence[Any]]] = {"prophet": PROPHET_GRID, "lightgbm": LIGHTGBM_GRID}


def grid_configs(
    grid: Mapping[str, Sequence[Any]], max_configs: int | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Every combination of ``grid`` (in order), or ``max_configs`` of them sampled with ``seed``."""
    keys = list(grid)
    configs = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]
    if max_configs is not None and len(configs) > max_configs:
        picked = sorted(random.Random(seed).sample(range(len(configs)), max_configs))
        configs = [configs[i] for i in picked]
    return configs


def default_specs() -> list[ModelSpec]:
    """One spec per method with its default hyperparameters, labelled by the method."""
    return [ModelSpec(method, method, dict(DEFAULT_PARAMS[method])) for method in METHODS]


def candidate_specs(
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    max_configs: int | None = None,
    seed: int = 0,
) -> list[ModelSpec]:
    """The seasonal naive plus every sampled configuration of each gridded method (``prophet#0``, …);
    ``grids`` None → :func:`default_specs`. A method missing from ``grids`` keeps its default."""
    if grids is None:
        return default_specs()
    specs = [ModelSpec("naive", "naive", {})]
    for method in METHODS[1:]:
        grid = grids.get(method)
        if grid is None:
            specs.append(ModelSpec(method, method, dict(DEFAULT_PARAMS[method])))
            continue
        for i, config in enumerate(grid_configs(grid, max_configs, seed)):
            specs.append(ModelSpec(f"{method}#{i}", method, dict(DEFAULT_PARAMS[method]) | config))
    return specs


def select_on_validation(
    validation_predictions: pd.DataFrame, specs: Sequence[ModelSpec], *, exclude_faults: bool = True
) -> tuple[pd.DataFrame, dict[str, dict[str, ModelSpec]], dict[str, ModelSpec]]:
    """Choose, per sensor type, the best configuration of each method and the best method, by validation MAE.

    Returns ``(scores, selected, chosen)``: the validation score table (type × candidate, with ``method`` and
    ``params``), ``selected[type][method]`` the best spec of each method relabelled by its method name, and
    ``chosen[type]`` the spec to register. Raises if the frame holds anything but validation folds.
    """
    roles = set(validation_predictions["role"].unique())
    if roles - {"validation"}:
        raise ValueError(f"selection must only see validation folds, got roles {sorted(roles)}")
    by_label = {spec.label: spec for spec in specs}
    scores = score_table(validation_predictions, exclude_faults=exclude_faults)
    scores["method"] = scores["model"].map(lambda label: by_label[label].method)
    scores["params"] = scores["model"].map(lambda label: dict(by_label[label].params))
    selected: dict[str, dict[str, ModelSpec]] = {}
    chosen: dict[str, ModelSpec] = {}
    for sensor_type, table in scores.groupby("sensor_type", sort=True):
        best: dict[str, ModelSpec] = {}
        best_mae: dict[str, float] = {}
        for method, rows in table.groupby("method", sort=False):
            row = rows.sort_values(["mae", "model"], kind="stable").iloc[0]
            spec = by_label[row["model"]]
            best[method] = ModelSpec(method, method, dict(spec.params))
            best_mae[method] = float(row["mae"])
        order = [m for m in METHODS if m in best]  # ties go to the simpler method
        winner = min(order, key=lambda m: (best_mae[m], order.index(m)))
        selected[str(sensor_type)] = {m: best[m] for m in order}
        chosen[str(sensor_type)] = best[winner]
    return scores, selected, chosen
