"""Evaluation of anomaly detectors on readings with fault windows: time-ordered splits, threshold choice on the
validation split, point metrics, event-level detection delay and false alarms, the streaming ``robust_z``
baseline of the anomaly agent (``core.anomaly.baseline``) and agreement with work-order labels.

Conventions
-----------
* A reading is faulty when its sensor has a fault window ``started_at <= timestamp <= ended_at``
  (``core.ml.datasets.fault_mask``); a reading is flagged when ``score >= threshold``.
* Splits are by time, the same cut times for every sensor: ``train`` before ``train_end``, ``validation`` from
  ``train_end`` to before ``val_end``, ``test`` from ``val_end``. Thresholds are chosen on validation only;
  reported numbers come from test only.
* Event level: every fault window with at least one reading in the evaluated split is one event. It is detected
  when a reading inside it (and inside the split) is flagged; the detection delay is the time from the window's
  first reading in the split (its start, unless the window began in an earlier split) to the first flag. A false
  alarm is a run of consecutive flagged readings of a sensor outside every fault window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.anomaly.baseline import BaselineConfig, floors_for, score_series

SPLITS = ("train", "validation", "test")
DEFAULT_LABEL_LOOKBACK = pd.Timedelta(hours=6)


@dataclass(frozen=True)
class SplitTimes:
    train_end: pd.Timestamp
    val_end: pd.Timestamp

    def labels(self, timestamps: pd.Series) -> np.ndarray:
        ts = pd.to_datetime(timestamps, utc=True)
        out = np.where(ts < self.train_end, "train", np.where(ts < self.val_end, "validation", "test"))
        return out.astype(object)


def split_times(timestamps: pd.Series, train_fraction: float = 0.4, val_fraction: float = 0.2) -> SplitTimes:
    """Cut times at ``train_fraction`` and ``train_fraction + val_fraction`` of the covered time span."""
    if not (train_fraction > 0 and val_fraction > 0 and train_fraction + val_fraction < 1):
        raise ValueError("need 0 < train_fraction, 0 < val_fraction and train_fraction + val_fraction < 1")
    ts = pd.to_datetime(timestamps, utc=True)
    lo, hi = ts.min(), ts.max()
    span = hi - lo
    return SplitTimes(
        train_end=lo + span * train_fraction, val_end=lo + span * (train_fraction + val_fraction)
    )


# --- thresholds ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    rule: str  # "max_f1" (validation holds faults) or "alarm_rate" (it does not)
    validation_f1: float
    validation_positives: int


def _prf(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float, float, int, int, int]:
    tp = int(np.sum(y_true & y_pred))
    fp = int(np.sum(~y_true & y_pred))
    fn = int(np.sum(y_true & ~y_pred))
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1, tp, fp, fn


def choose_threshold(
    scores: np.ndarray, y_true: np.ndarray, *, alarm_rate: float = 0.01, min_positives: int = 1
) -> ThresholdChoice:
    """The validation threshold: with at least ``min_positives`` faulty readings, the score that maximises F1
    (ties: the highest such score, i.e. the fewest alarms); otherwise the ``1 - alarm_rate`` quantile of the
    validation scores (an alarm budget on data believed normal)."""
    scores = np.asarray(scores, dtype=float)
    y_true = np.asarray(y_true, dtype=bool)
    if scores.size == 0:
        raise ValueError("choose_threshold needs validation scores")
    positives = int(y_true.sum())
    if positives >= min_positives:
        order = np.argsort(-scores, kind="stable")
        s, y = scores[order], y_true[order]
        tp = np.cumsum(y)
        fp = np.cumsum(~y)
        # a threshold equal to s[i] flags every score >= s[i]: take the last index of each run of equal scores
        last = np.r_[s[1:] != s[:-1], True]
        f1 = np.where(last, 2 * tp / (2 * tp + fp + (positives - tp)), -1.0)
        best = int(np.argmax(f1))  # first maximum = highest threshold
        return ThresholdChoice(float(s[best]), "max_f1", float(f1[best]), positives)
    threshold = float(np.quantile(scores, 1.0 - alarm_rate))
    flagged = scores >= threshold
    return ThresholdChoice(threshold, "alarm_rate", _prf(y_true, flagged)[2], positives)


# --- metrics ---------------------------------------------------------------------------------------------------
def _runs(flags: np.ndarray) -> int:
    """Number of runs of consecutive True values."""
    if flags.size == 0:
        return 0
    return int(flags[0]) + int(np.sum(flags[1:] & ~flags[:-1]))


def detection_metrics(
    frame: pd.DataFrame, flags: np.ndarray, faults: pd.DataFrame | None, *, is_faulty: np.ndarray
) -> dict[str, float]:
    """Point and event metrics of ``flags`` on ``frame`` (columns sensor_id, timestamp; one split, any order)."""
    flags = np.asarray(flags, dtype=bool)
    y = np.asarray(is_faulty, dtype=bool)
    precision, recall, f1, tp, fp, fn = _prf(y, flags)
    data = pd.DataFrame(
        {"sensor_id": frame["sensor_id"].to_numpy(), "timestamp": frame["timestamp"].to_numpy()},
    )
    data["flag"], data["faulty"] = flags, y
    data = data.sort_values(["sensor_id", "timestamp"], kind="stable")
    false_alarms = 0
    for _, group in data.groupby("sensor_id", sort=False):
        outside = group["flag"].to_numpy() & ~group["faulty"].to_numpy()
        # runs split by in-window readings count separately
        false_alarms += _runs(outside)
    events = detected = 0
    delays: list[float] = []
    if faults is not None:
        for fault in faults.itertuples(index=False):
            inside = data[
                (data["sensor_id"] == fault.sensor_id)
                & (data["timestamp"] >= fault.started_at)
                & (data["timestamp"] <= fault.ended_at)
            ]
            if inside.empty:
                continue
            events += 1
            hit = inside[inside["flag"]]
            if not hit.empty:
                detected += 1
                delays.append((hit["timestamp"].iloc[0] - inside["timestamp"].iloc[0]).total_seconds() / 60.0)
    hours = 0.0
    if len(data):
        span = data.groupby("sensor_id")["timestamp"].agg(["min", "max"])
        hours = float(((span["max"] - span["min"]).dt.total_seconds().sum()) / 3600.0)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "readings": len(data),
        "faulty_readings": int(y.sum()),
        "flagged": int(flags.sum()),
        "events": events,
        "events_detected": detected,
        "mean_delay_min": float(np.mean(delays)) if delays else float("nan"),
        "max_delay_min": float(np.max(delays)) if delays else float("nan"),
        "false_alarms": false_alarms,
        "false_alarms_per_sensor_day": false_alarms / (hours / 24.0) if hours else float("nan"),
    }


def threshold_curve(scores: np.ndarray, y_true: np.ndarray, points: int = 60) -> pd.DataFrame:
    """Precision, recall and F1 at thresholds spread over the score quantiles (for plots)."""
    scores = np.asarray(scores, dtype=float)
    y = np.asarray(y_true, dtype=bool)
    thresholds = np.unique(np.quantile(scores, np.linspace(0.5, 1.0, points)))
    rows = []
    for t in thresholds:
        p, r, f, *_ = _prf(y, scores >= t)
        rows.append({"threshold": float(t), "precision": p, "recall": r, "f1": f})
    return pd.DataFrame(rows)


# --- the statistical baseline ----------------------------------------------------------------------------------
def robust_z_scores(
    frame: pd.DataFrame, config: BaselineConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Streaming ``robust_z`` scores of the anomaly agent (``core.anomaly.baseline``) per sensor in time order:
    ``(scores, warming_up)`` aligned with ``frame``'s rows. Each reading is scored against the sensor's previous
    ``config.window`` readings only, with its type's scale floors (column ``sensor_type`` when present) and the
    agent's restart after a regime gap — the same code path (``score_series``) as the agent."""
    config = config or BaselineConfig()
    scores = np.zeros(len(frame))
    warming = np.ones(len(frame), dtype=bool)
    order = frame.assign(_pos=np.arange(len(frame))).sort_values(["sensor_id", "timestamp"], kind="stable")
    order = order[order["value"].notna()]
    for _, group in order.groupby("sensor_id", sort=False):
        sensor_type = group["sensor_type"].iloc[0] if "sensor_type" in group else None
        stamps = [t.to_pydatetime() for t in pd.to_datetime(group["timestamp"], utc=True)]
        result = score_series(stamps, group["value"].to_numpy(dtype=float), config, floors_for(sensor_type))
        pos = group["_pos"].to_numpy()
        scores[pos], warming[pos] = result.scores, result.warming_up
    return scores, warming


