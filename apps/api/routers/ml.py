"""ML serving API (scope ``read``): registered models, predictions, forecasts, anomaly scores and drift.

HTTP concerns only; the use cases are in ``core.ml.serving.service`` and the model cache in
``core.ml.serving.loader.ModelServer`` (the runtime's ``models``, on its model registry).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from apps.api.deps import SessionDep, SettingsDep, app_runtime
from apps.api.errors import problem_responses
from apps.api.params import TextQuery
from apps.api.security import AdminPrincipal, require_scope
from core.anomaly.baseline import BaselineConfig
from core.auth.keys import READ
from core.ml.serving import service
from core.ml.serving.loader import ModelServer
from core.ml.serving.schemas import (
    CheckDriftRequest,
    CheckDriftResponse,
    DetectAnomalyRequest,
    DetectAnomalyResponse,
    DriftStatusList,
    ForecastRequest,
    ForecastResponse,
    ModelList,
    ModelRead,
    PredictRequest,
    PredictResponse,
    PromoteRequest,
    PromotionRead,
)
from core.schemas_common import NO_CONTROL

ModelName = Annotated[
    str, Path(min_length=1, max_length=200, pattern=NO_CONTROL, description="Registered model name.")
]

router = APIRouter(
    prefix="/api/v1/ml",
    tags=["ml"],
    dependencies=[Depends(require_scope(READ))],
    responses=problem_responses(401, 403, 422, 429),
)


def get_model_server(request: Request) -> ModelServer:
    return app_runtime(request.app).models


ServerDep = Annotated[ModelServer, Depends(get_model_server)]


@router.get(
    "/models",
    response_model=ModelList,
    summary="List registered models",
    description=(
        "Every registered model of the MLflow registry with its versions (newest first), aliases "
        "(`champion`, `challenger`) and the metrics of each version's run. Cached for `SM_ML_ALIAS_TTL_S`."
    ),
    responses=problem_responses(503),
)
async def list_models(server: ServerDep) -> ModelList:
    return await service.list_models(server)


@router.get(
    "/models/{name}",
    response_model=ModelRead,
    summary="Get a registered model",
    responses=problem_responses(404, 503),
)
async def get_model(server: ServerDep, name: ModelName) -> ModelRead:
    return await service.get_model(server, name)


@router.post(
    "/models/{name}/promote",
    response_model=PromotionRead,
    summary="Promote a model version (admin)",
    description=(
        "Evaluates `version` and the current champion with the model family's evaluator (same data) and moves "
        "the `champion` alias only if the version wins by more than `margin` (`SM_PROMOTION_MARGIN`); `force` "
        "moves it without evaluation. The decision is stored as `sm.promotion.*` tags on the version. 409 when "
        "the model's family has no evaluator (use `force`)."
    ),
    responses=problem_responses(404, 409, 503),
)
async def promote(
    body: PromoteRequest,
    server: ServerDep,
    principal: AdminPrincipal,
    name: ModelName,
) -> PromotionRead:
    decision = await service.promote(server, name, body)
    principal.audit(
        "ml.model.promote",
        target=f"model:{name}:{body.version}",
        force=body.force,
        promoted=decision.promoted,
    )
    return decision


@router.post(
    "/predict",
    response_model=PredictResponse,
    summary="Predict with a registered model",
    description=(
        "Runs `records` through the model (`model_name`, or `sensor_type` for `anomaly_<type>`) at `version` "
        "or `alias` (default `champion`). Input columns are checked against the model's signature (422 names "
        "the missing ones). The response rows are the model's output columns, one per record. The model is "
        "loaded once per version and cached in the process."
    ),
    responses=problem_responses(404, 409, 503),
)
async def predict(body: PredictRequest, server: ServerDep) -> PredictResponse:
    return await service.predict(server, body)


@router.post(
    "/forecast",
    response_model=ForecastResponse,
    summary="Forecast a sensor",
    description=(
        "Loads the sensor's last `SM_ML_FORECAST_HISTORY` readings and calls `forecast_<sensor type>` "
        "(champion by default) for `horizon` steps with a prediction interval of nominal coverage `interval` "
        "(conformally calibrated through the training study's rolling-origin folds, each origin calibrated from "
        "the folds before it; the model carries the state as of training end). `coverage` says what share of "
        "the study's test-fold readings that procedure's interval actually covered. 404: unknown sensor or no "
        "such model; 409: the model has no version with the alias, or the sensor has no readings; 422: the "
        "model refuses the request (e.g. an `interval` beyond what its calibration can reach)."
    ),
    responses=problem_responses(404, 409, 422, 503),
)
async def forecast(
    body: ForecastRequest, session: SessionDep, server: ServerDep, settings: SettingsDep
) -> ForecastResponse:
    return await service.forecast(session, server, settings, body)


@router.post(
    "/detect_anomaly",
    response_model=DetectAnomalyResponse,
    summary="Score a window of readings",
    description=(
        "Scores the readings with the sensor type's `anomaly_<type>` champion (`method: model`) or, when there "
        "is none or MLflow is unreachable, with the robust median/MAD baseline seeded with the sensor's stored "
        "history (`method: robust_z`; `note` says why). Scores are returned in the order of the readings."
    ),
    responses=problem_responses(404),
)
async def detect_anomaly(
    body: DetectAnomalyRequest, session: SessionDep, server: ServerDep, settings: SettingsDep
) -> DetectAnomalyResponse:
    return await service.detect_anomaly(session, server, BaselineConfig.from_settings(settings), body)


@router.post(
    "/check_drift",
    response_model=CheckDriftResponse,
    summary="Check sensors for data drift now",
    description=(
        "Each sensor's recent window (`recent_hours`, ending at `end` or its latest reading) against the same "
        "span `reference_offset_hours` earlier. Location drift: KS test at the autocorrelation-corrected "
        "sample sizes p < `SM_DRIFT_KS_PVALUE` and a median shift of at least `SM_DRIFT_MIN_SHIFT` robust SDs; "
        "spread drift: Brown–Forsythe on first differences p < `SM_DRIFT_SPREAD_PVALUE` and a spread ratio of "
        "at least `SM_DRIFT_MIN_SPREAD_RATIO`. PSI is reported, not decisive. `reasons` names what fired. "
        "Computed on demand and not stored (the drift agent stores its scheduled checks: `GET /api/v1/ml/drift`)."
    ),
    responses=problem_responses(404),
)
async def check_drift(
    body: CheckDriftRequest, session: SessionDep, settings: SettingsDep
) -> CheckDriftResponse:
    return await service.check_drift(session, settings, body)


@router.get(
    "/drift",
    response_model=DriftStatusList,
    summary="Latest drift check per sensor",
    description="The drift agent's latest stored check of every sensor; filter by sensor type or verdict.",
)
async def drift_status(
    session: SessionDep, sensor_type: TextQuery = None, drifted: bool | None = None
) -> DriftStatusList:
    return await service.drift_status(session, sensor_type, drifted)
