"""Score a RUL model on a C-MAPSS-format test file and its truth file (``python -m apps.cli rul-evaluate``):
the estimate at each test unit's last cycle against the truth, RMSE, the PHM08 score and the empirical coverage of
the model's interval."""

from __future__ import annotations

from os import PathLike
from typing import Any

import pandas as pd

from core.ml.rul.data import load_cmapss, load_truth
from core.ml.rul.evaluation import phm08_terms, scores
from core.ml.rul.model import model_of, predict_last

TABLE_COLUMNS: tuple[str, ...] = (
    "unit", "last_cycle", "cycles", "true_rul", "rul", "rul_lower", "rul_upper", "error", "covered", "phm08",
)  # fmt: skip


def nominal_interval(model: Any) -> float:
    """The nominal coverage of the model's interval (metadata ``interval``; NaN when it states none)."""
    inner = model_of(model)
    meta = inner.metadata() if inner is not None else getattr(getattr(model, "metadata", None), "metadata", None)
    try:
        return float((meta or {})["interval"])
    except (KeyError, TypeError, ValueError):
        return float("nan")


def score_files(
    model: Any, test_path: str | PathLike[str], truth_path: str | PathLike[str]
) -> tuple[dict[str, float], pd.DataFrame]:
    """``(scores, per-unit table)``: :func:`core.ml.rul.evaluation.scores` of the model's estimates at the last
    cycle of every test unit (units in ascending order, matched to the truth file's lines in that order)."""
    test = load_cmapss(test_path)
    units = sorted(test["unit"].unique())
    truth = load_truth(truth_path, len(units))
    out = predict_last(model, test)
    table = out.assign(true_rul=truth.to_numpy()[[units.index(u) for u in out["unit"]]])
    if len(table) != len(units):
        raise ValueError(f"the model estimated {len(table)} of {len(units)} test units")
    table["error"] = table["rul"] - table["true_rul"]
    table["covered"] = (table["rul_lower"] <= table["true_rul"]) & (table["true_rul"] <= table["rul_upper"])
    table["phm08"] = phm08_terms(table["rul"], table["true_rul"])
    result = scores(table["rul"], table["true_rul"], table["rul_lower"], table["rul_upper"])
    result["interval"] = nominal_interval(model)
    return result, table.loc[:, list(TABLE_COLUMNS)]


__all__ = ["TABLE_COLUMNS", "nominal_interval", "score_files"]
