"""The alerting agent's logic (services flush, never commit; SQL lives in ``core.alerts.repository``).

``AlertingService``
    ``on_readings(ReadingsIngested)``: threshold, rate-of-change and flat-line rules over the batch's readings
    and the sensor's last readings before it (one query).
    ``on_scored(ReadingsScored)``: anomaly-score rules, once the anomaly agent has committed the anomalies of the
    batch (so a reading without an anomaly row is normal, and a replay gives the same alerts as live data).
    No-data rules: ``core.alerts.no_data``.

Hysteresis is counted in readings and judged in event time (``core.alerts.engine``): open after k matching
readings among the sensor's last n, resolve after m normal readings once the rule's hold time has passed since
the alert opened. Threshold and rate rules carry the ``unit`` their bounds are written in; a rule judges a
sensor only when the sensor's unit is that unit (or converts to it: the bounds are converted), so an ISO 10816
velocity limit never judges an acceleration sensor.

Every alert that opens joins an incident of its asset (``core.incidents.service``): one fault seen by several
sensors or rules is one incident with one work order, and an open work order no longer hides later alerts on
its asset — they attach to it.

Idempotency (delivery is at least once): natural keys, no processed-event table. Every matching reading an
alert counted is stored in ``alert_observations`` (key: alert, reading timestamp; anomalies linked by id) and
``alerts.anomaly_count`` is recounted from those rows; matching readings any alert of the rule has counted
never count towards a new alert. The same event twice therefore finds the same state and writes nothing new.
Decisions about a (sensor, rule) are serialised across transactions with advisory locks taken in one ordered
statement (``AlertingRepository.lock_alert_keys``).

Suppression: no alert opens while the matching reading lies in one of the asset's maintenance windows (planned
downtime); each suppressed opening counts in ``sm_alerts_suppressed_total{reason}`` and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.engine import Violation, anomaly_violation, simulate
from core.alerts.judging import Judged, evaluation_start, hysteresis_of, matching_anomalies, reading_violation
from core.alerts.models import ALERT_UNRESOLVED_STATUSES, Alert
from core.alerts.repository import AlertingRepository, AnomalyPoint, Observation, Point, SensorInfo
from core.alerts.rule_models import AlertRule
from core.alerts.suppression import Suppression
from core.alerts.units import rule_params_for
from core.events.outbox import add_to_outbox
from core.events.types import AlertRaised, ReadingsIngested, ReadingsScored
from core.incidents.repository import Scope
from core.incidents.service import IncidentService
from core.observability.metrics import ALERTS_OPENED_TOTAL, ALERTS_RESOLVED_TOTAL, ALERTS_SUPPRESSED_TOTAL

logger = logging.getLogger("core.alerts")

#: ``alert_events.actor`` of changes made by the agent.
AGENT_ACTOR = "alerting"
READING_KINDS = ("threshold", "rate_of_change", "flatline")
SCORED_KINDS = ("anomaly_score",)
DEFAULT_INCIDENT_WINDOW = timedelta(minutes=60)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class EvaluationOutcome:
    """What one evaluation did (for logs and tests)."""

    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    suppressed: int = 0


class OpenedAlert(NamedTuple):
    """What ``open_alert`` did: the alert, whether it is new, and its incident."""

    alert_id: int
    opened: bool
    incident_id: int | None


class AlertingService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        clock: Callable[[], datetime] = _utcnow,
        incident_window: timedelta = DEFAULT_INCIDENT_WINDOW,
    ) -> None:
        self._session = session
        self._repo = AlertingRepository(session)
        self._clock = clock
        self._incidents = IncidentService(session, window=incident_window)

    # --- shared steps -----------------------------------------------------------------------------------------
    async def _judged(
        self, sensor_ids: Sequence[str], kinds: Sequence[str]
    ) -> tuple[list[Judged], dict[str, SensorInfo]]:
        """The (rule, sensor) pairs to evaluate and the sensors they concern, from one statement
        (``AlertRulesQueries.judging``). A flat line must be at least 3× longer than the longest one of the
        sensor's healthy reference (a run of R equal readings is R − 1 matches of the flat-line rule)."""
        rows = await self._repo.judging(sorted(set(sensor_ids)), kinds)
        sensors: dict[str, SensorInfo] = {}
        out: list[Judged] = []
        for row in rows:
            info = sensors.get(row.sensor_id)
            if info is None:
                info = SensorInfo(row.sensor_id, row.asset_id, row.type, row.created_at, row.unit)
                sensors[row.sensor_id] = info
            rule = row.rule
            params = rule_params_for(rule, info.unit)
            if params is None:
                continue  # the rule's unit is not the sensor's (and does not convert): it does not judge it
            raised = 3 * row.longest_run if rule.kind == "flatline" and row.longest_run is not None else 1
            out.append(Judged(rule, info, params, hysteresis_of(rule, min_k=raised)))
        return out, sensors

    def _suppressed(
        self, outcome: EvaluationOutcome, rule: AlertRule, sensor_id: str, reason: str, at: datetime
    ) -> None:
        outcome.suppressed += 1
        ALERTS_SUPPRESSED_TOTAL.labels(reason=reason).inc()
        logger.info(
            "alert suppressed (%s) for sensor %s, rule %s",
            reason,
            sensor_id,
            rule.name,
            extra={"sensor_id": sensor_id, "rule": rule.name, "reason": reason, "at": at.isoformat()},
        )

    async def open_alert(
        self,
        rule: AlertRule,
        sensor: SensorInfo,
        observations: Sequence[Observation],
        comment: str,
        *,
        event_at: datetime,
        backfill: bool = False,
        peak_score: float | None = None,
    ) -> OpenedAlert:
        """Open (or count on) the unresolved alert of (sensor, rule); a new alert joins an incident and goes to
        the outbox as ``AlertRaised``."""
        alert_id, opened, incident_id = await self._repo.upsert_unresolved(
            sensor.sensor_id, rule.name, rule.severity, event_at
        )
        await self._repo.add_observations(alert_id, observations)
        if not opened:
            return OpenedAlert(alert_id, False, incident_id)
        await self._repo.add_event(alert_id, None, "open", AGENT_ACTOR, comment, at=self._clock())
        attached = await self._incidents.attach(
            alert_id,
            Scope(sensor.asset_id, sensor.sensor_id),
            rule=rule.name,
            severity=rule.severity,
            event_at=event_at,
            peak_score=peak_score,
        )
        await self._repo.set_incident(alert_id, attached.incident_id)
        await add_to_outbox(
            self._session,
            AlertRaised(
                alert_id=alert_id,
                sensor_id=sensor.sensor_id,
                rule=rule.name,
                severity=rule.severity,  # type: ignore[arg-type]
                incident_id=attached.incident_id,
                task_id=attached.task_id,
                asset_id=sensor.asset_id,
                event_opened_at=event_at,
                backfill=backfill,
            ),
        )
        ALERTS_OPENED_TOTAL.labels(rule=rule.name, severity=rule.severity).inc()
        logger.info(
            "alert %d opened for sensor %s, rule %s (%s), incident %d",
            alert_id,
            sensor.sensor_id,
            rule.name,
            rule.severity,
            attached.incident_id,
            extra={"alert_id": alert_id, "sensor_id": sensor.sensor_id, "rule": rule.name},
        )
        return OpenedAlert(alert_id, True, attached.incident_id)

    async def resolve_alert(
        self, alert_id: int, incident_id: int | None, rule: str, comment: str, *, event_at: datetime
    ) -> bool:
        """Resolve the alert (if still unresolved) and note it in the timeline of its incident."""
        previous = await self._repo.set_status(
            alert_id, ALERT_UNRESOLVED_STATUSES, "resolved", self._clock(), event_at=event_at
        )
        if previous is None:
            return False
        await self._repo.add_event(alert_id, previous, "resolved", AGENT_ACTOR, comment, at=self._clock())
        if incident_id is not None:
            await self._incidents.alert_resolved(
                incident_id,
                alert_id,
                event_at=event_at,
                note=f"{rule}: {comment}",
                alerts_unresolved=bool(await self._repo.unresolved_in_incident(incident_id)),
            )
        ALERTS_RESOLVED_TOTAL.labels(rule=rule).inc()
        logger.info("alert %d resolved (%s)", alert_id, comment, extra={"alert_id": alert_id, "rule": rule})
        return True

    # --- evaluation -------------------------------------------------------------------------------------------
    async def on_readings(
        self, event: ReadingsIngested, after: Mapping[str, datetime] | None = None
    ) -> EvaluationOutcome:
        """Threshold, rate-of-change and flat-line rules over the batch (see ``_evaluate`` for ``after``)."""
        return await self._evaluate(
            event.sensor_ids, event.first_timestamp, event.last_timestamp, READING_KINDS, event.backfill, after
        )

    async def on_scored(self, event: ReadingsScored, after: Mapping[str, datetime] | None = None) -> EvaluationOutcome:
        """Anomaly-score rules over a scored batch."""
        return await self._evaluate(
            event.sensor_ids, event.first_timestamp, event.last_timestamp, SCORED_KINDS, event.backfill, after
        )

    async def _evaluate(
        self,
        sensor_ids: Sequence[str],
        first: datetime,
        until: datetime,
        kinds: Sequence[str],
        backfill: bool,
        after: Mapping[str, datetime] | None = None,
    ) -> EvaluationOutcome:
        """Evaluate the readings of ``sensor_ids`` in ``[first, until]``; a sensor in ``after`` whose last
        evaluated reading (``after[sensor]``) lies before ``first`` is evaluated from just after it instead, so
        an earlier batch that the bus delivers later is evaluated now, in time order (its own delivery then
        changes nothing)."""
        outcome = EvaluationOutcome()
        judged, sensors = await self._judged(sensor_ids, kinds)
        if not judged:
            return outcome
        ids = sorted({j.sensor.sensor_id for j in judged})
        names = sorted({j.rule.name for j in judged})
        await self._repo.lock_alert_keys((j.sensor.sensor_id, j.rule.name) for j in judged)
        unresolved = await self._repo.unresolved_alerts(ids, names)
        last_observed = await self._repo.last_observed_at([a.id for a in unresolved.values()])
        lookback = max(j.hysteresis.lookback for j in judged)
        firsts = {s: evaluation_start(first, (after or {}).get(s)) for s in ids}
        points = await self._repo.readings_for(firsts, until, lookback)
        earliest = min([first, *(p[0].timestamp for p in points.values() if p)])
        observed = await self._repo.observed_timestamps(ids, names, earliest)
        anomalies = await self._repo.anomalies(ids, earliest, until) if "anomaly_score" in kinds else {}
        suppression = Suppression(
            await self._repo.maintenance_windows(
                [s.asset_id for s in sensors.values() if s.asset_id is not None], earliest, until
            )
        )
        for j in judged:
            sensor_id = j.sensor.sensor_id
            alert = unresolved.get((sensor_id, j.rule.name))
            matches: dict[datetime, AnomalyPoint] = {}
            if j.rule.kind == "anomaly_score":
                matches = matching_anomalies(anomalies.get(sensor_id, []), j.params)
                violates: Violation = anomaly_violation(set(matches))
            else:
                violates = reading_violation(j.rule.kind, j.params)

            def suppressed(at: datetime, info: SensorInfo = j.sensor) -> bool:
                return suppression.reason(info, at) is not None

            actions = simulate(
                points.get(sensor_id, []),
                violates,
                j.hysteresis,
                alert_open=alert is not None,
                opened_at=alert.event_opened_at if alert is not None else None,
                last_observed_at=last_observed.get(alert.id) if alert is not None else None,
                observed=observed.get((sensor_id, j.rule.name), set()),
                batch_start=firsts[sensor_id],
                suppressed=suppressed,
            )
            await self._apply(j, alert, actions.steps, outcome, suppression, matches, backfill)
        return outcome

    async def _apply(
        self,
        j: Judged,
        alert: Alert | None,
        steps: list[tuple[str, Any]],
        outcome: EvaluationOutcome,
        suppression: Suppression,
        matches: dict[datetime, AnomalyPoint],
        backfill: bool,
    ) -> None:
        rule, sensor = j.rule, j.sensor
        current = alert.id if alert is not None else None
        incident = alert.incident_id if alert is not None else None
        pending: list[Observation] = []

        def observation(p: Point) -> Observation:
            anomaly = matches.get(p.timestamp)
            return Observation(p.timestamp, p.value, anomaly.id if anomaly is not None else None)

        async def flush() -> None:
            if current is not None and pending:
                await self._repo.add_observations(current, pending)
                if incident is not None:
                    peak = max(
                        (matches[o.observed_at].score for o in pending if o.observed_at in matches), default=None
                    )
                    await self._incidents.touch(incident, max(o.observed_at for o in pending), peak)
            pending.clear()

        for action, payload in steps:
            if action == "observe":
                pending.append(observation(payload))
            elif action == "open":
                await flush()
                observations = [observation(p) for p in payload.observations]
                peak = max(
                    (matches[p.timestamp].score for p in payload.observations if p.timestamp in matches), default=None
                )
                h = j.hysteresis
                current, opened, incident = await self.open_alert(
                    rule,
                    sensor,
                    observations,
                    f"{len(observations)} of the last {h.n} readings match"
                    + (f" (within {rule.max_age_minutes:g} min)" if rule.max_age_minutes else ""),
                    event_at=payload.at,
                    backfill=backfill,
                    peak_score=peak,
                )
                if opened:
                    outcome.opened.append(current)
            elif action == "resolve":
                await flush()
                h = j.hysteresis
                comment = f"{h.m} consecutive normal readings"
                if h.hold:
                    comment += f" and {h.hold.total_seconds() / 60:g} min held"
                if current is not None and await self.resolve_alert(
                    current, incident, rule.name, comment, event_at=payload
                ):
                    outcome.resolved.append(current)
                current = incident = None
            elif action == "suppressed":
                self._suppressed(
                    outcome, rule, sensor.sensor_id, suppression.reason(sensor, payload) or "unknown", payload
                )
        await flush()


__all__ = [
    "AGENT_ACTOR",
    "AlertingService",
    "EvaluationOutcome",
]