# --- work-order labels -----------------------------------------------------------------------------------------
def label_agreement(
    readings: pd.DataFrame,
    flags: np.ndarray,
    labels: pd.DataFrame,
    *,
    lookback: pd.Timedelta = DEFAULT_LABEL_LOOKBACK,
) -> dict[str, float]:
    """How flags agree with completed work orders: per label with a sensor, whether the detector flagged a
    reading of that sensor in ``[t - lookback, t]`` where ``t`` is the alert's opening time (else the completion
    time). ``hit_rate_confirmed``: share of ``fault_confirmed`` labels flagged; ``flag_rate_no_fault``: share of
    ``no_fault_found`` labels flagged (lower is better). NaN where a kind has no label with readings."""
    data = pd.DataFrame(
        {
            "sensor_id": readings["sensor_id"].to_numpy(),
            "timestamp": pd.DatetimeIndex(pd.to_datetime(readings["timestamp"], utc=True)),
            "flag": np.asarray(flags, dtype=bool),
        }
    )
    counts: dict[str, list[int]] = {"fault_confirmed": [0, 0], "no_fault_found": [0, 0]}
    for label in labels.itertuples(index=False):
        if not isinstance(label.sensor_id, str) or label.outcome not in counts:
            continue
        at = label.alert_opened_at if pd.notna(label.alert_opened_at) else label.completed_at
        at = pd.Timestamp(at).tz_convert("UTC")
        window = data[
            (data["sensor_id"] == label.sensor_id)
            & (data["timestamp"] >= at - lookback)
            & (data["timestamp"] <= at)
        ]
        if window.empty:
            continue
        counts[label.outcome][0] += 1
        counts[label.outcome][1] += int(window["flag"].any())

    def rate(kind: str) -> float:
        n, hit = counts[kind]
        return hit / n if n else float("nan")

    return {
        "labels_confirmed": counts["fault_confirmed"][0],
        "labels_no_fault": counts["no_fault_found"][0],
        "hit_rate_confirmed": rate("fault_confirmed"),
        "flag_rate_no_fault": rate("no_fault_found"),
    }


def jsonable_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Finite float metrics only (MLflow rejects NaN in some stores; a NaN metric means undefined)."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
            out[key] = float(value)
    return out


__all__ = [
    "SPLITS",
    "SplitTimes",
    "ThresholdChoice",
    "choose_threshold",
    "detection_metrics",
    "jsonable_metrics",
    "label_agreement",
    "robust_z_scores",
    "split_times",
    "threshold_curve",
]
