"""Operational endpoints: liveness, readiness (database + MLflow) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import httpx
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, Field
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from apps.api.deps import EngineDep, SettingsDep
from apps.api.errors import Problem, problem_responses
from apps.api.security import require_metrics_key
from core.config import Settings
from core.errors import ServiceUnavailable
from core.observability.health_repository import HealthRepository, migration_heads
from core.observability.metrics import API_READY_CHECKS_TOTAL, DB_CHECK_LATENCY_SECONDS, REGISTRY

router = APIRouter(tags=["ops"])

ComponentState = Literal["ok", "failing", "skipped"]
MAX_DETAIL_CHARS = 300


# --- schemas ----------------------------------------------------------------------------------------------------
class LivenessRead(BaseModel):
    status: Literal["ok"] = "ok"
    version: str = Field(examples=["0.1.0"])


class ComponentRead(BaseModel):
    status: ComponentState
    latency_ms: float | None = Field(default=None, description="Duration of the check; null when skipped.")
    detail: str | None = Field(default=None, description="Why the check failed or was skipped (never secrets).")


class TimescaleInfo(BaseModel):
    installed: bool | None = Field(description="Extension installed in the database; null when unknown.")
    version: str | None = None


class ReadinessInfo(BaseModel):
    timescaledb: TimescaleInfo


class ReadinessRead(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "status": "ok",
                    "version": "0.1.0",
                    "components": {
                        "database": {"status": "ok", "latency_ms": 3.1, "detail": None},
                        "mlflow": {"status": "ok", "latency_ms": 5.4, "detail": None},
                    },
                    "info": {"timescaledb": {"installed": False, "version": None}},
                }
            ]
        }
    }

    status: Literal["ok"] = "ok"
    version: str
    components: dict[str, ComponentRead]
    info: ReadinessInfo


class ReadinessProblem(Problem):
    """503 body: which components fail, and the status of every component."""

    failing: list[str] = Field(examples=[["database"]])
    components: dict[str, ComponentRead]
    info: ReadinessInfo


# --- checks -----------------------------------------------------------------------------------------------------
def _secrets(settings: Settings) -> list[str]:
    values = [settings.api_key.get_secret_value()]
    for url in (settings.database_url, settings.mlflow_tracking_uri):
        try:
            password = make_url(url).password
        except Exception:  # noqa: BLE001 - not a URL SQLAlchemy understands: nothing to redact from it
            password = None
        if password:
            values.append(str(password))
    return [v for v in values if v]


def describe_failure(exc: BaseException, settings: Settings) -> str:
    """A one-line, bounded, secret-free description of a failed check."""
    message = " ".join(str(exc).split()) or "no message"
    text = f"{type(exc).__name__}: {message}"
    for secret in _secrets(settings):
        text = text.replace(secret, "***")
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _failing(latency_ms: float | None, detail: str) -> ComponentRead:
    return ComponentRead(status="failing", latency_ms=latency_ms, detail=detail)


async def check_database(engine: AsyncEngine, settings: Settings) -> tuple[ComponentRead, TimescaleInfo]:
    """Connect, SELECT 1, compare ``alembic_version`` with the scripts' head; all within the timeout."""
    timeout = settings.ready_timeout_s
    started = time.perf_counter()
    failure: str | None = None
    revisions: frozenset[str] | None = None
    timescale = TimescaleInfo(installed=None)
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                repo = HealthRepository(conn)
                await repo.ping()
                revisions = await repo.migration_revisions()
                ts_version = await repo.timescaledb_version()
        timescale = TimescaleInfo(installed=ts_version is not None, version=ts_version)
    except TimeoutError:
        failure = f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the detail says which
        failure = describe_failure(exc, settings)
    latency = _elapsed_ms(started)
    DB_CHECK_LATENCY_SECONDS.observe(latency / 1000)
    if failure is not None:
        return _failing(latency, failure), timescale

    try:
        heads = migration_heads()
    except Exception as exc:  # noqa: BLE001
        return _failing(
            latency, f"cannot read the migration scripts: {describe_failure(exc, settings)}"
        ), timescale
    expected = ", ".join(sorted(heads))
    if revisions is None:
        detail = (
            f"database not migrated (no alembic_version table); run `alembic upgrade head` (head {expected})"
        )
        return _failing(latency, detail), timescale
    if revisions != heads:
        found = ", ".join(sorted(revisions)) or "none"
        detail = f"database at revision {found}, code expects {expected}; run `alembic upgrade head`"
        return _failing(latency, detail), timescale
    return ComponentRead(status="ok", latency_ms=latency), timescale


