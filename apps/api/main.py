"""The API application factory.

Run with ``python -m apps.api`` (or ``uvicorn --factory apps.api.main:create_app``). ``create_app()`` without
arguments loads the settings (refusing unsafe production settings with ``ConfigurationError``) and configures
logging; tests pass their own ``Settings`` and may build any number of apps in one process.

The lifespan builds the process's runtime with ``core.runtime.bootstrap.bootstrap`` (settings, engine, session
factory, bus with every handler, outbox relay, model registry and served models, agents, workers and the ingest
service with its group committer) and keeps it on ``app.state.runtime``; routers and dependencies reach it through
``apps.api.deps.get_runtime``. ``await runtime.start()`` runs after the authentication set-up; on shutdown
``runtime.stop()`` drains the group committer, stops the relay, drains the bus, stops the workers and disposes the
engine. ``app.state.http_client`` (dependency checks) is the API's own.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from apps.api.deps import app_settings
from apps.api.docs import install_docs
from apps.api.errors import (
    PROBLEM_MEDIA_TYPE,
    document_body_limit,
    install_exception_handlers,
    problem_responses,
)
from apps.api.gate import RequestGate
from apps.api.middleware import HttpMetricsMiddleware, RequestContextMiddleware
from apps.api.routers import (
    admin_dead_letters,
    admin_events,
    admin_keys,
    anomalies,
    assets,
    health,
    ingest,
    readings,
    sensors,
)
from apps.api.routers import alert_rules as alert_rules_router
from apps.api.routers import alerts as alerts_router
from apps.api.routers import incidents as incidents_router
from apps.api.routers import labels as labels_router
from apps.api.routers import maintenance as maintenance_router
from apps.api.routers import ml as ml_router
from apps.api.routers import waveforms as waveforms_router
from apps.api.routers.reports import router as reports_router
from apps.api.routers.webhooks import router as webhooks_router
from apps.api.security import setup_auth
from core.config import Settings, load_settings
from core.notifications.destinations import Resolver
from core.observability.health_repository import migration_heads
from core.observability.logging import configure_logging
from core.observability.metrics import set_build_info
from core.runtime.bootstrap import bootstrap

logger = logging.getLogger("apps.api")

TITLE = "Smart Maintenance API"
DISTRIBUTION = "smart-maintenance"
FALLBACK_VERSION = "0.1.0"
DESCRIPTION = (
    "Ingest, queries, ML serving and administration for the Smart Maintenance platform. Errors are RFC 9457 "
    "`application/problem+json` bodies carrying the request's `correlation_id` (the `X-Request-ID` header, "
    "echoed on every response)."
)
OPENAPI_TAGS = [{"name": "ops", "description": "Liveness, readiness and Prometheus metrics."}]


def app_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return FALLBACK_VERSION


@dataclass(frozen=True, slots=True)
class RuntimeOverrides:
    """What a caller (tests) may change in the runtime the lifespan bootstraps (keyword arguments of bootstrap)."""

    #: The resolver of webhook destination checks (API and delivery worker); None: the system resolver.
    webhook_resolver: Resolver | None = None
    #: False: no notification delivery worker (deliveries are enqueued, never sent).
    deliver_notifications: bool = True


def lifespan_with(overrides: RuntimeOverrides) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan of an app whose runtime is bootstrapped with ``overrides``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = app_settings(app)
        runtime = bootstrap(
            settings,
            webhook_resolver=overrides.webhook_resolver,
            deliver_notifications=overrides.deliver_notifications,
        )
        app.state.runtime = runtime
        app.state.http_client = httpx.AsyncClient(trust_env=False, timeout=settings.ready_timeout_s)
        try:
            await asyncio.to_thread(migration_heads)  # warm the cache off the event loop
        except Exception as exc:  # noqa: BLE001 - readiness reports it; the API still serves liveness
            logger.warning("migration scripts unavailable: %s", exc)
        await setup_auth(app)  # API-key cache, rate limiter, bootstrap key row
        await runtime.start()  # bus, outbox relay (leftovers of earlier runs), workers, group committer, purge
        # Everything allocated so far (imports, settings, pools) lives as long as the process: move it out of the
        # collector's reach so that full collections under load do not walk ~130k long-lived objects each time.
        gc.collect()
        gc.freeze()
        logger.info("api started", extra={"version": app.version, "env": settings.env.value})
        try:
            yield
        finally:
            try:
                await runtime.stop()  # committer drains, relay stops, bus drains (bounded), workers, engine
            finally:
                await app.state.http_client.aclose()
                app.state.runtime = None
                app.state.http_client = None
                logger.info("api stopped")

    return lifespan


lifespan = lifespan_with(RuntimeOverrides())


def _problem_media_types(schema: dict[str, Any]) -> None:
    """Error responses are documented as ``application/problem+json`` (FastAPI uses the route's media type)."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                content = response.get("content")
                if str(code)[:1] in {"4", "5"} and content:
                    media = next((m for m in content.values() if "schema" in m), next(iter(content.values())))
                    response["content"] = {PROBLEM_MEDIA_TYPE: media}


def _openapi_with_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _problem_media_types(schema)
            document_body_limit(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def create_app(settings: Settings | None = None, *, overrides: RuntimeOverrides | None = None) -> FastAPI:
    """Build the API. Without ``settings``: load them (may raise ConfigurationError) and configure logging.
    ``overrides``: what tests change in the runtime the lifespan bootstraps."""
    if settings is None:
        settings = load_settings()
        settings.require_service_secrets()
        settings.require_database_url()
        configure_logging(settings)
    version = app_version()

    app = FastAPI(
        title=TITLE,
        version=version,
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan if overrides is None else lifespan_with(overrides),
        responses=problem_responses(500),
        # the API description is public only where settings say so (not in production by default)
        openapi_url="/openapi.json" if settings.openapi_public else None,
        docs_url=None,  # FastAPI's /docs and /redoc load from a CDN: install_docs serves packaged assets
        redoc_url=None,
    )
    if settings.openapi_public:
        install_docs(app)
    app.state.settings = settings
    app.state.http_client = None
    app.state.runtime = None

    install_exception_handlers(app)
    app.include_router(health.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_dead_letters.router)
    app.include_router(admin_events.router)
    app.include_router(maintenance_router.router)
    app.include_router(labels_router.router)
    app.include_router(ingest.router)
    app.include_router(alert_rules_router.router)
    app.include_router(alerts_router.router)
    app.include_router(incidents_router.router)
    app.include_router(assets.router)
    app.include_router(sensors.router)
    app.include_router(readings.router)
    app.include_router(anomalies.router)
    app.include_router(webhooks_router)
    app.include_router(ml_router.router)
    app.include_router(reports_router)
    app.include_router(waveforms_router.router)

    # Key and body limit before the body is read; inside the HTTP metrics, so what the gate refuses (401, 413,
    # 429) is counted in http_requests_total, and inside RequestContextMiddleware, so its errors keep X-Request-ID.
    app.add_middleware(RequestGate)
    app.add_middleware(HttpMetricsMiddleware)  # grouped status, route templates; /health* and /metrics not counted
    app.add_middleware(RequestContextMiddleware)  # added last: outermost of our middleware
    app.openapi = _openapi_with_problems(app)  # type: ignore[method-assign]

    set_build_info(version, settings.env.value)
    return app


__all__ = ["TITLE", "RuntimeOverrides", "app_version", "create_app", "lifespan", "lifespan_with"]
