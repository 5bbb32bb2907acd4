"""Alerting: alerts of the alerting agent, their history and observations, the readings they are evaluated on
(SQL only here). Rule queries live in ``alerting_rules``, suppression queries in ``alerting_suppression``;
``AlertingRepository`` has them all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, any_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.models import ALERT_UNRESOLVED_STATUSES, Alert
from core.alerts.rule_models import AlertEvent, AlertObservation
from core.alerts.rule_repository import AlertRulesQueries
from core.alerts.suppression_repository import SuppressionQueries
from core.alerts.window_repository import READINGS_LOOKBACK_WINDOWS, Point, ReadingsWindowQueries
from core.anomaly.models import Anomaly
from core.fleet.models import Sensor


@dataclass(frozen=True, slots=True)
class AnomalyPoint:
    id: int
    timestamp: datetime
    value: float
    score: float
    method: str = ""


@dataclass(frozen=True, slots=True)
class SensorInfo:
    sensor_id: str
    asset_id: int | None
    type: str
    created_at: datetime
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    observed_at: datetime
    value: float | None
    anomaly_id: int | None = None


_LOCK_ALERT_KEYS_SQL = text(
    "SELECT pg_advisory_xact_lock(k) FROM ("
    "SELECT DISTINCT hashtextextended('alert:' || key, 0) AS k "
    "FROM unnest(CAST(:keys AS text[])) AS key ORDER BY k) AS ordered"
)

#: Per sensor: its latest reading (event time and when it was stored) and its cadence, the median interval of
#: its last 11 readings (NULL with fewer than 3).
_SILENCE_SQL = text(
    """
    SELECT s.sensor_id, last.timestamp, last.ingested_at,
           (SELECT CASE WHEN count(d) >= 2 THEN percentile_cont(0.5) WITHIN GROUP (ORDER BY d) END
            FROM (SELECT extract(epoch FROM r.timestamp - lag(r.timestamp) OVER (ORDER BY r.timestamp)) AS d
                  FROM (SELECT x.timestamp FROM sensor_readings x WHERE x.sensor_id = s.sensor_id
                        ORDER BY x.timestamp DESC LIMIT 11) r) intervals
            WHERE d IS NOT NULL) AS cadence_s
    FROM unnest(CAST(:ids AS text[])) AS s(sensor_id)
    LEFT JOIN LATERAL (
        SELECT x.timestamp, x.ingested_at FROM sensor_readings x WHERE x.sensor_id = s.sensor_id
        ORDER BY x.timestamp DESC LIMIT 1
    ) last ON true
    """
)


# The statements of an evaluation, built once with array parameters: one prepared statement each whatever the
# number of sensors (an expanding IN list is a new statement text, and a new PREPARE, per list length).
_UNRESOLVED = select(Alert).where(
    Alert.sensor_id == any_(bindparam("ids", type_=ARRAY(Text))),
    Alert.rule == any_(bindparam("rules", type_=ARRAY(Text))),
    Alert.status == any_(bindparam("statuses", type_=ARRAY(Text))),
)
_LAST_OBSERVED_SQL = text(
    "SELECT alert_id, max(observed_at) FROM alert_observations "
    "WHERE alert_id = ANY(CAST(:ids AS bigint[])) GROUP BY alert_id"
)
_OBSERVED_SQL = text(
    """
    SELECT a.sensor_id, a.rule, o.observed_at
    FROM alerts a JOIN alert_observations o ON o.alert_id = a.id
    WHERE a.sensor_id = ANY(CAST(:ids AS text[])) AND a.rule = ANY(CAST(:rules AS text[]))
      AND o.observed_at >= :since
    """
)
_ANOMALIES_SQL = text(
    """
    SELECT sensor_id, id, timestamp, value, score, method FROM anomalies
    WHERE sensor_id = ANY(CAST(:ids AS text[])) AND timestamp >= :since AND timestamp <= :until
    ORDER BY sensor_id, timestamp, id
    """
)


@dataclass(frozen=True, slots=True)
class Silence:
    """What the no-data check needs of a sensor."""

    last_at: datetime | None
    ingested_at: datetime | None
    cadence_s: float | None


class AlertingRepository(ReadingsWindowQueries, AlertRulesQueries, SuppressionQueries):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- sensors ---------------------------------------------------------------------------------------------
    async def active_sensors(self) -> dict[str, SensorInfo]:
        rows = await self._session.execute(
            select(Sensor.sensor_id, Sensor.asset_id, Sensor.type, Sensor.created_at, Sensor.unit).where(
                Sensor.status == "active"
            )
        )
        return {r.sensor_id: SensorInfo(r.sensor_id, r.asset_id, r.type, r.created_at, r.unit) for r in rows}

    # --- observations -----------------------------------------------------------------------------------------
    async def anomalies(
        self, sensor_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, list[AnomalyPoint]]:
        """Anomalies per sensor in ``[since, until]`` (every method), oldest first."""
        out: dict[str, list[AnomalyPoint]] = {s: [] for s in sensor_ids}
        if not sensor_ids:
            return out
        rows = await self._session.execute(
            _ANOMALIES_SQL, {"ids": list(sensor_ids), "since": since, "until": until}
        )
        for sensor_id, id_, timestamp, value, score, method in rows:
            out[sensor_id].append(AnomalyPoint(id_, timestamp, value, score, method))
        return out

    async def silences(self, sensor_ids: Sequence[str]) -> dict[str, Silence]:
        if not sensor_ids:
            return {}
        rows = await self._session.execute(_SILENCE_SQL, {"ids": list(sensor_ids)})
        return {
            sensor_id: Silence(last_at, ingested_at, float(cadence) if cadence is not None else None)
            for sensor_id, last_at, ingested_at, cadence in rows
        }

    async def observed_timestamps(
        self, sensor_ids: Sequence[str], rules: Sequence[str], since: datetime
    ) -> dict[tuple[str, str], set[datetime]]:
        """Timestamps at or after ``since`` already counted by an alert (any status), per (sensor, rule)."""
        out: dict[tuple[str, str], set[datetime]] = {}
        if not sensor_ids or not rules:
            return out
        rows = await self._session.execute(
            _OBSERVED_SQL, {"ids": list(sensor_ids), "rules": list(rules), "since": since}
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
            _UNRESOLVED, {"ids": list(sensor_ids), "rules": list(rules), "statuses": list(ALERT_UNRESOLVED_STATUSES)}
        )
        return {(a.sensor_id, a.rule): a for a in rows}

    async def last_observed_at(self, alert_ids: Sequence[int]) -> dict[int, datetime]:
        if not alert_ids:
            return {}
        rows = await self._session.execute(_LAST_OBSERVED_SQL, {"ids": list(alert_ids)})
        return dict(rows.all())

    async def upsert_unresolved(
        self, sensor_id: str, rule: str, severity: str, event_opened_at: datetime
    ) -> tuple[int, bool, int | None]:
        """Open an alert for (sensor, rule) at event time ``event_opened_at``, or count one more on the
        unresolved one: (id, opened, its incident; None for a new alert)."""
        statement = (
            pg_insert(Alert)
            .values(
                sensor_id=sensor_id,
                rule=rule,
                severity=severity,
                status="open",
                anomaly_count=0,
                event_opened_at=event_opened_at,
                last_seen_at=event_opened_at,
            )
            .on_conflict_do_update(
                index_elements=[Alert.sensor_id, Alert.rule],
                # a literal predicate: with a bound one, PostgreSQL cannot infer the partial unique index once
                # asyncpg's prepared statement switches to a generic plan (after five executions)
                index_where=text("status IN ('open', 'acknowledged')"),
                set_={"anomaly_count": Alert.anomaly_count + 1},
            )
            .returning(Alert.id, text("(xmax = 0) AS inserted"), Alert.incident_id)
        )
        row = (await self._session.execute(statement)).one()
        return int(row[0]), bool(row[1]), row[2]

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
        counted = (
            select(
                func.count().label("n"),
                func.max(AlertObservation.observed_at).label("last"),
                func.max(Anomaly.score).label("peak"),
            )
            .select_from(AlertObservation)
            .outerjoin(Anomaly, Anomaly.id == AlertObservation.anomaly_id)
            .where(AlertObservation.alert_id == alert_id)
            .subquery()
        )
        await self._session.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(
                anomaly_count=select(counted.c.n).scalar_subquery(),
                last_seen_at=func.coalesce(select(counted.c.last).scalar_subquery(), Alert.last_seen_at),
                peak_score=select(counted.c.peak).scalar_subquery(),
            )
            .execution_options(synchronize_session=False)
        )

    async def set_incident(self, alert_id: int, incident_id: int) -> None:
        """The alert joined ``incident_id`` (``core.incidents.service.IncidentService.attach``)."""
        await self._session.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(incident_id=incident_id)
            .execution_options(synchronize_session=False)
        )

    async def unresolved_in_incident(self, incident_id: int) -> list[int]:
        """Ids of the incident's alerts that are still open or acknowledged."""
        rows = await self._session.scalars(
            select(Alert.id).where(Alert.incident_id == incident_id, Alert.status.in_(ALERT_UNRESOLVED_STATUSES))
        )
        return list(rows)

    async def get_alert(self, alert_id: int, *, for_update: bool = False) -> Alert | None:
        query = select(Alert).where(Alert.id == alert_id)
        if for_update:
            query = query.with_for_update()
        return await self._session.scalar(query.execution_options(populate_existing=True))

    async def set_status(
        self,
        alert_id: int,
        from_statuses: Sequence[str],
        to_status: str,
        at: datetime,
        event_at: datetime | None = None,
    ) -> str | None:
        """Move the alert to ``to_status`` if it is in ``from_statuses``; answers the previous status or None.
        ``event_at``: the event time of a resolution (the reading that resolved it; default ``at``)."""
        previous = select(Alert.status).where(Alert.id == alert_id).scalar_subquery()
        values: dict[str, Any] = {"status": to_status}
        if to_status == "acknowledged":
            values["acknowledged_at"] = at
        elif to_status == "resolved":
            values["resolved_at"] = at
            values["event_resolved_at"] = event_at or at
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
    "READINGS_LOOKBACK_WINDOWS",
    "AlertingRepository",
    "AnomalyPoint",
    "Observation",
    "Point",
    "SensorInfo",
    "Silence",
]
