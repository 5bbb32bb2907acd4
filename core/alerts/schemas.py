"""Schemas of the alerting API: rules (create/update/read/page, params validated per kind) and alert details."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Severity = Literal["info", "low", "medium", "high", "critical"]
RuleKind = Literal["anomaly_score", "threshold", "rate_of_change", "no_data"]


# --- params per kind ------------------------------------------------------------------------------------------
class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnomalyScoreParams(_Params):
    min_score: float = Field(
        ge=0, description="An anomaly matches when its score is at least this (0: every anomaly)."
    )


class ThresholdParams(_Params):
    min: float | None = Field(default=None, description="A reading below this matches.")
    max: float | None = Field(default=None, description="A reading above this matches.")

    @model_validator(mode="after")
    def _bounds(self) -> ThresholdParams:
        if self.min is None and self.max is None:
            raise ValueError("a threshold rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be lower than max")
        return self


class RateOfChangeParams(_Params):
    max_rate_per_min: float = Field(
        gt=0, description="Absolute change per minute between consecutive readings."
    )


class NoDataParams(_Params):
    no_data_minutes: float = Field(gt=0, le=7 * 24 * 60, description="Minutes without a reading.")


PARAMS_BY_KIND: dict[str, type[_Params]] = {
    "anomaly_score": AnomalyScoreParams,
    "threshold": ThresholdParams,
    "rate_of_change": RateOfChangeParams,
    "no_data": NoDataParams,
}


def validate_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params of ``kind``, normalised (raises ``pydantic.ValidationError`` / ``ValueError``)."""
    return PARAMS_BY_KIND[kind].model_validate(params).model_dump(exclude_none=True)


def _check_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_params(kind, params)
    except ValidationError as exc:
        messages = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid params for kind {kind!r}: {messages}") from None


# --- rules ----------------------------------------------------------------------------------------------------
_RULE_EXAMPLE = {
    "name": "bearing-vibration-high",
    "kind": "threshold",
    "sensor_type": "vibration",
    "params": {"max": 7.1},
    "severity": "critical",
    "open_after_k": 3,
    "window_minutes": 5,
    "resolve_after_m": 5,
    "enabled": True,
}


class AlertRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_RULE_EXAMPLE]})

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    kind: RuleKind
    sensor_type: str | None = Field(default=None, min_length=1, max_length=100)
    sensor_id: str | None = Field(default=None, min_length=1, max_length=200)
    params: dict[str, Any] = Field(
        description=(
            "anomaly_score: {min_score}; threshold: {min, max} (one or both); rate_of_change: "
            "{max_rate_per_min}; no_data: {no_data_minutes}"
        )
    )
    severity: Severity = "medium"
    open_after_k: int = Field(default=1, ge=1, le=10_000)
    window_minutes: int = Field(default=10, ge=1, le=7 * 24 * 60)
    resolve_after_m: int = Field(default=3, ge=1, le=10_000)
    enabled: bool = True

    @model_validator(mode="after")
    def _valid(self) -> AlertRuleCreate:
        if self.sensor_type is not None and self.sensor_id is not None:
            raise ValueError("set sensor_type or sensor_id, not both (neither: every sensor)")
        self.params = _check_params(self.kind, self.params)
        return self


class AlertRuleUpdate(BaseModel):
    """Fields to change; ``params`` is validated against the rule's kind (the kind cannot change)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"params": {"max": 8.0}, "severity": "high", "enabled": False}]},
    )

    name: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
    )
    sensor_type: str | None = Field(default=None, min_length=1, max_length=100)
    sensor_id: str | None = Field(default=None, min_length=1, max_length=200)
    params: dict[str, Any] | None = None
    severity: Severity | None = None
    open_after_k: int | None = Field(default=None, ge=1, le=10_000)
    window_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    resolve_after_m: int | None = Field(default=None, ge=1, le=10_000)
    enabled: bool | None = None


class AlertRuleRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [{**_RULE_EXAMPLE, "id": 3, "sensor_id": None, "created_at": "2026-11-26T08:00:00Z"}]
        },
    )

    id: int
    name: str
    kind: RuleKind
    sensor_type: str | None
    sensor_id: str | None
    params: dict[str, Any]
    severity: Severity
    open_after_k: int
    window_minutes: int
    resolve_after_m: int
    enabled: bool
    created_at: datetime


class AlertRulePage(BaseModel):
    items: list[AlertRuleRead]
    total: int
    limit: int
    offset: int


# --- alerts ---------------------------------------------------------------------------------------------------
class AlertTransition(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"comment": "Technician informed, checking bearing."}]},
    )

    comment: str | None = Field(default=None, max_length=2000)


class AlertEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    from_status: str | None
    to_status: str
    at: datetime
    actor: str
    comment: str | None


class LinkedAnomaly(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    timestamp: datetime
    value: float
    score: float
    method: str
    model_name: str | None
    model_version: str | None


class AlertDetail(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "sensor_id": "sensor-004",
                    "rule": "vibration-iso10816-zone-d",
                    "severity": "critical",
                    "status": "acknowledged",
                    "opened_at": "2026-11-26T08:00:00Z",
                    "acknowledged_at": "2026-11-26T08:05:00Z",
                    "resolved_at": None,
                    "anomaly_count": 3,
                    "events": [
                        {
                            "id": 1,
                            "from_status": None,
                            "to_status": "open",
                            "at": "2026-11-26T08:00:00Z",
                            "actor": "alerting",
                            "comment": "3 matching readings within 5 min",
                        },
                        {
                            "id": 2,
                            "from_status": "open",
                            "to_status": "acknowledged",
                            "at": "2026-11-26T08:05:00Z",
                            "actor": "ops-console",
                            "comment": "on it",
                        },
                    ],
                    "anomalies": [],
                }
            ]
        },
    )

    id: int
    sensor_id: str
    rule: str
    severity: Severity
    status: Literal["open", "acknowledged", "resolved"]
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    anomaly_count: int
    events: list[AlertEventRead]
    anomalies: list[LinkedAnomaly]


__all__ = [
    "PARAMS_BY_KIND",
    "AlertDetail",
    "AlertEventRead",
    "AlertRuleCreate",
    "AlertRulePage",
    "AlertRuleRead",
    "AlertRuleUpdate",
    "AlertTransition",
    "LinkedAnomaly",
    "RuleKind",
    "Severity",
    "validate_params",
]
