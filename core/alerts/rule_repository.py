"""Alert rules: CRUD and which enabled rules apply to which sensors (SQL only here; part of
``AlertingRepository``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Text, and_, any_, bindparam, case, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.rule_models import AlertRule
from core.anomaly.reference_models import SensorReference
from core.fleet.models import Sensor

_RULES_FOR_SENSORS_SQL = text(
    """
    SELECT r.id, s.sensor_id
    FROM alert_rules r
    JOIN sensors s ON (r.sensor_id = s.sensor_id)
                   OR (r.sensor_id IS NULL AND r.sensor_type = s.type)
                   OR (r.sensor_id IS NULL AND r.sensor_type IS NULL)
    WHERE s.sensor_id = ANY(CAST(:ids AS text[])) AND r.enabled AND r.kind = ANY(CAST(:kinds AS text[]))
    ORDER BY r.id, s.sensor_id
    """
)


#: The newest ready healthy reference's longest run of equal readings, for a flat-line rule's sensor (NULL: none).
_LONGEST_RUN = (
    select(SensorReference.longest_run)
    .where(SensorReference.sensor_id == Sensor.sensor_id, SensorReference.status == "ready")
    .order_by(SensorReference.started_at.desc())
    .limit(1)
    .correlate(Sensor)
    .scalar_subquery()
)

#: Every enabled rule of some kinds with each of some sensors it applies to (the join of
#: :data:`_RULES_FOR_SENSORS_SQL`), the sensor's columns and, for a flat-line rule, its reference's longest run:
#: what an evaluation needs to know before it reads any reading, in one statement built once (array parameters:
#: one prepared statement whatever the number of sensors).
_JUDGING = (
    select(
        AlertRule,
        Sensor.sensor_id,
        Sensor.asset_id,
        Sensor.type,
        Sensor.created_at,
        Sensor.unit,
        case((AlertRule.kind == "flatline", _LONGEST_RUN)),
    )
    .join(
        Sensor,
        or_(
            AlertRule.sensor_id == Sensor.sensor_id,
            and_(AlertRule.sensor_id.is_(None), AlertRule.sensor_type == Sensor.type),
            and_(AlertRule.sensor_id.is_(None), AlertRule.sensor_type.is_(None)),
        ),
    )
    .where(
        Sensor.sensor_id == any_(bindparam("ids", type_=ARRAY(Text))),
        AlertRule.enabled,
        AlertRule.kind == any_(bindparam("kinds", type_=ARRAY(Text))),
    )
    .order_by(AlertRule.id, Sensor.sensor_id)
)


class JudgingRow(NamedTuple):
    """A rule and one sensor it applies to (``AlertRulesQueries.judging``)."""

    rule: AlertRule
    sensor_id: str
    asset_id: int | None
    type: str
    created_at: datetime
    unit: str | None
    #: Flat-line rules: the longest run of equal readings of the sensor's ready reference (None: none, or another
    #: kind of rule).
    longest_run: int | None


class AlertRulesQueries:
    _session: AsyncSession

    # --- rules ------------------------------------------------------------------------------------------------
    async def list_rules(
        self, *, limit: int, offset: int, kind: str | None = None, enabled: bool | None = None
    ) -> tuple[Sequence[AlertRule], int]:
        query = select(AlertRule)
        if kind is not None:
            query = query.where(AlertRule.kind == kind)
        if enabled is not None:
            query = query.where(AlertRule.enabled.is_(enabled))
        total = await self._session.scalar(select(func.count()).select_from(query.subquery()))
        rows = (await self._session.scalars(query.order_by(AlertRule.id).limit(limit).offset(offset))).all()
        return rows, int(total or 0)

    async def get_rule(self, rule_id: int) -> AlertRule | None:
        return await self._session.get(AlertRule, rule_id)

    async def rule_by_name(self, name: str) -> AlertRule | None:
        return await self._session.scalar(select(AlertRule).where(AlertRule.name == name))

    async def add_rule(self, **values: Any) -> AlertRule:
        rule = AlertRule(**values)
        self._session.add(rule)
        await self._session.flush()
        await self._session.refresh(rule)
        return rule

    async def delete_rule(self, rule: AlertRule) -> None:
        await self._session.execute(delete(AlertRule).where(AlertRule.id == rule.id))
        await self._session.flush()

    async def sensor_exists(self, sensor_id: str) -> bool:
        return (await self._session.get(Sensor, sensor_id)) is not None

    async def rules_for_sensors(
        self, sensor_ids: Sequence[str], kinds: Sequence[str]
    ) -> list[tuple[AlertRule, str]]:
        """Every enabled rule of ``kinds`` that applies to each sensor: [(rule, sensor_id)]."""
        if not sensor_ids:
            return []
        pairs = (
            await self._session.execute(
                _RULES_FOR_SENSORS_SQL, {"ids": list(sensor_ids), "kinds": list(kinds)}
            )
        ).all()
        if not pairs:
            return []
        rule_ids = {p[0] for p in pairs}
        rules = {
            r.id: r
            for r in (await self._session.scalars(select(AlertRule).where(AlertRule.id.in_(rule_ids))))
        }
        return [(rules[rule_id], sensor_id) for rule_id, sensor_id in pairs]

    async def judging(self, sensor_ids: Sequence[str], kinds: Sequence[str]) -> list[JudgingRow]:
        """Every enabled rule of ``kinds`` that applies to each of ``sensor_ids``, by rule then sensor, with the
        sensor's columns and (flat-line rules) its ready reference's longest run: one statement."""
        if not sensor_ids:
            return []
        rows = await self._session.execute(_JUDGING, {"ids": list(sensor_ids), "kinds": list(kinds)})
        return [JudgingRow(*row) for row in rows]


__all__ = ["AlertRulesQueries", "JudgingRow"]
