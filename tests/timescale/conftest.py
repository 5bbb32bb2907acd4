"""Fixtures of the tests that need a real TimescaleDB: ``SM_TEST_TIMESCALE_URL`` names a server where the
timescaledb extension is available (preloaded); unset, these tests are skipped with that reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.config import Settings, load_settings
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
