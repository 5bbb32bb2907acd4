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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.engine import anomaly_violation, rate_violation, simulate, threshold_violation
from core.alerts.schemas import AlertRuleCreate, AlertRuleUpdate, validate_params
from core.db.models import ALERT_UNRESOLVED_STATUSES, Alert, AlertEvent, AlertRule, Anomaly
from core.db.repositories.alerting import (
    AlertingRepository,
    AnomalyPoint,
    Observation,
    ReadingFilter,
    SensorInfo,
)
from core.errors import Conflict, NotFound, ValidationFailed
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


class _Suppression:
    """Which sensors are under maintenance: an active task of their asset or of the sensor itself (sensors
    without an asset get tasks too), or a window of their asset containing the time."""

    def __init__(
        self,
        active_tasks: set[int],
        windows: dict[int, list[tuple[datetime, datetime]]],
        sensors_with_tasks: set[str] | None = None,
    ) -> None:
        self._tasks = active_tasks
        self._windows = windows
        self._sensor_tasks = sensors_with_tasks or set()

    def reason(self, sensor: SensorInfo | None, at: datetime) -> str | None:
        if sensor is None:
            return None
        if sensor.sensor_id in self._sensor_tasks:
            return "maintenance_task"
        if sensor.asset_id is None:
            return None
        if sensor.asset_id in self._tasks:
            return "maintenance_task"
        for starts_at, ends_at in self._windows.get(sensor.asset_id, []):
            if starts_at <= at < ends_at:
                return "maintenance_window"
        return None


def reading_filters(
    pairs: Sequence[tuple[AlertRule, str]],
    unresolved: dict[tuple[str, str], Alert],
    last_observed: dict[int, datetime],
) -> list[ReadingFilter]:
    """Per sensor, the readings before the batch (within the rules' window) that ``simulate`` can act on.

    ``simulate`` gives the same actions without the others: while no alert of a rule is unresolved a normal
    reading only extends the normal streak, which matters only once an alert is open, and opening happens on a
    matching reading, which resets the streak first; while an alert is unresolved, readings up to its last
    matching reading are skipped. So a sensor keeps its matching readings (threshold rules: outside the
    narrowest ``[min, max]`` of its rules), every reading after the last matching reading of its unresolved
    alerts, and everything when it has a rate-of-change rule (whose match depends on the previous reading) or
    an unresolved alert without observations. Without this the agent loaded every reading of the window
    (5 min x 100 readings/s x 50 sensors = 1.5 M rows per batch at the simulator's rate).
    """
    keep_all: dict[str, bool] = {}
    after: dict[str, datetime | None] = {}
    lo: dict[str, float | None] = {}
    hi: dict[str, float | None] = {}
    for rule, sensor_id in pairs:
        keep_all.setdefault(sensor_id, False)
        alert = unresolved.get((sensor_id, rule.name))
        if rule.kind == "rate_of_change":
            keep_all[sensor_id] = True
        if alert is not None:
            at = last_observed.get(alert.id)
            held = after.get(sensor_id)
            if at is None:
                keep_all[sensor_id] = True
            elif held is None or at < held:
                after[sensor_id] = at
        if rule.kind == "threshold":
            low, high = rule.params.get("min"), rule.params.get("max")
            if low is not None:
                current = lo.get(sensor_id)
                lo[sensor_id] = float(low) if current is None else max(current, float(low))
            if high is not None:
                current = hi.get(sensor_id)
                hi[sensor_id] = float(high) if current is None else min(current, float(high))
    return [ReadingFilter(s, keep_all[s], after.get(s), lo.get(s), hi.get(s)) for s in sorted(keep_all)]


