"""Streaming per-sensor baseline: robust rolling median/MAD z-score (method ``robust_z``), restarted after a
regime gap.

For a reading ``x`` of a sensor whose last ``window`` readings are ``w`` (the reading itself excluded)::

    score = |x - median(w)| / scale(w)
    scale(w) = max(1.4826 * MAD(w), floors.absolute, floors.relative * |median(w)|, ABS_SCALE_FLOOR)

1.4826 makes ``1.4826·MAD`` a consistent estimator of the standard deviation for normal data, so the score reads
like a |z|. The floors come from the sensor type (``core.fleet.types``: the smallest change that matters for it)
and guard ``MAD = 0`` (a stuck or quantised signal). A reading is flagged when ``score >= threshold``, and never
while the sensor has fewer than ``warmup`` readings of history (its score is still reported).

Regime gaps: when the time since the previous reading exceeds ``max(regime_gap_intervals × cadence,
regime_gap_min_s)`` (cadence: the median interval of the sensor's recent readings), the machine was stopped or the
data path was down, and what came before is no reference for what follows (a restarted machine runs at another
temperature, load or level: every channel of NASA IMS test 1 stepped up after its 6-day pause). The window then
restarts empty at that reading — a new warm-up — and the restart is reported (``Scores.restarts``) so that the
agent re-learns the sensor's healthy reference and notes it in the sensor's timeline. The window also restarts
when a stuck stretch ends (``flat_restart_readings`` equal readings, or the run given per sensor): a window full of
one value has MAD 0 and would score the moving signal's ordinary noise as outliers (not reported: the reference is
kept). The statistics themselves are in ``core.anomaly.robust``.

Every reading enters the window after being scored (anomalies too: the median/MAD tolerate them). The state of
a sensor is its window, the timestamp of its latest reading and its recent intervals; ``BaselineStates`` keeps
those for at most ``max_sensors`` sensors (least recently used evicted). The agent rebuilds a missing or
out-of-date state from the database (``SensorState.from_readings``: the last ``window`` readings before the batch,
cut at the last regime gap among them).

Pure functions and plain objects; no I/O.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from core.anomaly.robust import (
    ABS_SCALE_FLOOR,
    DEFAULT_FLOORS,
    MAD_TO_SIGMA,
    REL_SCALE_FLOOR,
    Floors,
    floors_for,
    robust_scale,
    robust_z,
    robust_z_batch,
    robust_z_many,
)
from core.config import Settings

METHOD = "robust_z"
#: Intervals a state remembers to estimate the sensor's cadence.
CADENCE_INTERVALS = 64
#: Fewer known intervals than this: the cadence is unknown and no regime gap is detected.
MIN_CADENCE_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    window: int = 288
    warmup: int = 30
    threshold: float = 6.0
    max_sensors: int = 10_000
    regime_gap_intervals: float = 20.0
    regime_gap_min_s: float = 3600.0
    reference_scale_fraction: float = 0.25
    """The rolling scale never drops below this fraction of the sensor's healthy reference scale (when it has one):
    a window filled by a stuck stretch (MAD 0) would otherwise score the healthy signal's noise as outliers once
    the sensor moves again."""
    flat_restart_readings: int = 30
    """A stuck stretch of at least this many equal readings restarts the window when it ends (0: never)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> BaselineConfig:
        """The ``SM_ANOMALY_BASELINE_*`` / ``SM_ANOMALY_REGIME_GAP_*`` settings (warm-up capped at the window)."""
        return cls(
            window=settings.anomaly_baseline_window,
            warmup=min(settings.anomaly_baseline_warmup, settings.anomaly_baseline_window),
            threshold=settings.anomaly_baseline_threshold,
            max_sensors=settings.anomaly_baseline_max_sensors,
            regime_gap_intervals=settings.anomaly_regime_gap_intervals,
            regime_gap_min_s=settings.anomaly_regime_gap_min_minutes * 60.0,
            reference_scale_fraction=settings.anomaly_reference_scale_fraction,
        )

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError("window must be at least 2")
        if not 1 <= self.warmup <= self.window:
            raise ValueError("warmup must be between 1 and window")
        if self.threshold <= 0:
            raise ValueError("threshold must be positive")
        if self.max_sensors < 1:
            raise ValueError("max_sensors must be positive")
        if self.regime_gap_intervals <= 1 or self.regime_gap_min_s < 0:
            raise ValueError("regime_gap_intervals must exceed 1 and regime_gap_min_s must not be negative")

    def regime_gap_s(self, cadence_s: float | None) -> float | None:
        """The gap (seconds) after which the detectors restart; None while the cadence is unknown."""
        if cadence_s is None:
            return None
        return max(self.regime_gap_intervals * cadence_s, self.regime_gap_min_s)


