"""Promotion of anomaly detectors against what serves today, judged by the alerts users would see.

What serves a sensor type today is the type's ``anomaly_<type>@champion`` model, or the agent's streaming
``robust_z`` baseline when no champion exists. A trained candidate replaces it only if it beats it on the same
labelled evaluation. Both detectors score the same readings; their per-reading flags become alerts through the
shipped ``anomaly-score`` rule (``core.alerts.defaults.ANOMALY_SCORE``: open when 3 of a sensor's last 20 readings
are flagged, resolve after 10 normal readings and 30 minutes) run by the alerting engine's own pure function
``core.alerts.engine.simulate``; the alerts, not the flags, are counted.

The evaluation data — readings of the evaluation split (the notebook's test split), fault episodes (injected
faults and ``fault_confirmed`` work orders, with a grace of the rule's 20 readings after their end), no-fault
windows (``no_fault_found`` work orders) and sensor-days — are defined in :mod:`core.ml.anomaly.episodes`.

Figures of one detector (:class:`Evaluation`)
---------------------------------------------
* ``alerts``: alert openings at evaluation readings.
* An alert **hits** every episode of its sensor whose ``[start, end]`` (``end``: fault end + grace) holds its opening,
  unless it opens in a no-fault window of its sensor. ``hits``: episodes hit at least once.
* **event recall** = hits / episodes (NaN when there is no episode).
* ``false_alarms``: alerts that hit no episode (outside every episode of their sensor, or in a no-fault window).
  **false alarms per sensor-day** = false_alarms / sensor-days.
* ``median_delay_min`` (information only): median over the hit episodes of the minutes from the episode's first
  evaluation reading to its first alert opening.

The decision (:func:`decide`)
-----------------------------
Both detectors are evaluated on the same episodes and sensor-days, so the comparison is on the integer counts
(hits, false alarms), with no tolerance: equal counts are a tie. The candidate replaces what serves when

1. the evaluation holds at least one episode (otherwise recall is undefined and nothing shows that the candidate
   detects faults: no promotion), and
2. the candidate hits at least one episode (a detector that alerts on no fault would silence the type), and
3. hits ≥ the serving detector's hits AND false alarms ≤ the serving detector's, and at least one of the two
   strictly better.

So a candidate equal on both stays challenger, and one better on one figure but worse on the other too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from core.alerts.defaults import ANOMALY_SCORE
from core.alerts.engine import Hysteresis, anomaly_violation, simulate
from core.alerts.repository import Point
from core.anomaly.baseline import BaselineConfig, floors_for, score_series
from core.ml.anomaly.episodes import Episode, EvaluationData, evaluation_data

INPUT_COLUMNS = ("sensor_id", "timestamp", "value")
BASELINE = "robust_z"
#: ``sm.promotion.metric`` of this rule (the headline figure; the decision uses false alarms too).
METRIC = "event_recall"
#: The figures of :class:`Evaluation` in the order tables show them.
TABLE_FIGURES = (
    "episodes",
    "hits",
    "event_recall",
    "alerts",
    "false_alarms",
    "false_alarms_per_sensor_day",
    "median_delay_min",
    "sensor_days",
)


# --- detectors and alerts ---------------------------------------------------------------------------------------
def alert_openings(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    flags: np.ndarray,
    hysteresis: Hysteresis = ANOMALY_SCORE,
) -> list[datetime]:
    """Opening times of the alerts of one sensor's readings (time order) with per-reading ``flags``, by the
    alerting engine's ``simulate`` from a closed state, nothing suppressed."""
    if len(timestamps) == 0:
        return []
    points = [Point(t, float(v)) for t, v in zip(timestamps, values, strict=True)]
    flagged = {t for t, f in zip(timestamps, np.asarray(flags, dtype=bool), strict=True) if f}
    actions = simulate(
        points,
        anomaly_violation(flagged),
        hysteresis,
        alert_open=False,
        opened_at=None,
        last_observed_at=None,
        observed=set(),
        batch_start=points[0].timestamp,
        suppressed=lambda _t: False,
    )
    return [step.at for kind, step in actions.steps if kind == "open"]


def robust_z_flags(data: EvaluationData, config: BaselineConfig | None = None) -> np.ndarray:
    """The anomaly agent's ``robust_z`` flags (``score_series``: same code, type floors and regime restarts)."""
    config = config or BaselineConfig()
    flags = np.zeros(len(data.frame), dtype=bool)
    floors = floors_for(data.sensor_type)
    for _, group in data.frame.groupby("sensor_id", sort=False):
        stamps = [t.to_pydatetime() for t in group["timestamp"]]
        result = score_series(stamps, group["value"].to_numpy(dtype=float), config, floors)
        flags[group.index.to_numpy()] = result.flagged
    return flags


