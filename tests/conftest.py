"""Suite-wide fixtures: one real PostgreSQL database per test run, migrated with ``alembic upgrade head``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.config import Settings, load_settings
from tests.support.db import create_database, drop_database, upgrade


@pytest.fixture(scope="session")
def admin_database_url() -> str:
    return load_settings().test_admin_database_url


@pytest.fixture(scope="session")
def database_url(admin_database_url: str) -> Iterator[str]:
    """libpq URL of a fresh database migrated to head; dropped at the end of the run."""
    url = create_database(admin_database_url)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(admin_database_url, url)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the test database; MLflow points at a closed port unless a test starts one."""
    return load_settings(
        env="test",
        database_url=database_url,
        mlflow_tracking_uri="http://127.0.0.1:9",
        data_dir=tmp_path_factory.mktemp("data"),
        log_dir=tmp_path_factory.mktemp("logs"),
        db_pool_size=5,
    )
