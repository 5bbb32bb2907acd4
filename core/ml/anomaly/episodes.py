"""The labelled evaluation data of an anomaly detector (:func:`evaluation_data`): which readings are evaluated, the
fault episodes a detector should alert on, the no-fault windows and the sensor-days. Used by
:mod:`core.ml.anomaly.promotion`, which counts a detector's alerts on it.

Evaluation data
---------------
* Readings: one sensor type's readings, whole series (earlier readings are history for the detectors); only the
  readings of the **evaluation split** (the notebook's test split, ``core.ml.anomaly.evaluation.split_times``) are
  evaluated. Readings with a missing value are dropped (the agent never scores them). The alert rule starts with
  no open alert at each sensor's first evaluation reading, and only openings at evaluation readings count.
* Sensor-days: the sum over sensors of the time from their first to their last evaluation reading, in days.

Episodes (what a detector should alert on)
------------------------------------------
* An injected fault (``faults``, the ``sensor_data_faults.csv`` format) of kind other than ``dropout`` (a dropout
  has no readings to flag) is the interval ``[started_at, ended_at]`` on its sensor.
* A ``fault_confirmed`` work-order label with a sensor is ``[t - lookback, t]`` on that sensor, ``t`` being the
  alert's opening time (the completion time when the work order had no alert), ``lookback`` 6 h by default.
* A fault counts only when its sensor has at least one evaluation reading inside it (a fault that began before
  the split is clipped to it).
* **Grace**: an episode also credits alerts opening up to the ``grace_readings``-th evaluation reading of its
  sensor after the fault's end (20 = the rule's ``n``: until then the rule's 20-reading window still holds faulty
  readings); when fewer readings follow, up to the sensor's last reading.
* Faults of one sensor whose intervals (grace included) overlap are merged into one episode.

No-fault windows: a ``no_fault_found`` label with a sensor is ``[t - lookback, t]`` on that sensor (``t`` as
above): an alert opening there is a false alarm even when it falls inside an episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.alerts.defaults import ANOMALY_SCORE
from core.ml.anomaly.evaluation import DEFAULT_LABEL_LOOKBACK

GRACE_READINGS = ANOMALY_SCORE.n
LABEL_LOOKBACK = DEFAULT_LABEL_LOOKBACK
UNDETECTABLE_KINDS = frozenset({"dropout"})


@dataclass(frozen=True)
class Episode:
    sensor_id: str
    start: pd.Timestamp
    fault_end: pd.Timestamp
    end: pd.Timestamp
    """Alerts opening in ``[start, end]`` hit the episode (``end`` = ``fault_end`` + grace)."""
    first_reading: pd.Timestamp
    """The sensor's first evaluation reading in ``[start, fault_end]`` (where the delay is counted from)."""
    sources: tuple[str, ...]


