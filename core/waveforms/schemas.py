"""Request and response schemas of waveform sensors, snapshots and diagnoses (separate from the ORM models)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.fleet.types import MAX_SENSOR_ID_CHARS, MAX_UNIT_CHARS
from core.schemas_common import TOKEN, AssetId, Label, Number, Timestamp

#: diagnose() needs at least this many samples (its Welch average of the envelope spectrum).
MIN_SAMPLES = 4096
#: At most this many samples a snapshot (2^18: ~22 s at 12 kHz, ~5 s at 51.2 kHz; 1 MiB as float32).
MAX_SAMPLES = 262_144
MAX_SAMPLE_RATE_HZ = 1_000_000.0
MIN_SAMPLE_RATE_HZ = 100.0
MAX_RPM = 100_000.0
#: Suffixes of the two feature sensors of a waveform sensor (``<sensor_id>.rms``, ``<sensor_id>.kurtosis``).
RMS_SUFFIX = ".rms"
KURTOSIS_SUFFIX = ".kurtosis"
#: A waveform sensor's id leaves room for its feature sensors' suffixes.
MAX_WAVEFORM_SENSOR_ID_CHARS = MAX_SENSOR_ID_CHARS - len(KURTOSIS_SUFFIX)
#: base64 of MAX_SAMPLES float32 samples.
MAX_BASE64_CHARS = 4 * ((MAX_SAMPLES * 4 + 2) // 3)

WaveformSensorId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_WAVEFORM_SENSOR_ID_CHARS, pattern=TOKEN)
]
SensorId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SENSOR_ID_CHARS, pattern=TOKEN)]
Rpm = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_RPM)]
Hz = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_SAMPLE_RATE_HZ / 2)]
Fault = str

EXAMPLE_SENSOR: dict[str, Any] = {
    "sensor_id": "pump-7-de-accel",
    "asset_id": 3,
    "bearing": "6205",
    "mounting": "motor drive-end bearing, radial",
    "nominal_rpm": 1797.0,
    "unit": "g",
}


class WaveformSensorCreate(BaseModel):
    """Register a ``vibration_waveform`` sensor: the sensor, its bearing, mounting and nominal speed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_SENSOR]})

    sensor_id: WaveformSensorId
    asset_id: AssetId = Field(
        description="The asset carrying the bearing (must exist): alerts and work orders go there."
    )
    bearing: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=TOKEN)] = Field(
        description="Bearing geometry by name (`6205`, `ZA-2115`; see GET /api/v1/waveform-sensors/bearings)."
    )
    mounting: Label | None = Field(None, description="Where the accelerometer sits (bearing, direction).")
    nominal_rpm: Rpm = Field(description="Shaft speed used when a snapshot carries no `rpm`.")
    unit: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_UNIT_CHARS, pattern=TOKEN),
        Field(description="Unit of the samples (acceleration): also the unit of the RMS feature readings."),
    ] = "g"
    band_low_hz: Annotated[Hz | None, Field(description="Envelope band, low edge (default: 0.1 × sampling rate).")] = (
        None
    )
    band_high_hz: Annotated[
        Hz | None, Field(description="Envelope band, high edge (default: 0.4 × sampling rate).")
    ] = None

    @model_validator(mode="after")
    def _band(self) -> Self:
        if (self.band_low_hz is None) != (self.band_high_hz is None):
            raise ValueError("give both band_low_hz and band_high_hz, or neither")
        if self.band_low_hz is not None and self.band_high_hz is not None and self.band_high_hz <= self.band_low_hz:
            raise ValueError("band_high_hz must be above band_low_hz")
        return self


class WaveformSensorRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    **EXAMPLE_SENSOR,
                    "bearing": "6205",
                    "band_low_hz": None,
                    "band_high_hz": None,
                    "rms_sensor_id": "pump-7-de-accel.rms",
                    "kurtosis_sensor_id": "pump-7-de-accel.kurtosis",
                    "defect_orders": {"bpfo": 3.585, "bpfi": 5.415, "bsf": 2.357, "ftf": 0.398},
                    "created_at": "2026-12-08T03:00:00Z",
                }
            ]
        },
    )

    sensor_id: str
    asset_id: int | None
    bearing: str
    mounting: str | None
    nominal_rpm: float
    unit: str | None
    band_low_hz: float | None
    band_high_hz: float | None
    rms_sensor_id: str
    kurtosis_sensor_id: str
    defect_orders: dict[str, float] = Field(description="Defect frequencies as multiples of the shaft speed.")
    created_at: datetime


