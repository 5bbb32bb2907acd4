"""The use cases behind ``/api/v1/ml`` (the router holds HTTP only): predict, forecast, detect anomalies, drift.

Each function gets the request's session (reads only) and the process's :class:`core.ml.serving.loader.ModelServer`
(on the model registry port, :mod:`core.ml.registry.port`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from core.anomaly.baseline import METHOD as BASELINE_METHOD
from core.anomaly.baseline import BaselineConfig, SensorState, floors_for
from core.anomaly.champion import Champion
from core.config import Settings
from core.errors import Conflict, NotFound, ValidationFailed
from core.ml.drift.repository import DriftCheckRepository
from core.ml.drift.statistics import DriftThresholds, SensorDrift, check_sensors
from core.ml.registry.port import AliasNotSet, ModelInfo, ModelNotFound, RegistryFailed
from core.ml.serving.loader import (
    ModelServer,
    input_errors,
    naive_utc,
    output_records,
    readings_frame,
    records_frame,
)
from core.ml.serving.repository import MlReadingsRepository
from core.ml.serving.schemas import (
    AnomalyScore,
    CheckDriftRequest,
    CheckDriftResponse,
    DetectAnomalyRequest,
    DetectAnomalyResponse,
    DriftResult,
    DriftStatusList,
    DriftThresholdsRead,
    ForecastPoint,
    ForecastRequest,
    ForecastResponse,
    IntervalCoverage,
    ModelList,
    ModelRead,
    ModelVersionRead,
    PredictRequest,
    PredictResponse,
    PromoteRequest,
    PromotionRead,
    StoredDriftCheck,
)

if TYPE_CHECKING:  # imported where a model's frames are read, not when the API starts (core.ml.serving.loader)
    import pandas as pd

FORECAST_COLUMNS = ("timestamp", "yhat", "yhat_lower", "yhat_upper")


def model_read(info: ModelInfo) -> ModelRead:
    return ModelRead(
        name=info.name,
        aliases=dict(info.aliases),
        versions=[
            ModelVersionRead(
                version=v.version,
                aliases=list(v.aliases),
                run_id=v.run_id,
                created_at=v.created_at,
                metrics=dict(v.metrics),
                tags={k: val for k, val in v.tags.items() if k.startswith("sm.")},
            )
            for v in info.versions
        ],
    )


async def list_models(server: ModelServer) -> ModelList:
    items = [model_read(m) for m in await server.list_models()]
    return ModelList(items=items, total=len(items))


async def get_model(server: ModelServer, name: str) -> ModelRead:
    return model_read(await server.get_model(name))


async def promote(server: ModelServer, name: str, request: PromoteRequest) -> PromotionRead:
    decision = await server.promote(name, request.version, force=request.force, margin=request.margin)
    values = decision.to_dict()
    for key in ("candidate_score", "champion_score"):
        if values[key] is not None and not np.isfinite(values[key]):
            values[key] = None
    return PromotionRead(**values)


async def predict(server: ModelServer, request: PredictRequest) -> PredictResponse:
    loaded = await server.get(request.target, request.reference)
    output = await server.predict(loaded, records_frame(request.records), request.params)
    rows = output_records(output)
    return PredictResponse(model_name=loaded.name, version=loaded.version, predictions=rows)


async def _sensor_type(repo: MlReadingsRepository, sensor_id: str) -> str:
    sensor_type = await repo.sensor_type(sensor_id)
    if sensor_type is None:
        raise NotFound(f"sensor {sensor_id!r} does not exist")
    return sensor_type


def _model_metadata(loaded: Any) -> dict[str, Any]:
    metadata = getattr(getattr(loaded.model, "metadata", None), "metadata", None)
    return metadata if isinstance(metadata, dict) else {}


def interval_coverage(metadata: dict[str, Any], interval: float) -> IntervalCoverage:
    """The forecast model's interval calibration and its test-fold coverage at ``interval`` (from the
    ``interval_calibration`` and ``test_coverage`` metadata of ``core.ml.forecast.pyfunc``)."""
    calibration = metadata.get("interval_calibration")
    measured: dict[str, float] = {}
    raw = metadata.get("test_coverage")
    if isinstance(raw, dict):
        for level, value in raw.items():
            try:
                measured[f"{float(level):g}"] = float(value)
            except (TypeError, ValueError):
                continue
    points = calibration.get("n") if isinstance(calibration, dict) else None
    return IntervalCoverage(
        nominal=interval,
        calibrated=isinstance(calibration, dict),
        test_coverage=measured.get(f"{interval:g}"),
        calibration_points=int(points) if isinstance(points, int | float) else None,
        measured=measured,
    )


def _model_frequency(loaded: Any) -> pd.Timedelta | None:
    """The data frequency a forecast model was trained at (its ``freq_seconds`` metadata), if it states one."""
    import pandas as pd

    metadata = _model_metadata(loaded)
    try:
        seconds = float(metadata["freq_seconds"])
    except (KeyError, TypeError, ValueError):
        return None
    return pd.Timedelta(seconds=seconds) if seconds > 0 else None


async def _forecast_history(
    repo: MlReadingsRepository, loaded: Any, sensor_id: str, points: int
) -> list[tuple[Any, float]]:
    """The sensor's recent history at the model's frequency: bucket means over the last ``points`` periods when
    the model states its frequency (a sensor sending every second, forecast by a model of 5-minute data, gets
    5-minute means, not its last minutes of raw readings), else the last ``points`` raw readings."""
    freq = _model_frequency(loaded)
    if freq is None:
        return await repo.recent(sensor_id, points)
    return await repo.recent_buckets(sensor_id, freq.to_pytimedelta(), points)


async def forecast(
    session: AsyncSession, server: ModelServer, settings: Settings, request: ForecastRequest
) -> ForecastResponse:
    repo = MlReadingsRepository(session)
    sensor_type = await _sensor_type(repo, request.sensor_id)
    loaded = await server.get(f"forecast_{sensor_type}", request.version or request.alias)
    history = await _forecast_history(repo, loaded, request.sensor_id, settings.ml_forecast_history)
    if not history:
        raise Conflict(f"sensor {request.sensor_id!r} has no readings to forecast from")
    frame = readings_frame(
        [request.sensor_id] * len(history), [t for t, _ in history], [v for _, v in history]
    )
    output = await server.predict(loaded, frame, {"horizon": request.horizon, "interval": request.interval})
    import pandas as pd

    if not isinstance(output, pd.DataFrame) or not set(FORECAST_COLUMNS[:2]) <= set(output.columns):
        raise RuntimeError(f"model {loaded.name} v{loaded.version} broke the forecast contract (columns)")
    output = output.assign(timestamp=pd.to_datetime(output["timestamp"], utc=True))  # naive = UTC
    points = [
        ForecastPoint(
            timestamp=row["timestamp"],
            yhat=row["yhat"],
            yhat_lower=row.get("yhat_lower"),
            yhat_upper=row.get("yhat_upper"),
        )
        for row in output_records(output)
    ]
    return ForecastResponse(
        sensor_id=request.sensor_id,
        model_name=loaded.name,
        version=loaded.version,
        horizon=request.horizon,
        interval=request.interval,
        history_points=len(history),
        coverage=interval_coverage(_model_metadata(loaded), request.interval),
        points=points,
    )


async def detect_anomaly(
    session: AsyncSession,
    server: ModelServer,
    baseline: BaselineConfig,
    request: DetectAnomalyRequest,
) -> DetectAnomalyResponse:
    """Score the readings with ``anomaly_<type>@champion``; without one (or without MLflow), the robust baseline
    seeded with the sensor's stored history. The response says which method scored and why."""
    repo = MlReadingsRepository(session)
    sensor_type = request.sensor_type or await _sensor_type(repo, request.sensor_id)  # type: ignore[arg-type]
    ids = [r.sensor_id or request.sensor_id or "" for r in request.readings]
    order = sorted(range(len(ids)), key=lambda i: (ids[i], request.readings[i].timestamp))
    frame = readings_frame(
        [ids[i] for i in order],
        [request.readings[i].timestamp for i in order],
        [request.readings[i].value for i in order],
    )
    name = f"anomaly_{sensor_type}"
    note: str | None = None
    try:
        loaded = await server.get(name)
    except (ModelNotFound, AliasNotSet) as exc:
        loaded, note = None, f"{exc.detail}: robust median/MAD baseline used"
    except RegistryFailed as exc:
        loaded, note = None, f"{exc.detail}: robust median/MAD baseline used"

    scores: list[AnomalyScore | None] = [None] * len(ids)
    if loaded is not None:
        champion = Champion(loaded.name, loaded.version, loaded.model)
        model_frame = naive_utc(frame, loaded.datetime_columns)  # MLflow's schema check wants naive datetimes
        values, flags = await _score_with_model(champion, model_frame, baseline.threshold)
        for rank, i in enumerate(order):
            scores[i] = _score(request, ids, i, float(values[rank]), bool(flags[rank]), False)
        method = "model"
    else:
        floors = floors_for(sensor_type)
        for sensor_id in dict.fromkeys(ids[i] for i in order):
            first = min(request.readings[i].timestamp for i in order if ids[i] == sensor_id)
            history = await repo.recent(sensor_id, baseline.window, before=first)
            state = SensorState.from_readings(
                baseline.window, [t for t, _ in history], [v for _, v in history], baseline
            )
            for i in (i for i in order if ids[i] == sensor_id):
                reading = request.readings[i]
                result = state.update(reading.value, reading.timestamp, baseline, floors)
                scores[i] = _score(request, ids, i, result.score, result.flagged, result.warming_up)
        method = BASELINE_METHOD
    return DetectAnomalyResponse(
        sensor_type=sensor_type,
        method=method,  # type: ignore[arg-type]
        model_name=loaded.name if loaded else None,
        model_version=loaded.version if loaded else None,
        note=note,
        scores=[s for s in scores if s is not None],
    )


