"""Request and response schemas of the ML serving API (``/api/v1/ml``), separate from the service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

_TS = "2026-11-01T12:00:00Z"


# --- models -------------------------------------------------------------------------------------------------------
class ModelVersionRead(BaseModel):
    version: str
    aliases: list[str] = Field(description="`champion`, `challenger` (registered-model aliases).")
    run_id: str | None
    created_at: datetime | None
    metrics: dict[str, float] = Field(description="Metrics of the version's MLflow run.")
    tags: dict[str, str] = Field(
        description="Version tags (`sm.*`: family, sensor type, promotion decision)."
    )


class ModelRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "anomaly_temperature",
                    "aliases": {"champion": "3", "challenger": "4"},
                    "versions": [
                        {
                            "version": "4",
                            "aliases": ["challenger"],
                            "run_id": "5f0c…",
                            "created_at": _TS,
                            "metrics": {"f1": 0.71, "precision": 0.8},
                            "tags": {"sm.family": "anomaly", "sm.promotion.decision": "rejected"},
                        }
                    ],
                }
            ]
        }
    )

    name: str
    aliases: dict[str, str] = Field(description="alias → version")
    versions: list[ModelVersionRead] = Field(description="Newest first.")


class ModelList(BaseModel):
    items: list[ModelRead]
    total: int


class PromoteRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"version": "4", "force": False}]}
    )

    version: str = Field(pattern=r"^[0-9]+$", max_length=20)
    force: bool = Field(False, description="Make it champion without evaluation (recorded as forced).")
    margin: float | None = Field(None, ge=0, description="Default: `SM_PROMOTION_MARGIN`.")


class PromotionRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "anomaly_temperature",
                    "candidate_version": "4",
                    "champion_version": "3",
                    "metric": "f1",
                    "higher_is_better": True,
                    "candidate_score": 0.74,
                    "champion_score": 0.71,
                    "margin": 0.01,
                    "promoted": True,
                    "reason": "f1 0.74 vs champion v3 0.71: beats it by more than 0.01 (higher is better)",
                }
            ]
        }
    )

    model_name: str
    candidate_version: str
    champion_version: str | None = Field(description="The champion before the decision.")
    metric: str
    higher_is_better: bool
    candidate_score: float | None = Field(description="None when forced (no evaluation).")
    champion_score: float | None
    margin: float
    promoted: bool
    reason: str


# --- predict ------------------------------------------------------------------------------------------------------
class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model_name": "ai4i_failure_classifier",
                    "records": [
                        {
                            "Type": "L",
                            "Air temperature [K]": 298.1,
                            "Process temperature [K]": 308.6,
                            "Rotational speed [rpm]": 1551,
                            "Torque [Nm]": 42.8,
                            "Tool wear [min]": 0,
                        }
                    ],
                },
                {
                    "sensor_type": "temperature",
                    "records": [{"sensor_id": "sensor-001", "timestamp": _TS, "value": 21.5}],
                },
            ]
        },
    )

    model_name: str | None = Field(None, max_length=200, description="Registered model name.")
    sensor_type: str | None = Field(
        None, max_length=100, description="Instead of `model_name`: the sensor type's `anomaly_<type>` model."
    )
    version: str | None = Field(None, max_length=20, description="A version number; default: `alias`.")
    alias: str = Field("champion", max_length=50, description="Used when `version` is not given.")
    records: list[dict[str, Any]] = Field(min_length=1, max_length=10_000, description="Model input rows.")
    params: dict[str, Any] | None = Field(None, description="Inference parameters of the model's signature.")

    @model_validator(mode="after")
    def _one_target(self) -> PredictRequest:
        if (self.model_name is None) == (self.sensor_type is None):
            raise ValueError("give exactly one of model_name and sensor_type")
        return self

    @property
    def target(self) -> str:
        return self.model_name or f"anomaly_{self.sensor_type}"

    @property
    def reference(self) -> str:
        return self.version or self.alias


class PredictResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "ai4i_failure_classifier",
                    "version": "2",
                    "predictions": [{"failure_probability": 0.03, "failure_predicted": False}],
                }
            ]
        }
    )

    model_name: str
    version: str
    predictions: list[dict[str, Any]] = Field(description="One row of the model's output per input record.")


# --- forecast -----------------------------------------------------------------------------------------------------
class ForecastRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"sensor_id": "sensor-001", "horizon": 24}]}
    )

    sensor_id: str = Field(min_length=1, max_length=200)
    horizon: int = Field(24, ge=1, le=2000, description="Steps ahead, at the model's frequency.")
    interval: float = Field(0.8, gt=0, lt=1, description="Width of the prediction interval.")
    version: str | None = Field(None, max_length=20)
    alias: str = Field("champion", max_length=50)


class ForecastPoint(BaseModel):
    timestamp: datetime
    yhat: float
    yhat_lower: float | None
    yhat_upper: float | None


class IntervalCoverage(BaseModel):
    """How far the interval can be trusted: the coverage measured on the forecast study's test folds, which
    neither chose the model nor calibrated its interval."""

    nominal: float = Field(description="The requested coverage (`interval`).")
    calibrated: bool = Field(
        description="The interval is conformally calibrated (since issue 16 part 3: sequentially through the "
        "study's rolling-origin folds, the state as of training end; models trained before calibration existed "
        "serve the method's raw interval)."
    )
    test_coverage: float | None = Field(
        description="Share of the test folds' readings inside this model's interval at this nominal level; null "
        "when not measured at this level (measured levels: `measured`)."
    )
    calibration_points: int | None = Field(description="Backtest scores behind the calibration.")
    measured: dict[str, float] = Field(
        default_factory=dict, description="Test-fold coverage by nominal level (`\"0.8\"` → 0.81)."
    )


class ForecastResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "sensor-001",
                    "model_name": "forecast_temperature",
                    "version": "1",
                    "horizon": 2,
                    "interval": 0.8,
                    "history_points": 600,
                    "coverage": {
                        "nominal": 0.8,
                        "calibrated": True,
                        "test_coverage": 0.81,
                        "calibration_points": 216,
                        "measured": {"0.5": 0.52, "0.8": 0.81, "0.9": 0.9},
                    },
                    "points": [
                        {"timestamp": _TS, "yhat": 21.4, "yhat_lower": 20.9, "yhat_upper": 21.9},
                        {
                            "timestamp": "2026-11-01T12:05:00Z",
                            "yhat": 21.5,
                            "yhat_lower": 20.9,
                            "yhat_upper": 22.1,
                        },
                    ],
                }
            ]
        }
    )

    sensor_id: str
    model_name: str
    version: str
    horizon: int
    interval: float
    history_points: int = Field(description="Readings of the sensor passed to the model as history.")
    coverage: IntervalCoverage = Field(description="The interval's coverage measured on the test folds.")
    points: list[ForecastPoint]


# --- anomaly detection --------------------------------------------------------------------------------------------
class ReadingIn(BaseModel):
    timestamp: AwareDatetime
    value: float
    sensor_id: str | None = Field(None, max_length=200, description="Default: the request's `sensor_id`.")


class DetectAnomalyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "sensor-001",
                    "readings": [
                        {"timestamp": _TS, "value": 21.5},
                        {"timestamp": "2026-11-01T12:05:00Z", "value": 48.0},
                    ],
                }
            ]
        },
    )

    sensor_id: str | None = Field(None, max_length=200, description="A known sensor (its type is looked up).")
    sensor_type: str | None = Field(None, max_length=100, description="Needed when `sensor_id` is not given.")
    readings: list[ReadingIn] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _type_source(self) -> DetectAnomalyRequest:
        if self.sensor_id is None and self.sensor_type is None:
            raise ValueError("give sensor_id or sensor_type")
        if self.sensor_id is None and any(r.sensor_id is None for r in self.readings):
            raise ValueError("without a request sensor_id every reading needs its sensor_id")
        return self


class AnomalyScore(BaseModel):
    sensor_id: str
    timestamp: datetime
    value: float
    score: float = Field(description="Higher = more anomalous.")
    is_anomaly: bool
    warming_up: bool = Field(False, description="Baseline only: too little history for a verdict.")


class DetectAnomalyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sensor_type": "temperature",
                    "method": "robust_z",
                    "model_name": None,
                    "model_version": None,
                    "note": "no registered model anomaly_temperature: robust median/MAD baseline used",
                    "scores": [
                        {
                            "sensor_id": "sensor-001",
                            "timestamp": _TS,
                            "value": 48.0,
                            "score": 31.2,
                            "is_anomaly": True,
                            "warming_up": False,
                        }
                    ],
                }
            ]
        }
    )

    sensor_type: str
    method: Literal["model", "robust_z"] = Field(
        description="`model`: the type's champion; `robust_z`: the statistical baseline."
    )
    model_name: str | None
    model_version: str | None
    note: str | None = Field(None, description="Why the baseline was used, when it was.")
    scores: list[AnomalyScore] = Field(description="In the order of the request's readings.")


# --- drift --------------------------------------------------------------------------------------------------------
class CheckDriftRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"sensor_type": "temperature"}, {"sensor_ids": ["sensor-001"]}]},
    )

    sensor_ids: list[str] | None = Field(None, max_length=1000)
    sensor_type: str | None = Field(None, max_length=100)
    recent_hours: float | None = Field(None, gt=0, le=24 * 90, description="Default: `SM_DRIFT_RECENT_H`.")
    reference_offset_hours: float | None = Field(
        None, gt=0, le=24 * 365, description="Default: `SM_DRIFT_REFERENCE_OFFSET_H`."
    )
    end: AwareDatetime | None = Field(None, description="End of the recent window; default: latest reading.")


class DriftResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sensor_id: str
    sensor_type: str
    reference_start: datetime
    reference_end: datetime
    recent_start: datetime
    recent_end: datetime
    reference_count: int | None = None
    recent_count: int | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    psi: float | None = None
    drifted: bool | None = Field(None, description="None when a window had too few readings.")
    reasons: list[str] = []
    skipped: str | None = None


class DriftThresholdsRead(BaseModel):
    ks_pvalue: float
    psi: float
    psi_bins: int
    min_samples: int


class CheckDriftResponse(BaseModel):
    thresholds: DriftThresholdsRead
    results: list[DriftResult]


class StoredDriftCheck(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sensor_id: str
    sensor_type: str
    checked_at: datetime
    reference_start: datetime
    reference_end: datetime
    recent_start: datetime
    recent_end: datetime
    reference_count: int
    recent_count: int
    ks_statistic: float
    ks_pvalue: float
    psi: float
    ks_pvalue_threshold: float
    psi_threshold: float
    drifted: bool
    retrain_requested: bool


class DriftStatusList(BaseModel):
    items: list[StoredDriftCheck] = Field(
        description="The latest stored check of every sensor (drift agent)."
    )
    total: int
