"""Fixtures of the maintenance API tests: a served app, admin and read keys, a plant (asset + sensor)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.config import Settings
from tests.api.auth_support import Key, create_key, serve_app
from tests.support.maintenance import Plant, connect, make_plant


@pytest.fixture
async def client(settings: Settings) -> Any:
    async with serve_app(settings) as (_, client):
        yield client


@pytest.fixture
async def admin(client: httpx.AsyncClient, settings: Settings) -> Key:
    return await create_key(client, settings, "admin")


@pytest.fixture
async def reader(client: httpx.AsyncClient, settings: Settings) -> Key:
    return await create_key(client, settings, "read")


@pytest.fixture
async def plant(settings: Settings) -> Plant:
    async with connect(settings) as conn:
        return await make_plant(conn)
