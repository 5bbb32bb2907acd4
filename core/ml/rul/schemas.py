"""The answer of ``GET /api/v1/assets/{id}/rul``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

_EXAMPLE: JsonDict = {
    "asset_id": 12,
    "model_name": "rul_turbofan",
    "model_version": "3",
    "rul_cycles": 61.4,
    "rul_lower_cycles": 38.2,
    "rul_upper_cycles": 84.9,
    "interval": 0.9,
    "cycles": 142,
    "last_cycle_at": "2026-12-07T10:00:00Z",
    "cycle_seconds": 3600.0,
    "lower_bound_at": "2026-12-09T00:12:00Z",
    "channels": {"T24": "engine-12-T24", "T30": "engine-12-T30"},
    "computed_at": "2026-12-07T10:00:03Z",
}


class RulEstimateRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    asset_id: int
    model_name: str = Field(description="The registered model that estimated it (`rul_<asset kind>` by default).")
    model_version: str
    rul_cycles: float = Field(description="Point estimate: cycles remaining after the last complete cycle.")
    rul_lower_cycles: float = Field(description="Lower bound of the conformal interval (cycles, ≥ 0).")
    rul_upper_cycles: float = Field(description="Upper bound of the conformal interval (cycles).")
    interval: float = Field(description="Nominal coverage of the interval (0.9 = 90 %).")
    cycles: int = Field(description="Complete cycles stored for the asset (the model's cycle count).")
    last_cycle_at: datetime = Field(description="Time of the last complete cycle: the estimate is as of then.")
    cycle_seconds: float | None = Field(
        description="Median time between the last complete cycles (converts cycles to time); null with one cycle."
    )
    lower_bound_at: datetime | None = Field(
        description="last_cycle_at + rul_lower_cycles × cycle_seconds: the date work orders are due by at the latest."
    )
    channels: dict[str, str] = Field(description="Model channel → the asset's sensor read for it.")
    computed_at: datetime


__all__ = ["RulEstimateRead"]
