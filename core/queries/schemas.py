"""Schemas of the query API (separate from the ORM models); a list answers ``core.paging.Page`` of these items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from core.readings.buckets import Agg, Bucket, BucketSource

AssetSort = Literal["id", "-id", "name", "-name", "site", "-site", "created_at", "-created_at"]
SensorSort = Literal[
    "sensor_id",
    "-sensor_id",
    "type",
    "-type",
    "created_at",
    "-created_at",
    "last_reading_at",
    "-last_reading_at",
]
AnomalySort = Literal["-timestamp", "timestamp", "-score", "score"]
AlertSort = Literal["-opened_at", "opened_at", "-anomaly_count", "anomaly_count", "-id", "id"]


# --- assets -----------------------------------------------------------------------------------------------------
_ASSET_EXAMPLE: JsonDict = {
    "id": 3,
    "name": "pump-7",
    "site": "plant-a",
    "kind": "centrifugal_pump",
    "created_at": "2026-11-26T07:00:00Z",
}


@dataclass(frozen=True, slots=True)
class AssetFilter:
    """Which assets a list shows (None: any)."""

    site: str | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class SensorFilter:
    """Which sensors a list shows (None: any)."""

    type: str | None = None
    asset_id: int | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class AnomalyFilter:
    """Which anomalies a list shows (None: any); ``start <= timestamp < end``, ``score >= min_score``."""

    sensor_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    method: str | None = None
    min_score: float | None = None


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts a list shows (None: any)."""

    status: str | None = None
    severity: str | None = None
    sensor_id: str | None = None
    rule: str | None = None


class AssetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_ASSET_EXAMPLE]})

    id: int
    name: str
    site: str | None = None
    kind: str | None = None
    created_at: datetime


# --- sensors ----------------------------------------------------------------------------------------------------
_SENSOR_EXAMPLE: JsonDict = {
    "sensor_id": "pump-7-vib",
    "asset_id": 3,
    "type": "vibration",
    "unit": "mm/s",
    "location": "bearing DE",
    "status": "active",
    "created_at": "2026-11-26T07:00:00Z",
    "last_reading_at": "2026-11-26T07:59:58Z",
    "last_reading_value": 2.41,
}


class SensorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_SENSOR_EXAMPLE]})

    sensor_id: str
    asset_id: int | None = None
    type: str
    unit: str | None = None
    location: str | None = None
    status: str
    created_at: datetime
    last_reading_at: datetime | None = Field(None, description="Timestamp of the sensor's latest reading.")
    last_reading_value: float | None = Field(None, description="Value of the sensor's latest reading.")


# --- readings ---------------------------------------------------------------------------------------------------
class ReadingPoint(BaseModel):
    timestamp: datetime = Field(description="The reading's time, or the bucket's start.")
    value: float = Field(description="The reading's value, or the bucket's aggregate (`agg`).")
    count: int | None = Field(None, description="Readings in the bucket (bucketed series only).")
    quality: float | None = Field(None, description="The reading's quality (raw series only).")


class ReadingSeries(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "pump-7-vib",
                    "start": "2026-11-25T08:00:00Z",
                    "end": "2026-11-26T08:00:00Z",
                    "bucket": "1h",
                    "agg": "avg",
                    "source": "hourly_aggregate",
                    "limit": 10000,
                    "items": [
                        {"timestamp": "2026-11-25T08:00:00Z", "value": 2.37, "count": 3600, "quality": None}
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    sensor_id: str
    start: datetime
    end: datetime
    bucket: Bucket | None = Field(None, description="Bucket width; absent for raw readings.")
    agg: Agg | None = Field(None, description="Aggregate of each bucket; absent for raw readings.")
    source: Literal["raw"] | BucketSource = Field(
        description="`raw`, `hourly_aggregate` (continuous aggregate), `time_bucket` or `date_bin` (raw rows)."
    )
    limit: int
    items: list[ReadingPoint]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last.")


# --- anomalies and alerts ---------------------------------------------------------------------------------------
_ANOMALY_EXAMPLE: JsonDict = {
    "id": 41,
    "sensor_id": "pump-7-vib",
    "timestamp": "2026-11-26T07:42:10Z",
    "value": 9.8,
    "score": 7.4,
    "method": "baseline_mad",
    "model_name": None,
    "model_version": None,
    "created_at": "2026-11-26T07:42:11Z",
}


class AnomalyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_ANOMALY_EXAMPLE]})

    id: int
    sensor_id: str
    timestamp: datetime
    value: float
    score: float
    method: str
    model_name: str | None = None
    model_version: str | None = None
    created_at: datetime


_ALERT_EXAMPLE: JsonDict = {
    "id": 12,
    "sensor_id": "pump-7-vib",
    "rule": "anomaly_score",
    "severity": "high",
    "status": "open",
    "opened_at": "2026-11-26T07:42:12Z",
    "acknowledged_at": None,
    "resolved_at": None,
    "anomaly_count": 3,
    "incident_id": 5,
    "event_opened_at": "2026-11-26T07:42:10Z",
    "last_seen_at": "2026-11-26T07:43:02Z",
    "event_resolved_at": None,
    "peak_score": 9.4,
}


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_ALERT_EXAMPLE]})

    id: int
    sensor_id: str
    rule: str
    severity: str
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    anomaly_count: int
    incident_id: int | None = Field(default=None, description="The incident of its asset it joined.")
    event_opened_at: datetime = Field(
        description="Event time the alert opened (the timestamp of the reading that completed k of n); "
        "`opened_at` is when the platform wrote it."
    )
    last_seen_at: datetime | None = Field(default=None, description="Event time of its latest matching reading.")
    event_resolved_at: datetime | None = Field(default=None, description="Event time it resolved.")
    peak_score: float | None = Field(default=None, description="Highest anomaly score it counted (anomaly rules).")
