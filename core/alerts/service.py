"""The alerting agent's logic (services flush, never commit; SQL lives in ``core.db.repositories.alerting``).

``AlertingService``
    ``on_anomaly(AnomalyDetected)``: anomaly-score rules. The anomaly is linked to the unresolved alert of
    (sensor, rule) if there is one; otherwise the alert opens when at least ``open_after_k`` anomalies with
    ``score >= min_score`` that no alert of the rule has counted yet lie within ``window_minutes`` before it.
    ``on_readings(ReadingsIngested)``: threshold and rate-of-change rules over the batch's readings (loaded
    with one query, together with the normal streak before the batch), and the automatic resolution of every
    rule except no-data after ``resolve_after_m`` consecutive normal readings (see ``core.alerts.engine``).
    ``check_no_data(now)``: opens no-data alerts for active sensors without a reading for
    ``no_data_minutes`` (since their creation when they never sent one) and resolves them once data is back.
    No-data rules have no hysteresis (k and m are not used): silence is already a duration.

Idempotency (delivery is at least once): natural keys, no processed-event table. Every matching reading an
alert counted is stored in ``alert_observations`` (key: alert, reading timestamp; anomalies linked by id) and
``alerts.anomaly_count`` is recounted from those rows; matching readings any alert of the rule has counted
never count towards a new alert. The same event twice therefore finds the same state and writes nothing new.
The partial unique index (one unresolved alert per sensor and rule) backs the upsert, so concurrent
deliveries cannot open two alerts either.

Suppression: no alert opens while the sensor or its asset has a maintenance task ``open`` or ``in_progress``, or
while the matching reading lies in one of the asset's maintenance windows; each suppressed opening counts in
``sm_alerts_suppressed_total{reason}`` and is logged. Matching readings observed while an alert is already
unresolved are still counted by it.

Known limit: the anomaly agent and this agent both react to ``ReadingsIngested``; an anomaly alert can resolve
on normal readings just before the anomaly agent stores an anomaly of the same batch. That anomaly then counts
towards a new alert (k-of-window applies), it does not reopen the old one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.engine import anomaly_violation, rate_violation, simulate, threshold_violation
from core.alerts.lifecycle import AlertDetails, AlertLifecycleService  # re-exported for the routers
from core.alerts.rules import AlertRuleService  # re-exported for the routers
from core.alerts.suppression import Suppression
from core.alerts.window import MatchCache, merge_points, reading_filters
from core.db.models import ALERT_UNRESOLVED_STATUSES, Alert, AlertRule
from core.db.repositories.alerting import (
    AlertingRepository,
    AnomalyPoint,
    Observation,
    SensorInfo,
)
from core.events.outbox import add_to_outbox
from core.events.types import AlertRaised, AnomalyDetected, ReadingsIngested
from core.observability.metrics import ALERTS_OPENED_TOTAL, ALERTS_RESOLVED_TOTAL, ALERTS_SUPPRESSED_TOTAL

logger = logging.getLogger("core.alerts")

#: ``alert_events.actor`` of changes made by the agent.
AGENT_ACTOR = "alerting"
READING_KINDS = ("threshold", "rate_of_change", "anomaly_score")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Outcome:
    """What one evaluation did (for logs and tests)."""

    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    suppressed: int = 0


@dataclass
class _AnomalyRun:
    """What ``on_anomalies`` reads once per run (see ``_open_on_anomaly``)."""

    sensors: dict[str, SensorInfo]
    bounds: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # per sensor: its events' span
    history: dict[tuple[str, str], tuple[set[datetime], list[AnomalyPoint]]] = field(default_factory=dict)
    suppression: Suppression | None = None


class AlertingService:
    def __init__(self, session: AsyncSession, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._session = session
        self._repo = AlertingRepository(session)
        self._clock = clock

    # --- shared steps -----------------------------------------------------------------------------------------
    async def _suppression(
        self, sensors: dict[str, SensorInfo], since: datetime, until: datetime
    ) -> Suppression:
        assets = [s.asset_id for s in sensors.values() if s.asset_id is not None]
        return Suppression(
            await self._repo.assets_with_active_tasks(assets),
            await self._repo.maintenance_windows(assets, since, until),
            await self._repo.sensors_with_active_tasks(sensors),
        )

    def _suppressed(
        self, outcome: Outcome, rule: AlertRule, sensor_id: str, reason: str, at: datetime
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

    async def _open(
        self, rule: AlertRule, sensor_id: str, observations: Sequence[Observation], comment: str
    ) -> tuple[int, bool]:
        alert_id, opened = await self._repo.upsert_unresolved(sensor_id, rule.name, rule.severity)
        await self._repo.add_observations(alert_id, observations)
        if opened:
            await self._repo.add_event(alert_id, None, "open", AGENT_ACTOR, comment, at=self._clock())
            await add_to_outbox(
                self._session,
                AlertRaised(alert_id=alert_id, sensor_id=sensor_id, rule=rule.name, severity=rule.severity),  # type: ignore[arg-type]
            )
            ALERTS_OPENED_TOTAL.labels(rule=rule.name, severity=rule.severity).inc()
            logger.info(
                "alert %d opened for sensor %s, rule %s (%s)",
                alert_id,
                sensor_id,
                rule.name,
                rule.severity,
                extra={"alert_id": alert_id, "sensor_id": sensor_id, "rule": rule.name},
            )
        return alert_id, opened

    async def _resolve(self, alert_id: int, rule: str, comment: str) -> bool:
        previous = await self._repo.set_status(alert_id, ALERT_UNRESOLVED_STATUSES, "resolved", self._clock())
        if previous is None:
            return False
        await self._repo.add_event(alert_id, previous, "resolved", AGENT_ACTOR, comment, at=self._clock())
        ALERTS_RESOLVED_TOTAL.labels(rule=rule).inc()
        logger.info("alert %d resolved (%s)", alert_id, comment, extra={"alert_id": alert_id, "rule": rule})
        return True

    # --- AnomalyDetected --------------------------------------------------------------------------------------
    async def on_anomaly(self, event: AnomalyDetected) -> Outcome:
        return await self.on_anomalies([event])

    async def on_anomalies(self, events: Sequence[AnomalyDetected]) -> Outcome:
        """``on_anomaly`` for several events in one unit of work, taken per sensor in time order: rules, sensors,
        stored anomaly ids and unresolved alerts are read once, and the observations of an unresolved alert are
        written in one statement (a fault's burst of anomalies cost ~7 round trips and a transaction each)."""
        outcome = Outcome()
        pairs = await self._repo.rules_for_sensors(sorted({e.sensor_id for e in events}), ["anomaly_score"])
        rules_of: dict[str, list[AlertRule]] = defaultdict(list)
        for rule, sensor in pairs:
            rules_of[sensor].append(rule)
        todo = sorted(
            (e for e in events if rules_of.get(e.sensor_id)),
            key=lambda e: (e.sensor_id, e.timestamp, e.anomaly_id),
        )
        if not todo:
            return outcome
        sensor_ids = sorted({e.sensor_id for e in todo})
        # Decisions about a (sensor, rule) are serialised across transactions (other processes, a redelivery
        # running beside its first delivery): without the lock, a delivery that read "no unresolved alert"
        # before a concurrent one committed its opening saw the opener's work order, dropped its anomaly as
        # suppressed, and a later redelivery counted it in the alert (not idempotent).
        await self._repo.lock_alert_keys((s, r.name) for s in sensor_ids for r in rules_of[s])
        open_ids = {
            key: alert.id
            for key, alert in (
                await self._repo.unresolved_alerts(sensor_ids, sorted({r.name for r, _ in pairs}))
            ).items()
        }
        run = _AnomalyRun(await self._repo.sensors(sensor_ids))
        for event in todo:
            lo, hi = run.bounds.get(event.sensor_id, (event.timestamp, event.timestamp))
            run.bounds[event.sensor_id] = (min(lo, event.timestamp), max(hi, event.timestamp))
        stored_ids = await self._repo.existing_anomalies([e.anomaly_id for e in todo])
        pending: dict[int, dict[datetime, Observation]] = defaultdict(dict)
        for event in todo:
            sensor_id = event.sensor_id
            this = Observation(  # unlinked if the row is gone
                event.timestamp, event.value, event.anomaly_id if event.anomaly_id in stored_ids else None
            )
            for rule in rules_of[sensor_id]:
                if event.score < float(rule.params.get("min_score", 0.0)):
                    continue
                alert_id = open_ids.get((sensor_id, rule.name))
                if alert_id is not None:
                    pending[alert_id].setdefault(event.timestamp, this)
                    continue
                opened_id = await self._open_on_anomaly(event, rule, run, outcome)
                if opened_id is not None:
                    open_ids[(sensor_id, rule.name)] = opened_id
        for alert_id, observations in pending.items():
            await self._repo.add_observations(alert_id, list(observations.values()))
        return outcome

    async def _open_on_anomaly(
        self, event: AnomalyDetected, rule: AlertRule, run: _AnomalyRun, outcome: Outcome
    ) -> int | None:
        """Open an alert of ``rule`` if ``event`` completes k anomalies within the window; its id, else None.
        Observations, anomalies and suppression are read once per run (``_AnomalyRun``): nothing the run writes
        changes them until an alert of (sensor, rule) opens, after which its events take the other path."""
        sensor_id = event.sensor_id
        key = (sensor_id, rule.name)
        if key not in run.history:
            first, last = run.bounds[sensor_id]
            start = first - timedelta(minutes=rule.window_minutes)
            observed_all = (await self._repo.observed_timestamps([sensor_id], [rule.name], start)).get(
                key, set()
            )
            stored_all = (
                await self._repo.anomalies([sensor_id], start, last, float(rule.params["min_score"]))
            )[sensor_id]
            run.history[key] = (observed_all, stored_all)
        observed_all, stored_all = run.history[key]
        since = event.timestamp - timedelta(minutes=rule.window_minutes)
        observed = {t for t in observed_all if t >= since}
        if event.timestamp in observed:
            return None  # a redelivery after its alert resolved, or already counted
        stored = [a for a in stored_all if since <= a.timestamp <= event.timestamp]
        by_time: dict[datetime, AnomalyPoint] = {}
        for anomaly in stored:
            if anomaly.timestamp not in observed:
                by_time.setdefault(anomaly.timestamp, anomaly)
        if len(set(by_time) | {event.timestamp}) < rule.open_after_k:
            return None
        if run.suppression is None:
            first = min(lo for lo, _ in run.bounds.values())
            last = max(hi for _, hi in run.bounds.values())
            run.suppression = await self._suppression(run.sensors, first, last)
        reason = run.suppression.reason(run.sensors.get(sensor_id), event.timestamp)
        if reason is not None:
            self._suppressed(outcome, rule, sensor_id, reason, event.timestamp)
            return None
        observations = [Observation(a.timestamp, a.value, a.id) for a in by_time.values()]
        if event.timestamp not in by_time:  # not stored (yet): count the event itself, unlinked
            observations.append(Observation(event.timestamp, event.value, None))
        alert_id, opened = await self._open(
            rule,
            sensor_id,
            observations,
            f"{len(observations)} anomalies with score >= {rule.params['min_score']} "
            f"within {rule.window_minutes} min",
        )
        if opened:
            outcome.opened.append(alert_id)
        return alert_id

    # --- ReadingsIngested -------------------------------------------------------------------------------------
    async def on_readings(self, event: ReadingsIngested, cache: MatchCache | None = None) -> Outcome:
        """Evaluate the batch; ``cache`` (held by the agent across deliveries) spares re-reading the window."""
        outcome = Outcome()
        pairs = await self._repo.rules_for_sensors(sorted(set(event.sensor_ids)), READING_KINDS)
        if not pairs:
            return outcome
        sensor_ids = sorted({s for _, s in pairs})
        names = sorted({r.name for r, _ in pairs})
        max_window = max(r.window_minutes for r, _ in pairs)
        last_n = max(r.resolve_after_m + r.open_after_k for r, _ in pairs) + 1
        since = event.first_timestamp - timedelta(minutes=max_window)
        until = event.last_timestamp
        unresolved = await self._repo.unresolved_alerts(sensor_ids, names)
        last_observed = await self._repo.last_observed_at([a.id for a in unresolved.values()])
        first = event.first_timestamp
        filters = reading_filters(pairs, unresolved, last_observed)
        scan_from = cache.scan_from(filters, since, first) if cache is not None else None
        points = await self._repo.readings_for(filters, since, first, until, last_n, scan_from)
        if cache is not None and scan_from is not None:
            for sensor_id, start in scan_from.items():
                points[sensor_id] = merge_points(cache.cached(sensor_id, since, start), points[sensor_id])
            cache.store(filters, points, since, first)
        earliest = min([since, *(p[0].timestamp for p in points.values() if p)])
        observed = await self._repo.observed_timestamps(sensor_ids, names, earliest)
        anomaly_sensors = sorted(
            {s for r, s in pairs if r.kind == "anomaly_score" and (s, r.name) in unresolved}
        )
        anomalies = await self._repo.anomalies(anomaly_sensors, earliest, until) if anomaly_sensors else {}
        sensors = await self._repo.sensors(sensor_ids)
        suppression = await self._suppression(sensors, earliest, until)

        for rule, sensor_id in pairs:
            key = (sensor_id, rule.name)
            alert = unresolved.get(key)
            if rule.kind == "anomaly_score":
                if alert is None:
                    continue  # anomaly alerts open on AnomalyDetected only
                min_score = float(rule.params.get("min_score", 0.0))
                violates = anomaly_violation(
                    {a.timestamp for a in anomalies.get(sensor_id, []) if a.score >= min_score}
                )
            elif rule.kind == "threshold":
                violates = threshold_violation(rule.params)
            else:
                violates = rate_violation(rule.params)
            info = sensors.get(sensor_id)
            actions = simulate(
                points.get(sensor_id, []),
                violates,
                k=rule.open_after_k,
                window=timedelta(minutes=rule.window_minutes),
                m=rule.resolve_after_m,
                alert_open=alert is not None,
                last_observed_at=last_observed.get(alert.id) if alert is not None else None,
                observed=observed.get(key, set()),
                batch_start=event.first_timestamp,
                suppressed=lambda at, info=info: suppression.reason(info, at) is not None,
                can_open=rule.kind != "anomaly_score",
            )
            await self._apply(rule, sensor_id, alert, actions.steps, outcome, suppression, info)
        return outcome

    async def _apply(
        self,
        rule: AlertRule,
        sensor_id: str,
        alert: Alert | None,
        steps: list[tuple[str, Any]],
        outcome: Outcome,
        suppression: Suppression,
        info: SensorInfo | None,
    ) -> None:
        current = alert.id if alert is not None else None
        pending: list[Observation] = []
        record = rule.kind != "anomaly_score"  # anomaly observations are linked by on_anomaly, with their id

        async def flush() -> None:
            if current is not None and pending:
                await self._repo.add_observations(current, pending)
            pending.clear()

        for action, payload in steps:
            if action == "observe":
                if record:
                    pending.append(Observation(payload.timestamp, payload.value))
            elif action == "open":
                await flush()
                observations = [Observation(p.timestamp, p.value) for p in payload.observations]
                current, opened = await self._open(
                    rule,
                    sensor_id,
                    observations,
                    f"{len(observations)} matching readings within {rule.window_minutes} min",
                )
                if opened:
                    outcome.opened.append(current)
            elif action == "resolve":
                await flush()
                if current is not None and await self._resolve(
                    current, rule.name, f"{rule.resolve_after_m} consecutive normal readings"
                ):
                    outcome.resolved.append(current)
                current = None
            elif action == "suppressed":
                self._suppressed(
                    outcome, rule, sensor_id, suppression.reason(info, payload) or "unknown", payload
                )
        await flush()

    # --- no data ----------------------------------------------------------------------------------------------
    async def check_no_data(self, now: datetime | None = None) -> Outcome:
        """Open or resolve no-data alerts as of ``now`` (default: the clock)."""
        now = now or self._clock()
        outcome = Outcome()
        sensors = await self._repo.active_sensors()
        pairs = await self._repo.rules_for_sensors(sorted(sensors), ["no_data"])
        if not pairs:
            return outcome
        sensor_ids = sorted({s for _, s in pairs})
        last = await self._repo.last_reading_at(sensor_ids)
        unresolved = await self._repo.unresolved_alerts(sensor_ids, sorted({r.name for r, _ in pairs}))
        suppression = await self._suppression({s: sensors[s] for s in sensor_ids}, now, now)
        for rule, sensor_id in pairs:
            minutes = float(rule.params["no_data_minutes"])
            info = sensors[sensor_id]
            reference = last.get(sensor_id) or info.created_at
            silent = reference <= now - timedelta(minutes=minutes)
            alert = unresolved.get((sensor_id, rule.name))
            if silent and alert is None:
                reason = suppression.reason(info, now)
                if reason is not None:
                    self._suppressed(outcome, rule, sensor_id, reason, now)
                    continue
                alert_id, opened = await self._open(
                    rule, sensor_id, [], f"no reading for {minutes:g} min (last: {reference.isoformat()})"
                )
                if opened:
                    outcome.opened.append(alert_id)
            elif (
                not silent
                and alert is not None
                and await self._resolve(alert.id, rule.name, f"data returned ({reference.isoformat()})")
            ):
                outcome.resolved.append(alert.id)
        return outcome


__all__ = [
    "AGENT_ACTOR",
    "AlertDetails",
    "AlertLifecycleService",
    "AlertRuleService",
    "AlertingService",
    "Outcome",
]