async def _score_with_model(
    champion: Champion, frame: pd.DataFrame, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(champion.score, frame, threshold)
    except input_errors() as exc:
        message = (getattr(exc, "message", None) or str(exc)).splitlines()[0][:500]
        raise ValidationFailed(
            f"model {champion.name} v{champion.version} rejected the readings: {message}"
        ) from None


def _score(
    request: DetectAnomalyRequest, ids: list[str], i: int, score: float, flag: bool, warming: bool
) -> AnomalyScore:
    reading = request.readings[i]
    return AnomalyScore(
        sensor_id=ids[i],
        timestamp=reading.timestamp,
        value=reading.value,
        score=score if np.isfinite(score) else 0.0,
        is_anomaly=flag,
        warming_up=warming,
    )


async def check_drift(
    session: AsyncSession, settings: Settings, request: CheckDriftRequest
) -> CheckDriftResponse:
    if request.sensor_ids:
        known = {s for s, _ in await MlReadingsRepository(session).sensors(request.sensor_ids)}
        unknown = sorted(set(request.sensor_ids) - known)
        if unknown:
            raise NotFound(f"unknown sensors: {', '.join(unknown)}", extra={"unknown_sensor_ids": unknown})
    results = await check_sensors(
        session,
        settings,
        sensor_ids=request.sensor_ids,
        sensor_type=request.sensor_type,
        recent_h=request.recent_hours,
        reference_offset_h=request.reference_offset_hours,
        end=request.end,
    )
    thresholds = DriftThresholds.from_settings(settings)
    return CheckDriftResponse(
        thresholds=DriftThresholdsRead(
            ks_pvalue=thresholds.ks_pvalue,
            psi=thresholds.psi,
            psi_bins=thresholds.bins,
            min_samples=thresholds.min_samples,
        ),
        results=[_drift_result(r) for r in results],
    )


def _drift_result(r: SensorDrift) -> DriftResult:
    """One sensor's drift; the statistics stay at their defaults when the sensor was skipped."""
    stats = r.stats
    return DriftResult(
        sensor_id=r.sensor_id,
        sensor_type=r.sensor_type,
        reference_start=r.windows.reference_start,
        reference_end=r.windows.reference_end,
        recent_start=r.windows.recent_start,
        recent_end=r.windows.recent_end,
        skipped=r.skipped,
        reference_count=None if stats is None else stats.reference_count,
        recent_count=None if stats is None else stats.recent_count,
        ks_statistic=None if stats is None else stats.ks_statistic,
        ks_pvalue=None if stats is None else stats.ks_pvalue,
        psi=None if stats is None else stats.psi,
        drifted=None if stats is None else stats.drifted,
        reasons=[] if stats is None else list(stats.reasons),
    )


async def drift_status(
    session: AsyncSession, sensor_type: str | None = None, drifted: bool | None = None
) -> DriftStatusList:
    rows = await DriftCheckRepository(session).latest_per_sensor(sensor_type, drifted)
    items = [StoredDriftCheck.model_validate(row) for row in rows]
    return DriftStatusList(items=items, total=len(items))


__all__ = [
    "check_drift",
    "detect_anomaly",
    "drift_status",
    "forecast",
    "get_model",
    "list_models",
    "model_read",
    "predict",
    "promote",
]
