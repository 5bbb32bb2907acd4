"""Helpers of the API-key tests: create keys through the admin API, revoke them behind the API's back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx
from fastapi import FastAPI

from apps.api.main import create_app
from core.auth.keys import ApiKeyService
from core.auth.models import ApiKey
from core.auth.repository import ApiKeyRepository
from core.config import Settings
from core.db.session import create_engine, create_session_factory, unit_of_work
from tests.api.conftest import serve

MISSING_ID = 999_999_999


def bootstrap_headers(settings: Settings) -> dict[str, str]:
    return {"X-API-Key": settings.api_key.get_secret_value()}


@dataclass(frozen=True)
class Key:
    id: int
    name: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.secret}


async def create_key(
    client: httpx.AsyncClient, settings: Settings, *scopes: str, name: str | None = None
) -> Key:
    name = name or f"test-{'-'.join(scopes)}-{uuid.uuid4().hex[:8]}"
    response = await client.post(
        "/api/v1/admin/api-keys",
        json={"name": name, "scopes": list(scopes)},
        headers=bootstrap_headers(settings),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Key(id=body["id"], name=body["name"], secret=body["key"])


async def revoke_in_database(settings: Settings, key_id: int) -> None:
    """Revoke as another process (the CLI, another replica) would: the API's cache is not told."""
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            await ApiKeyService(session).revoke(key_id)
    finally:
        await engine.dispose()


async def key_row(settings: Settings, key_id: int) -> ApiKey | None:
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            return await ApiKeyRepository(session).get(key_id)
    finally:
        await engine.dispose()


async def set_last_used(settings: Settings, key_id: int, value: datetime) -> None:
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            row = await ApiKeyRepository(session).get(key_id)
            assert row is not None
            row.last_used_at = value
    finally:
        await engine.dispose()


@asynccontextmanager
async def serve_app(
    settings: Settings, customize: Callable[[FastAPI], None] | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    if customize is not None:
        customize(app)
    async with serve(app) as client:
        yield app, client


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