class AlertingService:
    def __init__(self, session: AsyncSession, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._session = session
        self._repo = AlertingRepository(session)
        self._clock = clock

    # --- shared steps -----------------------------------------------------------------------------------------
    async def _suppression(
        self, sensors: dict[str, SensorInfo], since: datetime, until: datetime
    ) -> _Suppression:
        assets = [s.asset_id for s in sensors.values() if s.asset_id is not None]
        return _Suppression(
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
        outcome = Outcome()
        sensor_id = event.sensor_id
        rules = [
            rule
            for rule, _ in await self._repo.rules_for_sensors([sensor_id], ["anomaly_score"])
            if event.score >= float(rule.params.get("min_score", 0.0))
        ]
        if not rules:
            return outcome
        unresolved = await self._repo.unresolved_alerts([sensor_id], [r.name for r in rules])
        sensors = await self._repo.sensors([sensor_id])
        stored_id = event.anomaly_id if await self._repo.anomaly_exists(event.anomaly_id) else None
        this = Observation(event.timestamp, event.value, stored_id)  # unlinked if the row is gone
        for rule in rules:
            alert = unresolved.get((sensor_id, rule.name))
            if alert is not None:
                await self._repo.add_observations(alert.id, [this])
                continue
            since = event.timestamp - timedelta(minutes=rule.window_minutes)
            observed = (await self._repo.observed_timestamps([sensor_id], [rule.name], since)).get(
                (sensor_id, rule.name), set()
            )
            if event.timestamp in observed:
                continue  # a redelivery after its alert resolved, or already counted
            stored = (
                await self._repo.anomalies(
                    [sensor_id], since, event.timestamp, float(rule.params["min_score"])
                )
            )[sensor_id]
            by_time: dict[datetime, AnomalyPoint] = {}
            for anomaly in stored:
                if anomaly.timestamp not in observed:
                    by_time.setdefault(anomaly.timestamp, anomaly)
            if len(set(by_time) | {event.timestamp}) < rule.open_after_k:
                continue
            reason = (await self._suppression(sensors, event.timestamp, event.timestamp)).reason(
                sensors.get(sensor_id), event.timestamp
            )
            if reason is not None:
                self._suppressed(outcome, rule, sensor_id, reason, event.timestamp)
                continue
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
        return outcome

    # --- ReadingsIngested -------------------------------------------------------------------------------------
    async def on_readings(self, event: ReadingsIngested) -> Outcome:
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
        points = await self._repo.readings_for(
            reading_filters(pairs, unresolved, last_observed), since, event.first_timestamp, until, last_n
        )
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
        suppression: _Suppression,
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


# --- the API's side ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertDetails:
    alert: Alert
    events: Sequence[AlertEvent]
    anomalies: Sequence[Anomaly]


class AlertLifecycleService:
    """open → acknowledged → resolved (and open → resolved); any other transition is a 409."""

    def __init__(self, session: AsyncSession, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._repo = AlertingRepository(session)
        self._clock = clock

    async def details(self, alert_id: int) -> AlertDetails:
        alert = await self._repo.get_alert(alert_id)
        if alert is None:
            raise NotFound(f"alert {alert_id} does not exist")
        return AlertDetails(
            alert, await self._repo.events(alert_id), await self._repo.linked_anomalies(alert_id)
        )

    async def _transition(
        self, alert_id: int, allowed: tuple[str, ...], to: str, actor: str, comment: str | None
    ) -> AlertDetails:
        alert = await self._repo.get_alert(alert_id, for_update=True)
        if alert is None:
            raise NotFound(f"alert {alert_id} does not exist")
        if alert.status not in allowed:
            raise Conflict(
                f"alert {alert_id} is {alert.status}: it cannot become {to}",
                extra={"status": alert.status},
            )
        previous = await self._repo.set_status(alert_id, allowed, to, self._clock())
        await self._repo.add_event(alert_id, previous, to, actor, comment, at=self._clock())
        if to == "resolved":
            ALERTS_RESOLVED_TOTAL.labels(rule=alert.rule).inc()
        return await self.details(alert_id)

    async def acknowledge(self, alert_id: int, *, actor: str, comment: str | None = None) -> AlertDetails:
        return await self._transition(alert_id, ("open",), "acknowledged", actor, comment)

    async def resolve(self, alert_id: int, *, actor: str, comment: str | None = None) -> AlertDetails:
        return await self._transition(alert_id, ALERT_UNRESOLVED_STATUSES, "resolved", actor, comment)


class AlertRuleService:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._repo = AlertingRepository(session)

    async def page(
        self, *, limit: int, offset: int, kind: str | None = None, enabled: bool | None = None
    ) -> tuple[Sequence[AlertRule], int]:
        return await self._repo.list_rules(limit=limit, offset=offset, kind=kind, enabled=enabled)

    async def get(self, rule_id: int) -> AlertRule:
        rule = await self._repo.get_rule(rule_id)
        if rule is None:
            raise NotFound(f"alert rule {rule_id} does not exist")
        return rule

    async def _check(self, name: str | None, sensor_id: str | None, exclude: int | None = None) -> None:
        if name is not None:
            existing = await self._repo.rule_by_name(name)
            if existing is not None and existing.id != exclude:
                raise Conflict(f"an alert rule named {name!r} already exists")
        if sensor_id is not None and not await self._repo.sensor_exists(sensor_id):
            raise ValidationFailed(
                f"sensor {sensor_id!r} does not exist",
                extra={
                    "errors": [{"loc": ["body", "sensor_id"], "msg": "unknown sensor", "type": "value_error"}]
                },
            )

    async def create(self, body: AlertRuleCreate) -> AlertRule:
        await self._check(body.name, body.sensor_id)
        try:
            return await self._repo.add_rule(**body.model_dump())
        except IntegrityError as exc:  # a concurrent create with the same name
            raise Conflict(f"an alert rule named {body.name!r} already exists") from exc

    async def update(self, rule_id: int, body: AlertRuleUpdate) -> AlertRule:
        rule = await self.get(rule_id)
        changes = body.model_dump(exclude_unset=True)
        for required in (
            "name",
            "params",
            "severity",
            "open_after_k",
            "window_minutes",
            "resolve_after_m",
            "enabled",
        ):
            if required in changes and changes[required] is None:
                raise ValidationFailed(
                    f"{required} cannot be null",
                    extra={
                        "errors": [
                            {"loc": ["body", required], "msg": "may not be null", "type": "value_error"}
                        ]
                    },
                )
        if "params" in changes:
            try:
                changes["params"] = validate_params(rule.kind, changes["params"])
            except ValueError as exc:
                raise ValidationFailed(
                    f"invalid params for kind {rule.kind!r}",
                    extra={"errors": [{"loc": ["body", "params"], "msg": str(exc), "type": "value_error"}]},
                ) from None
        sensor_type = changes.get("sensor_type", rule.sensor_type)
        sensor_id = changes.get("sensor_id", rule.sensor_id)
        if "sensor_type" in changes and "sensor_id" not in changes and changes["sensor_type"] is not None:
            sensor_id = changes["sensor_id"] = None  # narrowing to a type replaces a sensor scope
        if "sensor_id" in changes and "sensor_type" not in changes and changes["sensor_id"] is not None:
            sensor_type = changes["sensor_type"] = None
        if sensor_type is not None and sensor_id is not None:
            raise ValidationFailed(
                "set sensor_type or sensor_id, not both",
                extra={"errors": [{"loc": ["body"], "msg": "one scope only", "type": "value_error"}]},
            )
        await self._check(changes.get("name"), changes.get("sensor_id"), exclude=rule.id)
        for name, value in changes.items():
            setattr(rule, name, value)
        await self._session.flush()
        return rule

    async def delete(self, rule_id: int) -> AlertRule:
        rule = await self.get(rule_id)
        await self._repo.delete_rule(rule)
        return rule


__all__ = [
    "AGENT_ACTOR",
    "AlertDetails",
    "AlertLifecycleService",
    "AlertRuleService",
    "AlertingService",
    "Outcome",
]
