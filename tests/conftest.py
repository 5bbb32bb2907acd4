"""Suite-wide fixtures: one real PostgreSQL database per test run, migrated with ``alembic upgrade head``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Settings, load_settings
from tests.support.db import create_database, drop_database, upgrade
from tests.support.nats import NatsServer, nats_server
from tests.support.timescale import timescaledb_installed

PLAIN_POSTGRES_SKIP = "assumes plain PostgreSQL: the test database has TimescaleDB"


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
def timescaledb_in_test_database(database_url: str) -> bool:
    """Whether the run's test database has the timescaledb extension (the migrations install it wherever the
    server offers it, so the databases tests create on the same server have it too)."""
    return timescaledb_installed(database_url)


@pytest.fixture(autouse=True)
def _skip_plain_postgres_tests_on_timescaledb(request: pytest.FixtureRequest) -> None:
    """Tests marked ``plain_postgres`` (they assume the plain branch of the migrations) are skipped when the
    test database has TimescaleDB."""
    if request.node.get_closest_marker("plain_postgres") and request.getfixturevalue(
        "timescaledb_in_test_database"
    ):
        pytest.skip(PLAIN_POSTGRES_SKIP)


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


_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _fluent_uris() -> tuple[str | None, str | None]:
    if "mlflow" not in sys.modules:
        return None, None
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return tracking_utils._tracking_uri, registry_utils._registry_uri


@pytest.fixture(autouse=True)
def _isolate_mlflow_fluent_uris() -> Iterator[None]:
    """No test leaks MLflow's fluent tracking/registry URIs (process globals, exported as environment variables)
    into later tests: a leaked registry URI sends another test's registrations to a store it never reads."""
    env = {key: os.environ.get(key) for key in _MLFLOW_ENV}
    before = _fluent_uris()
    yield
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri, registry_utils._registry_uri = before


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A private NATS JetStream server of this test's own (free loopback port, temporary store)."""
    with nats_server(tmp_path / "nats") as server:
        yield server