@dataclass(frozen=True, slots=True)
class Scores:
    """``update_all``'s answer per sensor: per reading its score, whether it is flagged and whether it was warming
    up; ``restarts``: ``(index, gap seconds)`` of the readings after a regime gap (the window restarted there)."""

    scores: np.ndarray
    flagged: np.ndarray
    warming_up: np.ndarray
    restarts: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Score:
    score: float
    flagged: bool
    warming_up: bool


def _seconds(timestamps: Sequence[datetime]) -> np.ndarray:
    return np.fromiter((t.timestamp() for t in timestamps), dtype=float, count=len(timestamps))


def cadence_s(intervals: Iterable[float]) -> float | None:
    """The median of positive ``intervals`` (seconds); None with fewer than ``MIN_CADENCE_INTERVALS``.

    ``numpy.median``'s value (the middle one, or the mean of the two middle ones: ``(a + b) / 2``), computed in
    Python: a sensor's state holds at most ``CADENCE_INTERVALS`` intervals, and numpy's overhead on such a short
    list was most of the cost of a scoring run of single readings."""
    known = sorted(float(i) for i in intervals if i > 0)
    n = len(known)
    if n < MIN_CADENCE_INTERVALS:
        return None
    middle = n // 2
    return known[middle] if n % 2 else (known[middle - 1] + known[middle]) / 2


@dataclass(slots=True)
class SensorState:
    """The rolling window of one sensor, the timestamp of its latest reading and its recent intervals."""

    window: int
    values: deque[float] = field(init=False)
    last_timestamp: datetime | None = None
    intervals: deque[float] = field(init=False)
    trend: float | None = None
    """The degradation detector's EWMA after the latest reading (``core.anomaly.trend``), for ``trend_reference``."""
    trend_reference: int | None = None

    def __post_init__(self) -> None:
        self.values = deque(maxlen=self.window)
        self.intervals = deque(maxlen=CADENCE_INTERVALS)

    @classmethod
    def from_history(
        cls, window: int, values: Iterable[float], last_timestamp: datetime | None
    ) -> SensorState:
        """A state whose window holds the last ``window`` of ``values`` (oldest first); no intervals known."""
        state = cls(window)
        state.values.extend(float(v) for v in values)
        state.last_timestamp = last_timestamp
        return state

    @classmethod
    def from_readings(
        cls,
        window: int,
        timestamps: Sequence[datetime],
        values: Sequence[float],
        config: BaselineConfig,
    ) -> SensorState:
        """The state after the readings ``(timestamps, values)`` (oldest first): their intervals give the
        cadence, and the window holds only the readings after the last regime gap among them."""
        state = cls(window)
        if not timestamps:
            return state
        seconds = _seconds(timestamps)
        gaps = np.diff(seconds)
        state.intervals.extend(gaps[-CADENCE_INTERVALS:].tolist())
        start = 0
        limit = config.regime_gap_s(cadence_s(gaps))
        if limit is not None:
            after = np.flatnonzero(gaps > limit)
            if after.size:
                start = int(after[-1]) + 1
        state.values.extend(float(v) for v in values[start:])
        state.last_timestamp = timestamps[-1]
        return state

    def copy(self) -> SensorState:
        state = SensorState(self.window, last_timestamp=self.last_timestamp)
        state.values.extend(self.values)  # floats already (from_history converts)
        state.intervals.extend(self.intervals)
        state.trend, state.trend_reference = self.trend, self.trend_reference
        return state

    def cadence_s(self) -> float | None:
        return cadence_s(self.intervals)

    def update(
        self, value: float, timestamp: datetime | None, config: BaselineConfig, floors: Floors = DEFAULT_FLOORS
    ) -> Score:
        """Score ``value`` against the current window (restarted first after a regime gap), then add it."""
        if timestamp is not None and self.last_timestamp is not None:
            gap = (timestamp - self.last_timestamp).total_seconds()
            limit = config.regime_gap_s(self.cadence_s())
            if limit is not None and gap > limit:
                self.values.clear()
            self.intervals.append(gap)
        n = len(self.values)
        if n == 0:
            result = Score(0.0, False, True)
        else:
            score = robust_z(np.fromiter(self.values, dtype=float, count=n), value, floors)
            warming_up = n < config.warmup
            result = Score(score, (not warming_up) and score >= config.threshold, warming_up)
        self.values.append(float(value))
        if timestamp is not None:
            self.last_timestamp = timestamp
        return result

    def history(self) -> np.ndarray:
        return np.fromiter(self.values, dtype=float, count=len(self.values))

    def update_many(
        self, values: np.ndarray, last_timestamp: datetime | None, config: BaselineConfig
    ) -> Scores:
        """``update`` for every reading of ``values`` in order (vectorised; no timestamps: no regime gaps)."""
        return update_all([Run(self, np.asarray(values, dtype=float), None, DEFAULT_FLOORS, last_timestamp)], config)[0]