async def check_mlflow(client: httpx.AsyncClient, settings: Settings) -> ComponentRead:
    """GET ``{tracking_uri}/health``; skipped when disabled or when the tracking URI is not http(s)."""
    if not settings.ready_check_mlflow:
        return ComponentRead(status="skipped", detail="disabled (SM_READY_CHECK_MLFLOW=false)")
    uri = settings.mlflow_tracking_uri
    if not uri.lower().startswith(("http://", "https://")):
        return ComponentRead(status="skipped", detail="tracking URI is not an HTTP server")
    timeout = settings.ready_timeout_s
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            response = await client.get(uri.rstrip("/") + "/health", timeout=timeout)
    except TimeoutError:
        return _failing(_elapsed_ms(started), f"no answer within {timeout:g} s")
    except Exception as exc:  # noqa: BLE001
        return _failing(_elapsed_ms(started), describe_failure(exc, settings))
    latency = _elapsed_ms(started)
    if response.status_code != 200:
        return ComponentRead(
            status="failing", latency_ms=latency, detail=f"/health answered HTTP {response.status_code}"
        )
    return ComponentRead(status="ok", latency_ms=latency)


def _http_client(request: Request) -> httpx.AsyncClient | None:
    return getattr(request.app.state, "http_client", None)


# --- routes -----------------------------------------------------------------------------------------------------
@router.get(
    "/health",
    response_model=LivenessRead,
    summary="Liveness",
    description="The process is up and serving requests. Touches no dependency.",
)
async def liveness(request: Request) -> LivenessRead:
    return LivenessRead(version=request.app.version)


@router.get(
    "/health/ready",
    response_model=ReadinessRead,
    summary="Readiness",
    description=(
        "The database is reachable and migrated to the head revision of this build, and MLflow answers "
        "(unless disabled). TimescaleDB presence is reported as information, not as a failure."
    ),
    responses=problem_responses(503, s503=ReadinessProblem),
)
async def readiness(request: Request, settings: SettingsDep, engine: EngineDep) -> ReadinessRead:
    client = _http_client(request)
    own_client = client is None
    if client is None:
        client = httpx.AsyncClient(trust_env=False)
    try:
        (database, timescale), mlflow = await asyncio.gather(
            check_database(engine, settings), check_mlflow(client, settings)
        )
    finally:
        if own_client:
            await client.aclose()

    components = {"database": database, "mlflow": mlflow}
    for name, component in components.items():
        API_READY_CHECKS_TOTAL.labels(name, component.status).inc()
    info = ReadinessInfo(timescaledb=timescale)
    failing = [name for name, component in components.items() if component.status == "failing"]
    if failing:
        raise ServiceUnavailable(
            "not ready: " + ", ".join(f"{name} ({components[name].detail})" for name in failing),
            extra={
                "failing": failing,
                "components": {name: c.model_dump() for name, c in components.items()},
                "info": info.model_dump(),
            },
        )
    return ReadinessRead(version=request.app.version, components=components, info=info)


@router.get(
    "/metrics",
    response_model=str,
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
    description=(
        "Prometheus text exposition (OpenMetrics when asked for in Accept). Requires `X-API-Key` when "
        "SM_METRICS_REQUIRE_KEY is true."
    ),
    responses=problem_responses(401),
    dependencies=[Depends(require_metrics_key)],
)
async def metrics(request: Request) -> Response:
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(content=encoder(REGISTRY), media_type=content_type)


__all__ = [
    "ComponentRead",
    "LivenessRead",
    "ReadinessProblem",
    "ReadinessRead",
    "check_database",
    "check_mlflow",
    "describe_failure",
    "router",
]
