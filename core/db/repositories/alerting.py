"""Alerting: alerts of the alerting agent, their history and observations, the readings they are evaluated on
(SQL only here). Rule queries live in ``alerting_rules``, suppression queries in ``alerting_suppression``;
``AlertingRepository`` has them all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import (
    ALERT_UNRESOLVED_STATUSES,
    Alert,
    AlertEvent,
    AlertObservation,
    Anomaly,
    Sensor,
)
from core.db.repositories.alerting_rules import AlertRulesQueries
from core.db.repositories.alerting_suppression import ACTIVE_TASK_STATUSES, SuppressionQueries


@dataclass(frozen=True, slots=True)
class Point:
    """One reading (or anomalous reading) of a sensor."""

    timestamp: datetime
    value: float


@dataclass(frozen=True, slots=True)
class AnomalyPoint:
    id: int
    timestamp: datetime
    value: float
    score: float


@dataclass(frozen=True, slots=True)
class SensorInfo:
    sensor_id: str
    asset_id: int | None
    type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReadingFilter:
    """Which readings of a sensor before the batch its rules can act on (``AlertingRepository.readings_for``).

    ``keep_all``: every one (a rate-of-change rule compares consecutive readings); ``after``: every one later
    than this instant; ``lo``/``hi``: those below ``lo`` or above ``hi`` (``None``: no such bound).
    """

    sensor_id: str
    keep_all: bool = False
    after: datetime | None = None
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    observed_at: datetime
    value: float | None
    anomaly_id: int | None = None


#: Readings of the batch's sensors from ``:first`` (the batch's first timestamp) to ``:until``, plus the last ``n``
#: readings up to ``:until`` of each sensor (the normal streak before the batch), plus, per sensor, the readings
#: from ``scan_from`` (the rules' window) the rules of the batch can act on: every reading when ``keep_all``, readings after ``after`` (the last matching reading of an
#: unresolved alert: the normal streak that may resolve it), and readings outside ``[lo, hi]`` (threshold
#: matches that may count towards opening). See ``ReadingFilter``.
_FILTERED_READINGS_SQL = text(
    """
    SELECT f.sensor_id, r.timestamp, r.value
    FROM unnest(CAST(:ids AS text[]), CAST(:keep_all AS boolean[]), CAST(:after AS timestamptz[]),
                CAST(:lo AS double precision[]), CAST(:hi AS double precision[]), CAST(:scan_from AS timestamptz[]))
         AS f(sensor_id, keep_all, after, lo, hi, scan_from)
    CROSS JOIN LATERAL (
        SELECT x.timestamp, x.value FROM sensor_readings x
        WHERE x.sensor_id = f.sensor_id AND x.timestamp >= f.scan_from AND x.timestamp <= :until
          AND (x.timestamp >= :first OR f.keep_all OR x.timestamp > f.after OR x.value < f.lo OR x.value > f.hi)
        OFFSET 0  -- not flattened: one index range scan per sensor from its scan_from (else a hash join that
                  -- reads every row of the table in the window, whatever scan_from says: ~0.1 s per 150k rows)
    ) r
    UNION
    SELECT s.sensor_id, r.timestamp, r.value
    FROM unnest(CAST(:ids AS text[])) AS s(sensor_id)
    CROSS JOIN LATERAL (
        SELECT timestamp, value FROM sensor_readings x
        WHERE x.sensor_id = s.sensor_id AND x.timestamp <= :until
        ORDER BY x.timestamp DESC LIMIT :n
    ) r
    ORDER BY 1, 2
    """
)

_LOCK_ALERT_KEYS_SQL = text(
    "SELECT pg_advisory_xact_lock(k) FROM ("
    "SELECT DISTINCT hashtextextended('alert:' || key, 0) AS k "
    "FROM unnest(CAST(:keys AS text[])) AS key ORDER BY k) AS ordered"
)

_LAST_READING_SQL = text(
    """
    SELECT s.sensor_id,
           (SELECT max(r.timestamp) FROM sensor_readings r WHERE r.sensor_id = s.sensor_id) AS last_at
    FROM unnest(CAST(:ids AS text[])) AS s(sensor_id)
    """
)


class AlertingRepository(AlertRulesQueries, SuppressionQueries):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- sensors ---------------------------------------------------------------------------------------------
    async def sensors(self, sensor_ids: Iterable[str]) -> dict[str, SensorInfo]:
        rows = await self._session.execute(
            select(Sensor.sensor_id, Sensor.asset_id, Sensor.type, Sensor.created_at).where(
                Sensor.sensor_id.in_(list(sensor_ids))
            )
        )
        return {r.sensor_id: SensorInfo(r.sensor_id, r.asset_id, r.type, r.created_at) for r in rows}

    async def active_sensors(self) -> dict[str, SensorInfo]:
        rows = await self._session.execute(
            select(Sensor.sensor_id, Sensor.asset_id, Sensor.type, Sensor.created_at).where(
                Sensor.status == "active"
            )
        )
        return {r.sensor_id: SensorInfo(r.sensor_id, r.asset_id, r.type, r.created_at) for r in rows}

    # --- observations -----------------------------------------------------------------------------------------
    async def readings_for(
        self,
        filters: Sequence[ReadingFilter],
        since: datetime,
        first: datetime,
        until: datetime,
        last_n: int,
        scan_from: Mapping[str, datetime] | None = None,
    ) -> dict[str, list[Point]]:
        """Readings per sensor in ``[first, until]``, those in ``[since, first)`` its ``ReadingFilter`` keeps,
        plus the last ``last_n`` up to ``until`` (one query; the filter runs in the database). ``scan_from``
        starts a sensor's window later than ``since`` (the caller has the earlier readings)."""
        out: dict[str, list[Point]] = {f.sensor_id: [] for f in filters}
        if not filters:
            return out
        params = {
            "ids": [f.sensor_id for f in filters],
            "keep_all": [f.keep_all for f in filters],
            "after": [f.after for f in filters],
            "lo": [f.lo for f in filters],
            "hi": [f.hi for f in filters],
            "scan_from": [(scan_from or {}).get(f.sensor_id, since) for f in filters],
            "first": first,
            "until": until,
            "n": last_n,
        }
        rows = await self._session.execute(_FILTERED_READINGS_SQL, params)
        for sensor_id, timestamp, value in rows:
            out[sensor_id].append(Point(timestamp, value))
        return out

    async def anomalies(
        self, sensor_ids: Sequence[str], since: datetime, until: datetime, min_score: float = 0.0
    ) -> dict[str, list[AnomalyPoint]]:
        """Anomalies per sensor in ``[since, until]`` with ``score >= min_score``, oldest first."""
        out: dict[str, list[AnomalyPoint]] = {s: [] for s in sensor_ids}
        if not sensor_ids:
            return out
        rows = await self._session.execute(
            select(Anomaly.sensor_id, Anomaly.id, Anomaly.timestamp, Anomaly.value, Anomaly.score)
            .where(
                Anomaly.sensor_id.in_(list(sensor_ids)),
                Anomaly.timestamp >= since,
                Anomaly.timestamp <= until,
                Anomaly.score >= min_score,
            )
            .order_by(Anomaly.sensor_id, Anomaly.timestamp, Anomaly.id)
        )
        for sensor_id, id_, timestamp, value, score in rows:
            out[sensor_id].append(AnomalyPoint(id_, timestamp, value, score))
        return out

    async def anomaly_exists(self, anomaly_id: int) -> bool:
        return (await self._session.get(Anomaly, anomaly_id)) is not None

    async def existing_anomalies(self, anomaly_ids: Sequence[int]) -> set[int]:
        """The ids of ``anomaly_ids`` that have a row."""
        if not anomaly_ids:
            return set()
        rows = await self._session.scalars(select(Anomaly.id).where(Anomaly.id.in_(sorted(set(anomaly_ids)))))
        return set(rows)

    async def last_reading_at(self, sensor_ids: Sequence[str]) -> dict[str, datetime | None]:
        if not sensor_ids:
            return {}
        rows = await self._session.execute(_LAST_READING_SQL, {"ids": list(sensor_ids)})
        return {sensor_id: last_at for sensor_id, last_at in rows}

    async def observed_timestamps(
        self, sensor_ids: Sequence[str], rules: Sequence[str], since: datetime
    ) -> dict[tuple[str, str], set[datetime]]:
        """Timestamps at or after ``since`` already counted by an alert (any status), per (sensor, rule)."""
        out: dict[tuple[str, str], set[datetime]] = {}
        if not sensor_ids or not rules:
            return out
        rows = await self._session.execute(
            select(Alert.sensor_id, Alert.rule, AlertObservation.observed_at)
            .join(AlertObservation, AlertObservation.alert_id == Alert.id)
            .where(
                Alert.sensor_id.in_(list(sensor_ids)),
                Alert.rule.in_(list(rules)),
                AlertObservation.observed_at >= since,
            )
        )
        for sensor_id, rule, observed_at in rows:
            out.setdefault((sensor_id, rule), set()).add(observed_at)
        return out

    # --- alerts -----------------------------------------------------------------------------------------------
    async def lock_alert_keys(self, keys: Iterable[tuple[str, str]]) -> None:
        """Serialise the transactions deciding about these (sensor, rule) pairs until commit or rollback.

        Transaction-scoped advisory locks, taken in one statement in a global order (the keys' hashes), so two
        transactions locking overlapping sets cannot deadlock. A transaction that takes them before reading
        the unresolved alerts sees every alert a concurrent one opened (READ COMMITTED: a new snapshot per
        statement)."""
        names = sorted({f"{sensor_id}\x1f{rule}" for sensor_id, rule in keys})
        if names:
            await self._session.execute(_LOCK_ALERT_KEYS_SQL, {"keys": names})

    async def unresolved_alerts(
        self, sensor_ids: Sequence[str], rules: Sequence[str]
    ) -> dict[tuple[str, str], Alert]:
        if not sensor_ids or not rules:
            return {}
        rows = await self._session.scalars(
            select(Alert).where(
                Alert.sensor_id.in_(list(sensor_ids)),
                Alert.rule.in_(list(rules)),
                Alert.status.in_(ALERT_UNRESOLVED_STATUSES),
            )
        )
        return {(a.sensor_id, a.rule): a for a in rows}

    async def last_observed_at(self, alert_ids: Sequence[int]) -> dict[int, datetime]:
        if not alert_ids:
            return {}
        rows = await self._session.execute(
            select(AlertObservation.alert_id, func.max(AlertObservation.observed_at))
            .where(AlertObservation.alert_id.in_(list(alert_ids)))
            .group_by(AlertObservation.alert_id)
        )
        return {alert_id: at for alert_id, at in rows}

    async def upsert_unresolved(self, sensor_id: str, rule: str, severity: str) -> tuple[int, bool]:
        """Open an alert for (sensor, rule), or count one more on the unresolved one: (id, opened)."""
        statement = (
            pg_insert(Alert)
            .values(sensor_id=sensor_id, rule=rule, severity=severity, status="open", anomaly_count=0)
            .on_conflict_do_update(
                index_elements=[Alert.sensor_id, Alert.rule],
                # a literal predicate: with a bound one, PostgreSQL cannot infer the partial unique index once
                # asyncpg's prepared statement switches to a generic plan (after five executions)
                index_where=text("status IN ('open', 'acknowledged')"),
                set_={"anomaly_count": Alert.anomaly_count + 1},
            )
            .returning(Alert.id, text("(xmax = 0) AS inserted"))
        )
        row = (await self._session.execute(statement)).one()
        return int(row[0]), bool(row[1])

    async def add_observations(self, alert_id: int, observations: Sequence[Observation]) -> None:
        """Store observations (natural key: alert and timestamp; repeats are ignored) and recount."""
        if observations:
            await self._session.execute(
                pg_insert(AlertObservation)
                .values(
                    [
                        {
                            "alert_id": alert_id,
                            "observed_at": o.observed_at,
                            "value": o.value,
                            "anomaly_id": o.anomaly_id,
                        }
                        for o in observations
                    ]
                )
                .on_conflict_do_nothing(index_elements=["alert_id", "observed_at"])
            )
        count = (
            select(func.count())
            .select_from(AlertObservation)
            .where(AlertObservation.alert_id == alert_id)
            .scalar_subquery()
        )
        await self._session.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(anomaly_count=count)
            .execution_options(synchronize_session=False)
        )

    async def get_alert(self, alert_id: int, *, for_update: bool = False) -> Alert | None:
        query = select(Alert).where(Alert.id == alert_id)
        if for_update:
            query = query.with_for_update()
        return await self._session.scalar(query.execution_options(populate_existing=True))

    async def set_status(
        self, alert_id: int, from_statuses: Sequence[str], to_status: str, at: datetime
    ) -> str | None:
        """Move the alert to ``to_status`` if it is in ``from_statuses``; answers the previous status or None."""
        previous = select(Alert.status).where(Alert.id == alert_id).scalar_subquery()
        values: dict[str, Any] = {"status": to_status}
        if to_status == "acknowledged":
            values["acknowledged_at"] = at
        elif to_status == "resolved":
            values["resolved_at"] = at
        row = (
            await self._session.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.status.in_(list(from_statuses)))
                .values(**values)
                .returning(previous)
                .execution_options(synchronize_session=False)
            )
        ).first()
        return None if row is None else str(row[0])

    async def add_event(
        self,
        alert_id: int,
        from_status: str | None,
        to_status: str,
        actor: str,
        comment: str | None = None,
        at: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "alert_id": alert_id,
            "from_status": from_status,
            "to_status": to_status,
            "actor": actor,
            "comment": comment,
        }
        if at is not None:
            values["at"] = at
        await self._session.execute(insert(AlertEvent).values(**values))

    async def events(self, alert_id: int) -> Sequence[AlertEvent]:
        return (
            await self._session.scalars(
                select(AlertEvent)
                .where(AlertEvent.alert_id == alert_id)
                .order_by(AlertEvent.at, AlertEvent.id)
            )
        ).all()

    async def linked_anomalies(self, alert_id: int) -> Sequence[Anomaly]:
        return (
            await self._session.scalars(
                select(Anomaly)
                .join(AlertObservation, AlertObservation.anomaly_id == Anomaly.id)
                .where(AlertObservation.alert_id == alert_id)
                .order_by(Anomaly.timestamp, Anomaly.id)
            )
        ).all()


__all__ = [
    "ACTIVE_TASK_STATUSES",
    "AlertingRepository",
    "AnomalyPoint",
    "Observation",
    "Point",
    "ReadingFilter",
    "SensorInfo",
]