@dataclass(slots=True)
class Run:
    """One sensor's new readings for ``update_all``: ``timestamps`` (same length as ``values``) enable regime-gap
    detection; without them ``last_timestamp`` is what the state remembers."""

    state: SensorState
    values: np.ndarray
    timestamps: Sequence[datetime] | None = None
    floors: Floors = DEFAULT_FLOORS
    last_timestamp: datetime | None = None
    flat_run: int | None = None
    """A run of at least this many equal readings is a stuck stretch: the window restarts when it ends (None:
    ``config.flat_restart_readings``; 0: never)."""


def _flat_ends(run: Run, config: BaselineConfig) -> list[int]:
    """Indexes of ``run.values`` where a stuck stretch (``flat_run`` equal readings or more, counting those at
    the end of the state's window) ends: the sensor told nothing while stuck, so its window restarts there
    instead of scoring the moving signal against a window of one value (MAD 0)."""
    limit = config.flat_restart_readings if run.flat_run is None else run.flat_run
    values = np.asarray(run.values, dtype=float)
    if limit <= 0 or values.size == 0:
        return []
    trailing = 0  # equal readings at the end of the window, before this run
    held = run.state.values
    if held:
        for v in reversed(held):
            if v != held[-1]:
                break
            trailing += 1
    starts = np.concatenate([[0], np.flatnonzero(values[1:] != values[:-1]) + 1])
    lengths = np.diff(np.concatenate([starts, [values.size]]))
    out: list[int] = []
    if held and held[-1] == values[0]:
        lengths[0] += trailing  # the run goes on from the window into this batch
    elif trailing >= limit:
        out.append(0)  # the stuck stretch ended just before this batch
    out.extend(int(starts[k + 1]) for k in range(len(starts) - 1) if lengths[k] >= limit)
    return out


def _segments(run: Run, config: BaselineConfig) -> tuple[list[int], list[tuple[int, float]], list[float]]:
    """Where ``run`` restarts (indexes: regime gaps — reported with the gap — and ends of stuck stretches) and
    the intervals it adds to the state."""
    flat = _flat_ends(run, config)
    if run.timestamps is None or len(run.values) == 0:
        return flat, [], []
    seconds = _seconds(run.timestamps)
    previous = run.state.last_timestamp
    if previous is not None:
        intervals = np.diff(np.concatenate([[previous.timestamp()], seconds]))
        first = 0
    else:
        intervals = np.diff(seconds)
        first = 1
    limit = config.regime_gap_s(cadence_s([*run.state.intervals, *intervals.tolist()]))
    restarts: list[tuple[int, float]] = []
    if limit is not None:
        restarts = [(int(i) + first, float(intervals[i])) for i in np.flatnonzero(intervals > limit)]
    cuts = sorted({i for i, _ in restarts} | set(flat))
    return cuts, restarts, intervals.tolist()