def model_flags(model: Any, data: EvaluationData, threshold: float | None = None) -> NDArray[np.bool_]:
    """Flags of an ``anomaly_<type>`` pyfunc as the agent takes them (``core.anomaly.champion.Champion.score``:
    ``is_anomaly``, else ``score >= threshold``; a non-finite score is no anomaly), the whole series at once."""
    from core.anomaly.champion import Champion

    threshold = BaselineConfig().threshold if threshold is None else threshold
    frame = data.frame.loc[:, list(INPUT_COLUMNS)].astype({"timestamp": "datetime64[ns, UTC]"})
    scores, flags = Champion(f"anomaly_{data.sensor_type}", "", model).score(frame, threshold)
    flagged: NDArray[np.bool_] = np.asarray(flags, dtype=bool) & np.isfinite(scores)
    return flagged


# --- evaluation -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    detector: str
    recall: float
    false_alarms_per_sensor_day: float
    episodes: int
    hits: int
    alerts: int
    false_alarms: int
    sensor_days: float
    median_delay_min: float

    def figures(self) -> dict[str, float]:
        return {
            "event_recall": self.recall,
            "false_alarms_per_sensor_day": self.false_alarms_per_sensor_day,
            "episodes": float(self.episodes),
            "hits": float(self.hits),
            "alerts": float(self.alerts),
            "false_alarms": float(self.false_alarms),
            "sensor_days": self.sensor_days,
            "median_delay_min": self.median_delay_min,
        }


Detector = np.ndarray | Callable[[EvaluationData], np.ndarray]


def evaluate_detector(detector: Detector, data: EvaluationData, name: str = "") -> Evaluation:
    """The figures of a detector (its flags aligned with ``data.frame``, or a function of ``data`` returning them)."""
    flags = np.asarray(detector(data) if callable(detector) else detector, dtype=bool)
    if flags.shape != (len(data.frame),):
        raise ValueError(f"{len(flags)} flags for {len(data.frame)} readings")
    by_sensor: dict[str, list[Episode]] = {}
    for episode in data.episodes:
        by_sensor.setdefault(episode.sensor_id, []).append(episode)
    first_alert: dict[Episode, pd.Timestamp] = {}
    alerts = false_alarms = 0
    for sensor, pos in data.rows_by_sensor.items():
        part = data.frame.iloc[pos]
        stamps = [t.to_pydatetime() for t in part["timestamp"]]
        for opened in alert_openings(stamps, part["value"].to_numpy(), flags[pos]):
            at = pd.Timestamp(opened)
            alerts += 1
            if any(s == sensor and lo <= at <= hi for s, lo, hi in data.no_fault):
                false_alarms += 1
                continue
            hit = [e for e in by_sensor.get(sensor, []) if e.start <= at <= e.end]
            if not hit:
                false_alarms += 1
            for episode in hit:
                first_alert.setdefault(episode, at)
    delays = [(at - e.first_reading).total_seconds() / 60.0 for e, at in first_alert.items()]
    episodes = len(data.episodes)
    return Evaluation(
        detector=name,
        recall=len(first_alert) / episodes if episodes else float("nan"),
        false_alarms_per_sensor_day=false_alarms / data.sensor_days if data.sensor_days else float("nan"),
        episodes=episodes,
        hits=len(first_alert),
        alerts=alerts,
        false_alarms=false_alarms,
        sensor_days=data.sensor_days,
        median_delay_min=float(np.median(delays)) if delays else float("nan"),
    )


# --- the decision -----------------------------------------------------------------------------------------------
def _describe(e: Evaluation) -> str:
    return (
        f"recall {e.hits}/{e.episodes}, {e.false_alarms} false alarms "
        f"({e.false_alarms_per_sensor_day:.3g}/sensor-day)"
    )


