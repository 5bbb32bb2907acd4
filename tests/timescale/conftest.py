"""Fixtures of the tests that need a real TimescaleDB: ``SM_TEST_TIMESCALE_URL`` names a server where the
timescaledb extension is available (preloaded); unset, these tests are skipped with that reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from core.config import Settings, load_settings
from tests.api.auth_support import serve_app
from tests.support.db import private_database
from tests.support.timescale import require_timescale_url, timescaledb_installed


@pytest.fixture(scope="session")
def timescale_admin_url() -> str:
    return require_timescale_url()


@pytest.fixture(scope="session")
def timescale_database_url(timescale_admin_url: str) -> Iterator[str]:
    """A database on the TimescaleDB server, migrated to head (the hypertable branch); dropped afterwards."""
    with private_database(timescale_admin_url, "sm_ts") as url:
        if not timescaledb_installed(url):
            pytest.fail(f"the migrations did not install timescaledb on {timescale_admin_url}: is it preloaded?")
        yield url


@pytest.fixture(scope="session")
def timescale_settings(timescale_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        env="test",
        database_url=timescale_database_url,
        mlflow_tracking_uri="http://127.0.0.1:9",
        data_dir=tmp_path_factory.mktemp("ts-data"),
        log_dir=tmp_path_factory.mktemp("ts-logs"),
        db_pool_size=10,
    )


@pytest.fixture(params=["plain", "timescale"])
def backend(request: pytest.FixtureRequest) -> Settings:
    """The suite's plain PostgreSQL, then the TimescaleDB server (skipped when ``SM_TEST_TIMESCALE_URL`` is unset)."""
    name = "settings" if request.param == "plain" else "timescale_settings"
    return request.getfixturevalue(name)


@pytest.fixture
async def client(backend: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # The agents may still be scoring back-filled readings at the end: stop without waiting for them (what they
    # have not handled stays in the outbox of this throw-away data).
    async with serve_app(backend.model_copy(update={"bus_stop_timeout_s": 2.0})) as (_, c):
        yield c
