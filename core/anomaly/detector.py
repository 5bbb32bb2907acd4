"""Scoring the readings of one ``ReadingsIngested`` event and storing the anomalies (inside a unit of work).

``AnomalyDetector.detect(session, event)`` loads the event's readings (its sensors, between its first and last
timestamp) and finds two kinds of anomalies:

* outliers, per sensor type with the type's champion model when one is cached (``core.anomaly.champion``,
  method ``model``) and with the ``robust_z`` baseline otherwise (``core.anomaly.baseline``: rolling median/MAD,
  restarted after a regime gap);
* degradation (method ``trend_ewma``, ``core.anomaly.trend``): the sensor's level against its healthy reference
  (``core.anomaly.references``), which the agent learns on the sensor's first readings and re-learns after a
  regime gap or a confirmed repair.

It inserts the anomalies with ``ON CONFLICT (sensor_id, timestamp, method) DO NOTHING``, writes one
``AnomalyDetected`` to the outbox per row actually inserted, then one ``ReadingsScored`` for the batch (the
anomaly-score alert rules are evaluated on it, once the anomalies are committed). It only flushes; the caller
commits, then calls ``commit_states`` with the returned baseline states (in-memory state changes only once the
transaction is durable, so a rolled-back or redelivered event is scored again from the same history).

Baseline state of a sensor is (re)built from the database when it is missing (first use after start, evicted)
or when the batch does not start after the latest reading the state has seen (redelivery, backfill, events
handled out of order): the last ``window`` readings before the batch.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from core.anomaly import baseline, trend
from core.anomaly.baseline import BaselineConfig, BaselineStates, SensorState
from core.anomaly.champion import METHOD as MODEL_METHOD
from core.anomaly.champion import Champion, ChampionModels
from core.anomaly.reference_repository import ReferenceRow
from core.anomaly.references import ReferenceConfig, ReferenceTracker
from core.anomaly.repository import AnomalyRepository, History, NewAnomaly, ReadingToScore
from core.events.outbox import add_many_to_outbox
from core.events.types import AnomalyDetected, ReadingsIngested, ReadingsScored
from core.fleet.types import sensor_type as catalogue_entry
from core.observability.metrics import ANOMALY_DETECTED_TOTAL, ANOMALY_READINGS_SCORED_TOTAL

logger = logging.getLogger("core.anomaly.detector")


@dataclass(frozen=True, slots=True)
class Detection:
    """What one event produced: the new anomalies (as events) and the baseline states to keep after commit."""

    events: list[AnomalyDetected]
    states: dict[str, SensorState]
    scored: int


class AnomalyDetector:
    def __init__(
        self,
        config: BaselineConfig,
        champions: ChampionModels | None = None,
        *,
        model_context: int = 32,
        references: ReferenceConfig | None = None,
        trend: TrendConfig | None = None,
    ) -> None:
        self.config = config
        self.model_context = model_context
        self.champions = champions
        self.states = BaselineStates(config)
        self.references = ReferenceTracker(references or ReferenceConfig(max_sensors=config.max_sensors))
        self.trend = trend or TrendConfig()

    async def detect(self, session: AsyncSession, event: ReadingsIngested) -> Detection:
        repo = AnomalyRepository(session)
        readings = await repo.readings_to_score(
            event.sensor_ids, event.first_timestamp, event.last_timestamp, self._behind(event)
        )
        readings = [r for r in readings if math.isfinite(r.value)]
        if not readings:
            return Detection([], {}, 0)

        by_type: dict[str, list[ReadingToScore]] = defaultdict(list)
        for reading in readings:
            by_type[reading.sensor_type].append(reading)
        if self.champions is not None:
            await self.champions.ensure(by_type)
            self.champions.refresh_if_due()

        sensor_ids = sorted({r.sensor_id for r in readings})
        await self.references.prepare(session, sensor_ids)
        runs, states, results, histories = await self._baseline(repo, readings)
        found: list[NewAnomaly] = []
        model_scored: set[str] = set()
        for sensor_type, rows in by_type.items():
            champion = self.champions.get(sensor_type) if self.champions is not None else None
            scored = await self._score_with_model(repo, champion, rows) if champion is not None else None
            if scored is not None:
                found.extend(scored)
                model_scored.add(sensor_type)
        baseline_rows = 0
        for (sensor_id, run), result in zip(runs, results, strict=True):
            if run[0].sensor_type not in model_scored:
                baseline_rows += len(run)
                found.extend(
                    NewAnomaly(sensor_id, run[i].timestamp, run[i].value, float(result.scores[i]), baseline.METHOD)
                    for i in np.flatnonzero(result.flagged)
                )
            for index, gap in result.restarts:
                await self.references.restart(
                    session, sensor_id, run[index].timestamp, gap, states[sensor_id].cadence_s()
                )
            reference = await self.references.learn(
                session, sensor_id, run[-1].timestamp, len(run), baseline.floors_for(run[0].sensor_type)
            )
            found.extend(self._trend(sensor_id, run, states[sensor_id], reference, histories.get(sensor_id)))
        if baseline_rows:
            ANOMALY_READINGS_SCORED_TOTAL.labels(method=baseline.METHOD).inc(baseline_rows)

        stored = await repo.insert_new(found)
        events = [
            AnomalyDetected(
                anomaly_id=a.id,
                sensor_id=a.sensor_id,
                timestamp=a.timestamp,
                value=a.value,
                score=a.score,
                method=a.method,
                model_name=a.model_name,
                model_version=a.model_version,
            )
            for a in stored
        ]
        readings_scored = ReadingsScored(
            sensor_ids=sorted({r.sensor_id for r in readings}),
            count=len(readings),
            first_timestamp=min(r.timestamp for r in readings),
            last_timestamp=max(r.timestamp for r in readings),
            backfill=event.backfill,
        )
        await add_many_to_outbox(session, [*events, readings_scored])
        for anomaly_event in events:
            ANOMALY_DETECTED_TOTAL.labels(method=anomaly_event.method).inc()
        if events:
            logger.info(
                "%d anomalies in %d readings",
                len(events),
                len(readings),
                extra={"event_id": str(event.event_id)},
            )
        return Detection(events, states, len(readings))

    def _behind(self, event: ReadingsIngested) -> dict[str, datetime]:
        """Sensors whose last scored reading lies before the event's first: their readings in between (an
        earlier batch that the bus delivers after this one) are scored now, in time order, with this one — so the
        result does not depend on the order in which events arrive. A later delivery of that batch finds them
        scored (a redelivery: nothing new)."""
        out: dict[str, datetime] = {}
        for sensor_id in event.sensor_ids:
            held = self.states.get(sensor_id)
            if held is not None and held.last_timestamp is not None and held.last_timestamp < event.first_timestamp:
                out[sensor_id] = held.last_timestamp
        return out

    def commit_states(self, states: dict[str, SensorState]) -> None:
        """Keep the states of a committed detection (a state older than the one held is not kept)."""
        for sensor_id, state in states.items():
            held = self.states.get(sensor_id)
            if (
                held is not None
                and held.last_timestamp is not None
                and (state.last_timestamp is None or state.last_timestamp < held.last_timestamp)
            ):
                continue
            self.states.put(sensor_id, state)

    # --- methods -------------------------------------------------------------------------------------------
    async def _score_with_model(
        self, repo: AnomalyRepository, champion: Champion, rows: list[ReadingToScore]
    ) -> list[NewAnomaly] | None:
        """Score ``rows`` (sorted by sensor then time) with ``champion``. Each sensor's last
        ``model_context`` readings before the batch go in front of its new readings, so features over past rows
        (lags, rolling windows) see real history; the context rows' own scores are dropped."""
        first: dict[str, datetime] = {}
        for r in rows:
            first.setdefault(r.sensor_id, r.timestamp)
        context = await repo.context_before(first, self.model_context)
        sensor_ids: list[str] = []
        timestamps: list[datetime] = []
        values: list[float] = []
        scored_rows: list[bool] = []
        for r in rows:
            if r.sensor_id in context:
                for timestamp, value in context.pop(r.sensor_id):
                    sensor_ids.append(r.sensor_id)
                    timestamps.append(timestamp)
                    values.append(value)
                    scored_rows.append(False)
            sensor_ids.append(r.sensor_id)
            timestamps.append(r.timestamp)
            values.append(float(r.value))
            scored_rows.append(True)
        import pandas as pd  # only where a champion model scores: the baseline needs numpy only

        frame = pd.DataFrame(
            {
                "sensor_id": sensor_ids,
                "timestamp": pd.to_datetime(timestamps, utc=True).astype("datetime64[ns, UTC]"),
                "value": values,
            }
        )
        try:
            all_scores, all_flags = await asyncio.to_thread(champion.score, frame, self.config.threshold)
        except Exception:  # a broken model must not stop detection: the baseline takes over
            logger.exception(
                "model %s version %s failed; using the baseline", champion.name, champion.version
            )
            return None
        keep = np.asarray(scored_rows, dtype=bool)
        scores, flags = all_scores[keep], all_flags[keep]
        ANOMALY_READINGS_SCORED_TOTAL.labels(method=MODEL_METHOD).inc(len(rows))
        return [
            NewAnomaly(
                r.sensor_id, r.timestamp, r.value, float(s), MODEL_METHOD, champion.name, champion.version
            )
            for r, s, flagged in zip(rows, scores, flags, strict=True)
            if flagged and math.isfinite(float(s))
        ]

    async def _baseline(
        self, repo: AnomalyRepository, rows: list[ReadingToScore]
    ) -> tuple[
        list[tuple[str, list[ReadingToScore]]],
        dict[str, SensorState],
        list[baseline.Scores],
        dict[str, History],
    ]:
        """The ``robust_z`` baseline over every reading (rows sorted by sensor then time): one run per sensor,
        the work states (copies: the held ones change only after the commit), the scores with the regime
        restarts, and the histories of the states rebuilt from the database."""
        first: dict[str, datetime] = {}
        for r in rows:
            first.setdefault(r.sensor_id, r.timestamp)
        work: dict[str, SensorState] = {}
        rebuild: dict[str, datetime] = {}
        for sensor_id, first_ts in first.items():
            held = self.states.get(sensor_id)
            if held is None or held.last_timestamp is None or first_ts <= held.last_timestamp:
                rebuild[sensor_id] = first_ts
            else:
                work[sensor_id] = held.copy()
        histories: dict[str, History] = {}
        if rebuild:
            histories = await repo.history_before(rebuild, self.config.window)
            for sensor_id, history in histories.items():
                work[sensor_id] = SensorState.from_readings(
                    self.config.window, history.timestamps, history.values, self.config
                )
        runs: list[tuple[str, list[ReadingToScore]]] = []
        for r in rows:
            if not runs or runs[-1][0] != r.sensor_id:
                runs.append((r.sensor_id, []))
            runs[-1][1].append(r)
        results = baseline.update_all(
            [
                baseline.Run(
                    work[sensor_id],
                    np.fromiter((r.value for r in run), float, len(run)),
                    [r.timestamp for r in run],
                    self._floors(sensor_id, run[0].sensor_type),
                    flat_run=self._flat_run(sensor_id),
                )
                for sensor_id, run in runs
            ],
            self.config,
        )
        return runs, work, results, histories

    def _floors(self, sensor_id: str, sensor_type: str) -> baseline.Floors:
        """The type's floors, and a quarter of the sensor's healthy scale when its reference is ready."""
        reference = self.references.get(sensor_id)
        scale = reference.scale if reference is not None and reference.status == "ready" else None
        return baseline.floors_for(sensor_type, scale, self.config.reference_scale_fraction)

    def _flat_run(self, sensor_id: str) -> int:
        """The stuck stretch that restarts the window: the flat-line default, or 3 × the reference's typical run."""
        reference = self.references.get(sensor_id)
        run = reference.longest_run if reference is not None and reference.status == "ready" else None
        return max(self.config.flat_restart_readings, 3 * run) if run else self.config.flat_restart_readings

    def _trend(
        self,
        sensor_id: str,
        run: list[ReadingToScore],
        state: SensorState,
        reference: ReferenceRow | None,
        history: History | None,
    ) -> list[NewAnomaly]:
        """Degradation anomalies of ``run`` against the sensor's ready reference (``core.anomaly.trend``); the
        EWMA continues from the state, or from the rebuilt history after the reference became ready."""
        if reference is None or reference.status != "ready" or reference.ready_at is None:
            state.trend = state.trend_reference = None
            return []
        assert reference.median is not None and reference.scale is not None
        ready_at = reference.ready_at
        start = state.trend if state.trend_reference == reference.id else None
        prefix: list[float] = []
        if start is None and history is not None:
            prefix = [v for t, v in zip(history.timestamps, history.values, strict=True) if t > ready_at]
        todo = [i for i, r in enumerate(run) if r.timestamp > ready_at]
        if not todo:
            return []
        values = np.array(prefix + [run[i].value for i in todo], dtype=float)
        result = trend.score(
            values,
            median=reference.median,
            scale=reference.scale,
            lam=self.trend.lam,
            threshold=self.trend.threshold,
            direction=catalogue_entry(run[0].sensor_type).degradation,
            start=start,
        )
        state.trend, state.trend_reference = result.last, reference.id
        offset = len(prefix)
        return [
            NewAnomaly(sensor_id, run[i].timestamp, run[i].value, abs(float(result.ewma[offset + k])), trend.METHOD)
            for k, i in enumerate(todo)
            if result.flagged[offset + k]
        ]


@dataclass(frozen=True, slots=True)
class TrendConfig:
    lam: float = 0.1
    threshold: float = 4.0


__all__ = ["AnomalyDetector", "Detection", "TrendConfig"]