@dataclass(frozen=True)
class EvaluationData:
    """One sensor type's readings, which rows are evaluated, its episodes and no-fault windows."""

    sensor_type: str
    frame: pd.DataFrame
    """``sensor_id, timestamp, value``, sorted by sensor then time (index 0..n-1): what the detectors score."""
    evaluated: np.ndarray
    episodes: tuple[Episode, ...]
    no_fault: tuple[tuple[str, pd.Timestamp, pd.Timestamp], ...]
    sensor_days: float
    labels_used: int = 0
    labels_unused: int = 0
    rows_by_sensor: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Per sensor: the positions of its evaluation rows in ``frame``, in time order."""


def _label_time(label: Any) -> pd.Timestamp:
    at = label.alert_opened_at if pd.notna(label.alert_opened_at) else label.completed_at
    return pd.Timestamp(at).tz_convert("UTC")


def _grace_end(stamps: pd.DatetimeIndex, fault_end: pd.Timestamp, grace_readings: int) -> pd.Timestamp:
    after = stamps[stamps > fault_end]
    if len(after) >= grace_readings:
        return after[grace_readings - 1]
    return max(stamps[-1], fault_end)


def evaluation_data(
    readings: pd.DataFrame,
    evaluated: np.ndarray | pd.Series,
    faults: pd.DataFrame | None,
    labels: pd.DataFrame | None = None,
    *,
    sensor_type: str | None = None,
    lookback: pd.Timedelta = LABEL_LOOKBACK,
    grace_readings: int = GRACE_READINGS,
) -> EvaluationData:
    """The evaluation of one sensor type (see the module docstring): ``readings`` (``sensor_id, timestamp,
    value``, optionally ``sensor_type``; any order) with ``evaluated`` marking the evaluation rows."""
    if sensor_type is None:
        types = readings["sensor_type"].dropna().unique() if "sensor_type" in readings else []
        if len(types) != 1:
            raise ValueError(f"pass sensor_type: the readings hold types {list(types)}")
        sensor_type = str(types[0])
    frame = pd.DataFrame(
        {
            "sensor_id": readings["sensor_id"].astype(str).to_numpy(),
            "timestamp": pd.DatetimeIndex(pd.to_datetime(readings["timestamp"], utc=True)),
            "value": pd.to_numeric(readings["value"], errors="coerce").to_numpy(dtype=float),
            "_evaluated": np.asarray(evaluated, dtype=bool),
        }
    )
    frame = frame[np.isfinite(frame["value"].to_numpy())]
    frame = frame.sort_values(["sensor_id", "timestamp"], kind="stable", ignore_index=True)
    mask = frame.pop("_evaluated").to_numpy()
    rows = {
        str(sensor): np.flatnonzero(mask & (frame["sensor_id"] == sensor).to_numpy())
        for sensor in frame.loc[mask, "sensor_id"].unique()
    }
    stamps = {sensor: pd.DatetimeIndex(frame["timestamp"].to_numpy()[pos]) for sensor, pos in rows.items()}
    sensor_days = sum((s[-1] - s[0]).total_seconds() for s in stamps.values()) / 86_400.0

    faults_found: list[tuple[str, pd.Timestamp, pd.Timestamp, str]] = []
    for fault in (faults if faults is not None else pd.DataFrame()).itertuples(index=False):
        if fault.kind not in UNDETECTABLE_KINDS:
            faults_found.append((fault.sensor_id, fault.started_at, fault.ended_at, f"injected:{fault.kind}"))
    no_fault: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
    used = unused = 0
    for label in (labels if labels is not None else pd.DataFrame()).itertuples(index=False):
        if not isinstance(label.sensor_id, str) or label.outcome not in ("fault_confirmed", "no_fault_found"):
            continue
        at = _label_time(label)
        s = stamps.get(label.sensor_id)
        if s is None or not ((s >= at - lookback) & (s <= at)).any():
            unused += 1
            continue
        used += 1
        if label.outcome == "fault_confirmed":
            task = getattr(label, "task_id", None)
            faults_found.append((label.sensor_id, at - lookback, at, f"work_order:{task}"))
        else:
            no_fault.append((label.sensor_id, at - lookback, at))

    episodes: list[Episode] = []
    for sensor in sorted({f[0] for f in faults_found}):
        s = stamps.get(sensor)
        if s is None:
            continue
        spans = sorted(
            (start, end, source)
            for sid, start, end, source in faults_found
            if sid == sensor and ((s >= start) & (s <= end)).any()
        )
        merged: list[list[Any]] = []
        for start, end, source in spans:
            if merged and start <= _grace_end(s, merged[-1][1], grace_readings):
                merged[-1][1] = max(merged[-1][1], end)
                merged[-1][2].append(source)
            else:
                merged.append([start, end, [source]])
        for start, end, sources in merged:
            first = s[(s >= start) & (s <= end)][0]
            grace = _grace_end(s, end, grace_readings)
            episodes.append(Episode(sensor, start, end, grace, first, tuple(sources)))
    return EvaluationData(
        sensor_type, frame, mask, tuple(episodes), tuple(no_fault), sensor_days, used, unused, rows
    )


__all__ = [
    "GRACE_READINGS",
    "LABEL_LOOKBACK",
    "UNDETECTABLE_KINDS",
    "Episode",
    "EvaluationData",
    "evaluation_data",
]
