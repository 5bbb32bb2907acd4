"""API schemas of maintenance tasks, completions and labels (separate from the ORM models)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from core.schemas_common import NO_CONTROL, NO_NUL, AssetId, BigId, SensorId, Timestamp

TaskStatus = Literal["open", "in_progress", "done", "cancelled"]
TaskPriority = Literal["low", "medium", "high", "critical"]
#: What the technician found when completing a task (the training label).
MaintenanceOutcome = Literal["fault_confirmed", "no_fault_found"]
TaskSort = Literal["created_at", "due_at", "priority", "status", "id"]

Title = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=NO_NUL)]
Description = Annotated[str, StringConstraints(max_length=10_000, pattern=NO_NUL)]
Person = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_CONTROL)]

_TASK_EXAMPLE: JsonDict = {
    "id": 17,
    "asset_id": 3,
    "sensor_id": "pump-7-vib",
    "alert_id": 42,
    "title": "Alert 'vibration_max' (critical) on sensor pump-7-vib",
    "description": "Opened by the scheduling agent for alert 42.",
    "priority": "critical",
    "status": "open",
    "due_at": "2026-11-26T12:00:00Z",
    "assignee": None,
    "created_at": "2026-11-26T08:00:00Z",
    "incident_id": 5,
    "event_opened_at": "2026-11-26T08:00:00Z",
    "evidence": {
        "sensors": ["pump-7-vib", "pump-7-temp"],
        "rules": ["vibration-iso10816-zone-d", "anomaly-score"],
        "alert_ids": [42, 43],
        "first_seen_at": "2026-11-26T07:58:40Z",
        "last_seen_at": "2026-11-26T08:20:00Z",
        "peak_score": 11.2,
        "severity": "critical",
    },
}


class MaintenanceTaskCreate(BaseModel):
    """A work order opened by hand. ``asset_id`` defaults to the sensor's asset."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "pump-7-vib",
                    "title": "Inspect pump 7 bearings",
                    "priority": "high",
                    "due_at": "2026-11-27T08:00:00Z",
                    "assignee": "j.doe",
                }
            ]
        },
    )

    title: Title
    description: Description | None = None
    asset_id: AssetId | None = None
    sensor_id: SensorId | None = None
    alert_id: BigId | None = Field(default=None, description="At most one task per alert (409 otherwise).")
    priority: TaskPriority = "medium"
    due_at: Timestamp | None = None
    assignee: Person | None = None


class MaintenanceTaskUpdate(BaseModel):
    """Fields to change. Status transitions: open → in_progress | cancelled, in_progress → open | cancelled;
    ``done`` is reached only through ``POST …/complete`` (which records the outcome)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "in_progress"}, {"priority": "critical"}]}
    )

    # status, priority and title are NOT NULL columns: they may be left out but not set to null (422).
    status: TaskStatus | SkipJsonSchema[None] = None
    priority: TaskPriority | SkipJsonSchema[None] = None
    title: Title | SkipJsonSchema[None] = None
    description: Description | None = None
    due_at: Timestamp | None = None
    assignee: Person | None = None

    @field_validator("status", "priority", "title")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class MaintenanceTaskAssign(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"assignee": "j.doe"}]})

    assignee: Person = Field(description="Technician (or team) responsible.")


class TaskEvidence(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sensors: list[str]
    rules: list[str]
    alert_ids: list[int]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    peak_score: float | None
    severity: str | None


class MaintenanceTaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_TASK_EXAMPLE]})

    id: int
    asset_id: int | None
    sensor_id: str | None
    alert_id: int | None
    title: str
    description: str | None
    priority: TaskPriority
    status: TaskStatus
    due_at: datetime | None
    assignee: str | None
    created_at: datetime
    incident_id: int | None = Field(default=None, description="The incident (one fault of the asset) it handles.")
    event_opened_at: datetime | None = Field(
        default=None, description="Event time of the evidence that opened it; `due_at` counts from it."
    )
    evidence: TaskEvidence | None = Field(
        default=None, description="What the work order rests on: every alert of its incident, attached ones too."
    )


class MaintenanceCompletionCreate(BaseModel):
    """What the technician found; the outcome becomes a training label."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "outcome": "fault_confirmed",
                    "technician": "j.doe",
                    "notes": "Outer race spalling, replaced.",
                }
            ]
        },
    )

    outcome: MaintenanceOutcome
    technician: Person
    notes: Description | None = None


_LOG_EXAMPLE: JsonDict = {
    "id": 5,
    "task_id": 17,
    "completed_at": "2026-11-26T10:30:00Z",
    "outcome": "fault_confirmed",
    "technician": "j.doe",
    "notes": "Outer race spalling, replaced.",
}


class MaintenanceLogRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_LOG_EXAMPLE]})

    id: int
    task_id: int
    completed_at: datetime
    outcome: MaintenanceOutcome
    technician: str | None
    notes: str | None


class MaintenanceCompletionRead(BaseModel):
    """The closed task, its log row and whether the linked alert was resolved by this completion."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task": {**_TASK_EXAMPLE, "status": "done"},
                    "log": _LOG_EXAMPLE,
                    "alert_resolved": True,
                }
            ]
        }
    )

    task: MaintenanceTaskRead
    log: MaintenanceLogRead
    alert_resolved: bool = Field(
        description="True when the linked alert was resolved now (false: none or already)."
    )


_LABEL_EXAMPLE: JsonDict = {
    "task_id": 17,
    "log_id": 5,
    "sensor_id": "pump-7-vib",
    "asset_id": 3,
    "alert_id": 42,
    "rule": "vibration_max",
    "severity": "critical",
    "alert_opened_at": "2026-11-26T08:00:00Z",
    "alert_resolved_at": "2026-11-26T10:30:00Z",
    "anomaly_count": 6,
    "first_anomaly_at": "2026-11-26T07:58:10Z",
    "last_anomaly_at": "2026-11-26T08:20:00Z",
    "outcome": "fault_confirmed",
    "technician": "j.doe",
    "notes": "Outer race spalling, replaced.",
    "completed_at": "2026-11-26T10:30:00Z",
}


class LabelRead(BaseModel):
    """One completed task as a label: where, which alert window, which anomalies, and what was found.

    Anomalies are those linked to the task's alert (the observations the alert counted that were anomalies)."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_LABEL_EXAMPLE]})

    task_id: int
    log_id: int
    sensor_id: str | None
    asset_id: int | None
    alert_id: int | None
    rule: str | None
    severity: str | None
    alert_opened_at: datetime | None
    alert_resolved_at: datetime | None
    anomaly_count: int
    first_anomaly_at: datetime | None
    last_anomaly_at: datetime | None
    outcome: MaintenanceOutcome
    technician: str | None
    notes: str | None
    completed_at: datetime


#: Column order of the CSV export (``python -m apps.cli export-labels``).
LABEL_CSV_COLUMNS: tuple[str, ...] = tuple(LabelRead.model_fields)

__all__ = [
    "LABEL_CSV_COLUMNS",
    "LabelRead",
    "MaintenanceCompletionCreate",
    "MaintenanceCompletionRead",
    "MaintenanceLogRead",
    "MaintenanceOutcome",
    "MaintenanceTaskAssign",
    "MaintenanceTaskCreate",
    "MaintenanceTaskRead",
    "MaintenanceTaskUpdate",
    "TaskEvidence",
    "TaskPriority",
    "TaskSort",
    "TaskStatus",
]
