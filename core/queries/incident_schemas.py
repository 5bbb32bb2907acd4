"""Schemas of the incidents API (one fault of one asset: its alerts, its work order, its timeline) and of the
healthy references of sensors."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from core.maintenance.schemas import MaintenanceTaskRead
from core.queries.schemas import AlertRead

_INCIDENT_EXAMPLE: JsonDict = {
    "id": 5,
    "asset_id": 3,
    "sensor_id": None,
    "status": "open",
    "severity": "critical",
    "first_seen_at": "2026-11-26T07:58:40Z",
    "last_seen_at": "2026-11-26T08:20:00Z",
    "peak_score": 11.2,
    "alert_count": 3,
    "opened_at": "2026-11-26T07:58:41Z",
    "resolved_at": None,
    "closed_at": None,
}


class IncidentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_INCIDENT_EXAMPLE]})

    id: int
    asset_id: int | None
    sensor_id: str | None = Field(description="Set only for a sensor without an asset.")
    status: Literal["open", "resolved", "closed"]
    severity: str = Field(description="Peak severity of its alerts.")
    first_seen_at: datetime = Field(description="Event time of its first evidence.")
    last_seen_at: datetime = Field(description="Event time of its latest evidence.")
    peak_score: float | None
    alert_count: int
    opened_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None


class IncidentEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    at: datetime
    event_at: datetime | None
    alert_id: int | None
    task_id: int | None
    note: str | None


class IncidentDetail(IncidentRead):
    alerts: list[AlertRead]
    work_orders: list[MaintenanceTaskRead]
    timeline: list[IncidentEventRead] = Field(description="Oldest first.")


class SensorReferenceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sensor_id: str
    kind: Literal["initial", "regime_change", "repair"]
    started_at: datetime = Field(description="Event time of the first reading it learns from.")
    reason: str
    status: Literal["learning", "ready", "superseded"]
    ready_at: datetime | None = Field(description="Event time of the last reading it was learned from.")
    readings: int | None
    median: float | None
    scale: float | None = Field(description="Robust standard deviation (1.4826·MAD, at least the type's floors).")
    longest_run: int | None = Field(description="Longest run of equal consecutive readings while learning.")
    previous_median: float | None = Field(description="The level before a regime change or a repair.")
    created_at: datetime


class SensorReferenceList(BaseModel):
    items: list[SensorReferenceRead] = Field(description="Newest first; the first is the current one.")


__all__ = [
    "IncidentDetail",
    "IncidentEventRead",
    "IncidentRead",
    "SensorReferenceList",
    "SensorReferenceRead",
]
