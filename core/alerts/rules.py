"""Alert rules on the API's side: list, read, create, update (scope and params validated), delete.

Services flush, never commit; SQL lives in ``core.alerts.repository``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.repository import AlertingRepository
from core.alerts.rule_models import AlertRule
from core.alerts.schemas import AlertRuleCreate, AlertRuleUpdate, validate_params
from core.errors import Conflict, NotFound, ValidationFailed


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
            "window_readings",
            "resolve_after_m",
            "min_hold_minutes",
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
        k = changes.get("open_after_k", rule.open_after_k)
        if changes.get("window_readings", rule.window_readings) < k:
            raise ValidationFailed(
                "window_readings must be at least open_after_k",
                extra={
                    "errors": [
                        {"loc": ["body", "window_readings"], "msg": "smaller than open_after_k", "type": "value_error"}
                    ]
                },
            )
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


__all__ = ["AlertRuleService"]
