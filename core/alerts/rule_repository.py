"""Alert rules: CRUD and which enabled rules apply to which sensors (SQL only here; part of
``AlertingRepository``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.rule_models import AlertRule
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


__all__ = ["AlertRulesQueries"]
