"""Schemas of the alerting API: rules (create/update/read/page, params validated per kind) and alert details."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.config import JsonDict

from core.schemas_common import NO_CONTROL, NO_NUL, Bool, Number, SensorId
from core.units import hint, is_known, normalize

Severity = Literal["info", "low", "medium", "high", "critical"]
RuleKind = Literal["anomaly_score", "threshold", "rate_of_change", "flatline", "no_data"]
#: Detector methods of the anomaly agent (``anomalies.method``).
DETECTOR_METHODS = ("robust_z", "model", "trend_ewma")


# --- params per kind ------------------------------------------------------------------------------------------
class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnomalyScoreParams(_Params):
    min_score: Number = Field(
        ge=0, description="An anomaly matches when its score is at least this (0: every anomaly)."
    )
    methods: list[Literal["robust_z", "model", "trend_ewma"]] | None = Field(
        default=None,
        min_length=1,
        description="Detector methods whose anomalies count (robust_z: outliers of the statistical baseline; "
        "model: the type's champion model; trend_ewma: degradation against the healthy reference). "
        "Absent: every method.",
    )


class ThresholdParams(_Params):
    min: Number | None = Field(default=None, description="A reading below this matches.")
    max: Number | None = Field(default=None, description="A reading above this matches.")

    @model_validator(mode="after")
    def _bounds(self) -> ThresholdParams:
        if self.min is None and self.max is None:
            raise ValueError("a threshold rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be lower than max")
        return self


class RateOfChangeParams(_Params):
    max_rate_per_min: Number = Field(
        gt=0, description="Absolute change per minute between consecutive readings."
    )


class FlatlineParams(_Params):
    tolerance: Number = Field(
        default=0.0,
        ge=0,
        description="A reading matches when it differs from the previous one by at most this (0: equal values). "
        "The rule opens after `open_after_k` such readings among the last `window_readings`, and at least three "
        "times the longest flat run the sensor showed while its healthy reference was learned.",
    )


class NoDataParams(_Params):
    no_data_minutes: Number | None = Field(
        default=None,
        gt=0,
        le=7 * 24 * 60,
        description="Minutes without a reading. Absent: `interval_multiple` × the sensor's median interval "
        "(at least `min_minutes`).",
    )
    interval_multiple: Number = Field(default=10.0, gt=1, le=10_000)
    min_minutes: Number = Field(default=2.0, gt=0, le=7 * 24 * 60)


PARAMS_BY_KIND: dict[str, type[_Params]] = {
    "anomaly_score": AnomalyScoreParams,
    "threshold": ThresholdParams,
    "rate_of_change": RateOfChangeParams,
    "flatline": FlatlineParams,
    "no_data": NoDataParams,
}


def check_unit(unit: str | None) -> str | None:
    """A rule's unit in the platform's spelling (``core.units``); unknown units are refused."""
    if unit is None:
        return None
    normal = normalize(unit)
    if normal and not is_known(normal):
        extra = hint(normal)
        raise ValueError(f"unit {unit!r} is not a unit the platform knows" + (f" ({extra})" if extra else ""))
    return normal


def validate_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params of ``kind``, normalised. Raises ``ValueError`` naming each bad field and what is wrong with it,
    never the values sent nor a documentation URL (the message reaches the client)."""
    try:
        return PARAMS_BY_KIND[kind].model_validate(params).model_dump(exclude_none=True)
    except ValidationError as exc:
        messages = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        raise ValueError(f"invalid params for kind {kind!r}: {messages}") from None


def _check_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    return validate_params(kind, params)


# --- rules ----------------------------------------------------------------------------------------------------
_RULE_EXAMPLE: JsonDict = {
    "name": "bearing-vibration-high",
    "kind": "threshold",
    "sensor_type": "vibration",
    "params": {"max": 7.1},
    "unit": "mm/s",
    "severity": "critical",
    "open_after_k": 3,
    "window_readings": 20,
    "max_age_minutes": None,
    "resolve_after_m": 10,
    "min_hold_minutes": 30,
    "enabled": True,
}
_HYSTERESIS = (
    "Hysteresis is counted in readings and evaluated in event time (the readings' timestamps): an alert opens when "
    "`open_after_k` of the sensor's last `window_readings` readings match (a match older than `max_age_minutes` "
    "before the reading does not count, when set) and resolves after `resolve_after_m` consecutive normal readings "
    "once `min_hold_minutes` have passed since it opened."
)


class AlertRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_RULE_EXAMPLE]})

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    kind: RuleKind
    sensor_type: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_CONTROL)
    sensor_id: SensorId | None = None
    params: dict[str, Any] = Field(
        max_length=20,
        description=(
            "anomaly_score: {min_score, methods?}; threshold: {min, max} (one or both); rate_of_change: "
            "{max_rate_per_min}; flatline: {tolerance}; no_data: {no_data_minutes} or {interval_multiple, "
            "min_minutes}"
        )
    )
    unit: str | None = Field(
        default=None,
        max_length=32,
        pattern=NO_NUL,
        description="Unit of a threshold or rate rule's bounds; the rule judges only sensors whose unit converts "
        "to it (bounds converted to the sensor's unit). Absent: the bounds are in each sensor's own unit.",
    )
    severity: Severity = "medium"
    open_after_k: int = Field(default=1, ge=1, le=10_000, description=_HYSTERESIS)
    window_readings: int = Field(default=20, ge=1, le=10_000)
    max_age_minutes: Number | None = Field(default=None, gt=0, le=366 * 24 * 60)
    resolve_after_m: int = Field(default=3, ge=1, le=10_000)
    min_hold_minutes: Number = Field(default=0.0, ge=0, le=366 * 24 * 60)
    enabled: Bool = True

    @model_validator(mode="after")
    def _valid(self) -> AlertRuleCreate:
        if self.sensor_type is not None and self.sensor_id is not None:
            raise ValueError("set sensor_type or sensor_id, not both (neither: every sensor)")
        if self.window_readings < self.open_after_k:
            raise ValueError("window_readings must be at least open_after_k")
        self.unit = check_unit(self.unit)
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
    sensor_type: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_CONTROL)
    sensor_id: SensorId | None = None
    params: dict[str, Any] | None = Field(default=None, max_length=20)
    unit: str | None = Field(default=None, max_length=32, pattern=NO_NUL)
    severity: Severity | None = None
    open_after_k: int | None = Field(default=None, ge=1, le=10_000)
    window_readings: int | None = Field(default=None, ge=1, le=10_000)
    max_age_minutes: Number | None = Field(default=None, gt=0, le=366 * 24 * 60)
    resolve_after_m: int | None = Field(default=None, ge=1, le=10_000)
    min_hold_minutes: Number | None = Field(default=None, ge=0, le=366 * 24 * 60)
    enabled: Bool | None = None

    @model_validator(mode="after")
    def _unit(self) -> AlertRuleUpdate:
        self.unit = check_unit(self.unit)
        return self


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
    unit: str | None
    severity: Severity
    open_after_k: int
    window_readings: int
    max_age_minutes: float | None
    resolve_after_m: int
    min_hold_minutes: float
    enabled: bool
    created_at: datetime


# --- alerts ---------------------------------------------------------------------------------------------------
class AlertTransition(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"comment": "Technician informed, checking bearing."}]},
    )

    comment: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)


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
                            "comment": "3 of the last 20 readings match",
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
    incident_id: int | None
    event_opened_at: datetime
    last_seen_at: datetime | None
    event_resolved_at: datetime | None
    peak_score: float | None
    events: list[AlertEventRead]
    anomalies: list[LinkedAnomaly]


__all__ = [
    "DETECTOR_METHODS",
    "PARAMS_BY_KIND",
    "AlertDetail",
    "AlertEventRead",
    "AlertRuleCreate",
    "AlertRuleRead",
    "AlertRuleUpdate",
    "AlertTransition",
    "LinkedAnomaly",
    "RuleKind",
    "Severity",
    "validate_params",
]