class BearingRead(BaseModel):
    name: str
    aliases: list[str]
    n_elements: int
    element_diameter: float
    pitch_diameter: float
    contact_angle_deg: float
    defect_orders: dict[str, float]


EXAMPLE_SNAPSHOT: dict[str, Any] = {
    "sensor_id": "pump-7-de-accel",
    "timestamp": "2026-12-08T03:00:00Z",
    "sample_rate_hz": 12000.0,
    "rpm": 1797.0,
    "samples_base64": "AAAAAA...(4 bytes per sample, little-endian float32)",
}


class SnapshotCreate(BaseModel):
    """One vibration snapshot: samples as a JSON array of numbers, or base64 of little-endian float32."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_SNAPSHOT]})

    sensor_id: SensorId
    timestamp: Timestamp
    sample_rate_hz: Annotated[
        float, Field(strict=True, allow_inf_nan=False, ge=MIN_SAMPLE_RATE_HZ, le=MAX_SAMPLE_RATE_HZ)
    ]
    rpm: Rpm | None = Field(None, description="Shaft speed during the snapshot (default: the sensor's nominal).")
    samples: Annotated[list[Number], Field(min_length=MIN_SAMPLES, max_length=MAX_SAMPLES)] | None = Field(
        None, description=f"{MIN_SAMPLES:,}-{MAX_SAMPLES:,} finite numbers."
    )
    samples_base64: Annotated[str, StringConstraints(max_length=MAX_BASE64_CHARS)] | None = Field(
        None, description="base64 of little-endian float32 samples (4 bytes each)."
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if (self.samples is None) == (self.samples_base64 is None):
            raise ValueError("give the samples either as `samples` or as `samples_base64` (exactly one)")
        return self


class SnapshotFeatures(BaseModel):
    rms: float
    kurtosis: float
    peak: float


class SnapshotAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "snapshot_id": 42,
                    "sensor_id": "pump-7-de-accel",
                    "timestamp": "2026-12-08T03:00:00Z",
                    "sample_count": 24000,
                    "duplicate": False,
                    "event_id": "0b9c3c1e-8f6a-4d7e-9a43-3f0c2b7e1d55",
                    "features": {"rms": 0.21, "kurtosis": 2.7, "peak": 1.4},
                }
            ]
        }
    )

    snapshot_id: int
    sensor_id: str
    timestamp: datetime
    sample_count: int
    duplicate: bool = Field(description="A snapshot of this sensor at this timestamp was stored already.")
    event_id: UUID | None = Field(description="The WaveformIngested event (None for a duplicate).")
    features: SnapshotFeatures


class DiagnosisRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "snapshot_id": 42,
                    "sensor_id": "pump-7-de-accel",
                    "timestamp": "2026-12-08T03:00:00Z",
                    "fault": "outer race",
                    "score_db": 17.9,
                    "threshold_db": 8.1,
                    "scores_db": {"outer race": 17.9, "inner race": 1.2, "ball": 0.8},
                    "defect_frequencies": {"bpfo": 107.4, "bpfi": 162.2, "bsf": 70.6, "ftf": 11.9},
                    "bearing": "6205",
                    "rpm": 1797.0,
                    "band_hz": [1200.0, 4800.0],
                    "error": None,
                    "alert_id": 12,
                    "details": {},
                    "created_at": "2026-12-08T03:00:01Z",
                }
            ]
        },
    )

    id: int
    snapshot_id: int | None
    sensor_id: str
    timestamp: datetime
    fault: Fault = Field(description="outer race | inner race | ball | none | unknown")
    score_db: float | None
    threshold_db: float | None
    scores_db: dict[str, float | None]
    defect_frequencies: dict[str, float | None]
    bearing: str
    rpm: float
    band_hz: list[float] | None = Field(None, description="The envelope band the diagnosis used.")
    error: str | None
    alert_id: int | None
    details: dict[str, Any]
    created_at: datetime


__all__ = [
    "MAX_SAMPLES",
    "MIN_SAMPLES",
    "BearingRead",
    "DiagnosisRead",
    "SnapshotAccepted",
    "SnapshotCreate",
    "SnapshotFeatures",
    "WaveformSensorCreate",
    "WaveformSensorRead",
]
