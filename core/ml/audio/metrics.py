"""DCASE 2020 Task 2 evaluation metrics.

**pAUC (DCASE definition).** The task defines the partial AUC as the area under the ROC curve over the false
positive rate range [0, p], divided by p (p = ``max_fpr`` = 0.1):

    pAUC = (1/p) ∫₀ᵖ TPR(FPR) dFPR

so a perfect detector scores 1 and a random one p/2 = 0.05. This is NOT what ``sklearn.metrics.roc_auc_score(...,
max_fpr=p)`` returns: scikit-learn applies the McClish standardisation ``½·(1 + (A − p²/2)/(p − p²/2))`` (random
→ 0.5, perfect → 1). :func:`pauc` implements the DCASE definition on the step-wise ROC curve of
``sklearn.metrics.roc_curve`` (ties become diagonal segments), cut at ``max_fpr`` by linear interpolation;
:func:`mcclish` converts it to scikit-learn's value for comparison. (The organisers' baseline script itself
called ``roc_auc_score(max_fpr=0.1)``; figures from it are McClish-standardised, which is why the summary
carries both.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MAX_FPR = 0.1


def _checked(
    y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, ...]:
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError("y_true and scores must be 1-D of equal length")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("y_true must be 0 (normal) / 1 (anomaly)")
    if y.sum() == 0 or y.sum() == y.size:
        raise ValueError("AUC needs both normal and anomalous clips")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    return y, s


def auc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC (anomaly = positive, higher score = more anomalous)."""
    from sklearn.metrics import roc_auc_score

    y, s = _checked(y_true, scores)
    return float(roc_auc_score(y, s))


def partial_area(
    y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, max_fpr: float = MAX_FPR
) -> float:
    """Raw area under the ROC curve for FPR in [0, max_fpr] (not normalised)."""
    from sklearn.metrics import roc_curve

    if not 0 < max_fpr <= 1:
        raise ValueError("max_fpr must be in (0, 1]")
    y, s = _checked(y_true, scores)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    stop = np.searchsorted(fpr, max_fpr, side="right")
    x = np.concatenate([fpr[:stop], [max_fpr]])
    yv = np.concatenate([tpr[:stop], [np.interp(max_fpr, fpr, tpr)]])
    return float(np.trapezoid(yv, x))


def pauc(
    y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, max_fpr: float = MAX_FPR
) -> float:
    """DCASE 2020 Task 2 pAUC: partial area over FPR ∈ [0, max_fpr] divided by max_fpr (random ≈ max_fpr/2)."""
    return partial_area(y_true, scores, max_fpr) / max_fpr


def mcclish(pauc_value: float, max_fpr: float = MAX_FPR) -> float:
    """scikit-learn's standardised value ``roc_auc_score(max_fpr=…)`` from a DCASE pAUC."""
    area = pauc_value * max_fpr
    min_area, max_area = 0.5 * max_fpr**2, max_fpr
    return 0.5 * (1 + (area - min_area) / (max_area - min_area))


def scores_by_id(scores: pd.DataFrame, score_column: str = "score", max_fpr: float = MAX_FPR) -> pd.DataFrame:
    """AUC and pAUC per (machine, machine_id) of a clip-score table with ``machine``, ``machine_id``, ``label``
    and ``score_column``; plus the counts, and NaN metrics where an id lacks one of the classes."""
    rows = []
    for (machine, machine_id), group in scores.groupby(["machine", "machine_id"], sort=True):
        y = (group["label"] == "anomaly").to_numpy(int)
        row = {
            "machine": machine,
            "machine_id": machine_id,
            "n_normal": int((y == 0).sum()),
            "n_anomaly": int(y.sum()),
            "auc": np.nan,
            "pauc": np.nan,
            "pauc_mcclish": np.nan,
        }
        if 0 < y.sum() < y.size:
            s = group[score_column].to_numpy(float)
            row["auc"] = auc(y, s)
            row["pauc"] = pauc(y, s, max_fpr)
            row["pauc_mcclish"] = mcclish(row["pauc"], max_fpr)
        rows.append(row)
    return pd.DataFrame(rows)
