"""Request schemas of fleet management (the read schemas are the query API's ``AssetRead``/``SensorRead``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.fleet.types import MAX_ASSET_CHARS, MAX_SENSOR_ID_CHARS, MAX_TYPE_CHARS, MAX_UNIT_CHARS
from core.schemas_common import AssetId

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ASSET_CHARS, pattern=r"^[^\x00]+$")
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]+$")
]
SensorId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SENSOR_ID_CHARS, pattern=r"^[^\s\x00]+$")
]
SensorType = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TYPE_CHARS, pattern=r"^[^\x00]+$")
]
Unit = Annotated[str, StringConstraints(max_length=MAX_UNIT_CHARS, pattern=r"^[^\x00]*$")]
SensorStatus = Literal["active", "inactive", "retired"]


class AssetCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "pump-7", "site": "plant-a", "kind": "centrifugal_pump"}]},
    )

    name: Name = Field(description="Unique name of the machine.")
    site: Label | None = None
    kind: Label | None = None


class AssetUpdate(BaseModel):
    """Only the fields sent change; `null` clears `site`/`kind`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"site": "plant-b"}]})

    name: Name | None = None
    site: Label | None = None
    kind: Label | None = None


class SensorCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "pump-7-vib",
                    "type": "vibration",
                    "unit": "mm/s",
                    "asset_id": 3,
                    "location": "DE",
                }
            ]
        },
    )

    sensor_id: SensorId
    type: SensorType = Field(description="Sensor type: selects the anomaly model `anomaly_<type>` and rules.")
    unit: Unit | None = None
    location: Label | None = None
    asset_id: AssetId | None = Field(None, description="The asset carrying the sensor (must exist).")
    status: SensorStatus = "active"


class SensorUpdate(BaseModel):
    """Link a sensor to an asset (or `asset_id: null` to unlink), change its unit, location or status."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"asset_id": 3}]})

    asset_id: AssetId | None = None
    unit: Unit | None = None
    location: Label | None = None
    status: SensorStatus | None = None