def update_all(work: Sequence[Run], config: BaselineConfig) -> list[Scores]:
    """Score each run's ``values`` in order against its sensor's window (restarting it after regime gaps), then
    add them to the window; all runs share one vectorised median pass (``robust_z_batch``)."""
    series: list[tuple[np.ndarray, np.ndarray]] = []
    floors: list[Floors] = []
    plans: list[tuple[list[int], list[tuple[int, float]], list[float]]] = []
    for run in work:
        cuts, restarts, intervals = _segments(run, config)
        plans.append((cuts, restarts, intervals))
        bounds = [0, *cuts, len(run.values)]
        for j in range(len(bounds) - 1):
            history = run.state.history() if j == 0 else np.empty(0)
            series.append((history, np.asarray(run.values[bounds[j] : bounds[j + 1]], dtype=float)))
            floors.append(run.floors)
    all_scores = robust_z_batch(series, config.window, floors)
    out: list[Scores] = []
    pos = 0
    for run, (cuts, restarts, intervals) in zip(work, plans, strict=True):
        bounds = [0, *cuts, len(run.values)]
        parts = all_scores[pos : pos + len(bounds) - 1]
        pos += len(bounds) - 1
        values = np.asarray(run.values, dtype=float)
        seen = np.empty(len(values), dtype=int)
        for j in range(len(bounds) - 1):
            lo, hi = bounds[j], bounds[j + 1]
            before = len(run.state.values) if j == 0 else 0
            seen[lo:hi] = np.minimum(before + np.arange(hi - lo), run.state.window)
        scores = np.concatenate(parts) if parts else np.zeros(0)
        warming_up = seen < config.warmup
        flagged = (~warming_up) & (seen > 0) & (scores >= config.threshold)
        state = run.state
        if cuts:
            state.values.clear()
            state.values.extend(values[cuts[-1] :].tolist())
        else:
            state.values.extend(values.tolist())
        state.intervals.extend(intervals)
        if run.timestamps is not None and len(run.timestamps):
            state.last_timestamp = run.timestamps[-1]
        elif run.last_timestamp is not None:
            state.last_timestamp = run.last_timestamp
        out.append(Scores(scores, flagged, warming_up | (seen == 0), tuple(restarts)))
    return out


def score_series(
    timestamps: Sequence[datetime], values: np.ndarray, config: BaselineConfig, floors: Floors = DEFAULT_FLOORS
) -> Scores:
    """The agent's scores of one sensor's whole series from an empty state (offline evaluation)."""
    state = SensorState(config.window)
    return update_all([Run(state, np.asarray(values, dtype=float), list(timestamps), floors)], config)[0]


class BaselineStates:
    """Per-sensor states, bounded: at most ``max_sensors``, least recently used evicted first."""

    def __init__(self, config: BaselineConfig) -> None:
        self.config = config
        self._states: OrderedDict[str, SensorState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, sensor_id: object) -> bool:
        return sensor_id in self._states

    def get(self, sensor_id: str) -> SensorState | None:
        state = self._states.get(sensor_id)
        if state is not None:
            self._states.move_to_end(sensor_id)
        return state

    def put(self, sensor_id: str, state: SensorState) -> None:
        self._states[sensor_id] = state
        self._states.move_to_end(sensor_id)
        while len(self._states) > self.config.max_sensors:
            self._states.popitem(last=False)

    def pop(self, sensor_id: str) -> None:
        self._states.pop(sensor_id, None)

    def sensor_ids(self) -> list[str]:
        """Least recently used first."""
        return list(self._states)


__all__ = [
    "ABS_SCALE_FLOOR",
    "DEFAULT_FLOORS",
    "MAD_TO_SIGMA",
    "METHOD",
    "REL_SCALE_FLOOR",
    "BaselineConfig",
    "BaselineStates",
    "Floors",
    "Run",
    "Score",
    "Scores",
    "SensorState",
    "cadence_s",
    "floors_for",
    "robust_scale",
    "robust_z",
    "robust_z_batch",
    "robust_z_many",
    "score_series",
    "update_all",
]
