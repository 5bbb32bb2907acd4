"""Request dependencies: the runtime and what it holds (settings, engine, one session + transaction per request).

The API's lifespan (``apps.api.main``) builds the process's ``core.runtime.bootstrap.Runtime`` and keeps it on
``app.state.runtime``; ``get_runtime`` / ``app_runtime`` are the one typed way routers, dependencies and
middleware reach it (settings, session factory, bus, relay, agents). ``app_settings`` gives the settings the app
was created with (the request gate needs them even where the lifespan has not run).

``SessionDep`` opens a session and a transaction with ``core.db.session.unit_of_work`` and commits it when the
endpoint returns (rolls back when it raises). It uses FastAPI's ``scope="function"`` so the commit happens
*before* the response is sent: a failing commit becomes an error response instead of a 200 for data that was
never stored. Services receive the session and only flush.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.session import unit_of_work
from core.errors import ServiceUnavailable
from core.runtime.runtime import Runtime

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="API key")


def app_settings(app: FastAPI) -> Settings:
    """The settings ``create_app`` was given (``app.state.settings``)."""
    settings = app.state.settings
    if not isinstance(settings, Settings):
        raise TypeError("app.state.settings is not a Settings object (an app not built by create_app)")
    return settings


def app_runtime(app: FastAPI) -> Runtime:
    """The app's runtime (``app.state.runtime``); 503 while the lifespan has not built it (or after shutdown)."""
    runtime = getattr(app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise ServiceUnavailable("the runtime is not initialised (the lifespan has not run)")
    return runtime


def get_runtime(request: Request) -> Runtime:
    return app_runtime(request.app)


def get_settings(request: Request) -> Settings:
    return app_settings(request.app)


def get_engine(request: Request) -> AsyncEngine:
    engine = app_runtime(request.app).engine
    if engine is None:  # a runtime on a session factory of the caller's (no engine of its own)
        raise ServiceUnavailable("the database engine is not initialised")
    return engine


def get_session_factory(request: Request) -> async_sessionmaker[AsyncSession]:
    return app_runtime(request.app).session_factory


async def get_session(
    factory: Annotated[async_sessionmaker[AsyncSession], Depends(get_session_factory)],
) -> AsyncIterator[AsyncSession]:
    """One session and one transaction for the request, committed by this dependency."""
    async with unit_of_work(factory) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


__all__ = [
    "API_KEY_HEADER",
    "EngineDep",
    "RuntimeDep",
    "SessionDep",
    "SettingsDep",
    "api_key_header",
    "app_runtime",
    "app_settings",
    "get_engine",
    "get_runtime",
    "get_session",
    "get_session_factory",
    "get_settings",
]