def decide(
    candidate: Evaluation, serving: Evaluation, serving_name: str = "the serving detector"
) -> tuple[bool, str]:
    """``(promote?, reason)`` by the rule of the module docstring."""
    if (candidate.episodes, candidate.sensor_days) != (serving.episodes, serving.sensor_days):
        raise ValueError("the candidate and the serving detector were not evaluated on the same data")
    both = f"candidate {_describe(candidate)} vs {serving_name} {_describe(serving)}"
    if candidate.episodes == 0:
        return False, (
            f"no labelled fault episode (injected fault or confirmed work order) in the evaluation data: recall "
            f"is undefined and nothing shows that the candidate detects faults; {serving_name} keeps serving"
        )
    if candidate.hits == 0:
        return False, f"{both}: the candidate detects no fault episode"
    recall = np.sign(candidate.hits - serving.hits)
    alarms = np.sign(serving.false_alarms - candidate.false_alarms)  # +1: the candidate has fewer
    words = {1: "better", 0: "equal", -1: "worse"}
    verdict = f"recall {words[int(recall)]}, false alarms {words[int(alarms)]}"
    if recall >= 0 and alarms >= 0 and (recall > 0 or alarms > 0):
        return True, f"{both}: {verdict}: promoted"
    return False, f"{both}: {verdict}: not promoted (needs at least as good on both and better on one)"


# --- promotion through the registry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectorComparison:
    """The evaluation shared by a candidate version, the champion version and the baseline."""

    data: EvaluationData
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def evaluate(self, model: Any) -> Evaluation:
        return evaluate_detector(lambda d: model_flags(model, d, self.baseline.threshold), self.data, "model")

    def serving_baseline(self) -> Evaluation:
        return evaluate_detector(lambda d: robust_z_flags(d, self.baseline), self.data, BASELINE)

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``core.ml.registry.promotion.promote_if_better`` for this rule."""
        return {
            "evaluate": self.evaluate,
            "metric": METRIC,
            "higher_is_better": True,
            "margin": 0.0,
            "serving_baseline": self.serving_baseline,
            "baseline_name": f"baseline {BASELINE}",
            "decide": decide,
            "figures": Evaluation.figures,
        }


def promote_detector(
    model_name: str,
    version: str | int,
    data: EvaluationData,
    *,
    tracking_uri: str | None = None,
    baseline: BaselineConfig | None = None,
) -> Any:
    """``promote_if_better`` with this rule: ``version`` becomes challenger, and champion only if it beats the
    current champion (scored on ``data`` too) or, without one, the ``robust_z`` baseline."""
    from core.ml.registry.promotion import promote_if_better

    comparison = DetectorComparison(data, baseline or BaselineConfig())
    return promote_if_better(model_name, version, tracking_uri=tracking_uri, **comparison.options())


def promotion_options(model_name: str) -> dict[str, Any]:
    """The registry's rule for ``anomaly_<type>`` versions promoted outside a training run (``python -m apps.cli
    models promote NAME VERSION``, ``POST /api/v1/ml/models/{name}/promote`` without ``force``): this rule on the
    test split of ``data/sensor_data.csv`` for that type with the faults of ``data/sensor_data_faults.csv``."""
    from core.ml import datasets
    from core.ml.anomaly.evaluation import split_times

    sensor_type = model_name.removeprefix("anomaly_")
    readings = datasets.load_sensor_csv()
    cuts = split_times(readings["timestamp"])
    of_type = readings[readings["sensor_type"] == sensor_type].reset_index(drop=True)
    if of_type.empty:
        raise ValueError(f"no readings of type {sensor_type!r} in the evaluation data")
    evaluated = cuts.labels(of_type["timestamp"]) == "test"
    data = evaluation_data(of_type, evaluated, datasets.load_fault_labels(), sensor_type=sensor_type)
    return DetectorComparison(data).options()


def promotion_table(decisions: dict[str, Any]) -> pd.DataFrame:
    """Per sensor type with a ``PromotionDecision`` of this rule: two rows, the candidate and the detector that
    served, with their figures (:data:`TABLE_FIGURES`) and whether the candidate was promoted."""
    rows = []
    for sensor_type, decision in decisions.items():
        if decision is None:
            continue
        for who, figures in (
            (f"candidate v{decision.candidate_version}", decision.candidate_figures),
            (decision.serving or "nothing", decision.serving_figures),
        ):
            rows.append(
                {"sensor_type": sensor_type, "detector": who}
                | {k: figures.get(k, np.nan) for k in TABLE_FIGURES}
                | {"candidate_promoted": decision.promoted}
            )
    return pd.DataFrame(rows)


__all__ = [
    "BASELINE",
    "METRIC",
    "TABLE_FIGURES",
    "DetectorComparison",
    "Evaluation",
    "alert_openings",
    "decide",
    "evaluate_detector",
    "model_flags",
    "promote_detector",
    "promotion_options",
    "promotion_table",
    "robust_z_flags",
]
