"""Settings: production guard, .env files, environment names, per-environment defaults, the API entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import (
    DEV_API_KEY,
    DEV_DATABASE_URL,
    DEV_WEBHOOK_SECRET,
    PROJECT_ROOT,
    ConfigurationError,
    Environment,
    load_settings,
)

SAFE_KEY = "k" * 32
SAFE_SECRET = "webhook-secret-for-tests-only"
SAFE_DB = "postgresql://sm:pw@db.internal:5432/sm"
ECOSYSTEM = ("DATABASE_URL", "MLFLOW_TRACKING_URI", "REDIS_URL", "API_BASE_URL")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No SM_*/ecosystem variables from the outer environment, and a working directory without a .env."""
    for name in list(os.environ):
        if name.startswith("SM_") or name.upper() in ECOSYSTEM:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("env", ["development", "test"])
def test_non_production_accepts_development_defaults(env: str) -> None:
    settings = load_settings(env=env)
    assert settings.env == Environment(env)
    assert settings.api_key.get_secret_value() == DEV_API_KEY
    assert settings.webhook_signing_secret.get_secret_value() == DEV_WEBHOOK_SECRET
    assert settings.database_url == DEV_DATABASE_URL
    assert settings.auto_register_sensors is True


def test_default_environment_is_development() -> None:
    assert load_settings().env is Environment.development


def test_production_refuses_every_development_default_naming_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_ENV", "production")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "SM_ENV=production" in message
    assert "SM_API_KEY is the development key" in message
    assert "SM_WEBHOOK_SIGNING_SECRET is the development secret" in message
    assert "DATABASE_URL is not set" in message
    assert DEV_API_KEY not in message  # the message names settings, it does not print secrets


@pytest.mark.parametrize(
    ("overrides", "named", "not_named"),
    [
        ({"webhook_signing_secret": SAFE_SECRET, "database_url": SAFE_DB}, "SM_API_KEY", "DATABASE_URL"),
        ({"api_key": SAFE_KEY, "database_url": SAFE_DB}, "SM_WEBHOOK_SIGNING_SECRET", "SM_API_KEY"),
        ({"api_key": SAFE_KEY, "webhook_signing_secret": SAFE_SECRET}, "DATABASE_URL", "SM_WEBHOOK"),
        (
            {"api_key": "short", "webhook_signing_secret": SAFE_SECRET, "database_url": SAFE_DB},
            "shorter than 24 characters",
            "development key",
        ),
    ],
)
def test_production_names_only_what_is_wrong(overrides: dict[str, str], named: str, not_named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(env="production", **overrides)
    assert named in str(info.value)
    assert not_named not in str(info.value)


def test_production_with_explicit_values_starts_without_auto_registration() -> None:
    settings = load_settings(
        env="production", api_key=SAFE_KEY, webhook_signing_secret=SAFE_SECRET, database_url=SAFE_DB
    )
    assert settings.auto_register_sensors is False
    explicit = load_settings(
        env="production",
        api_key=SAFE_KEY,
        webhook_signing_secret=SAFE_SECRET,
        database_url=SAFE_DB,
        auto_register_sensors=True,
    )
    assert explicit.auto_register_sensors is True
    assert load_settings(env="development", auto_register_sensors=False).auto_register_sensors is False


def test_dotenv_values_are_read_and_environment_wins(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_environment / ".env").write_text(
        "DATABASE_URL=postgresql://from-dotenv@127.0.0.1:5432/dotenv\n"
        "SM_API_PORT=9123\n"
        "SM_LOG_JSON=false\n"
        "MLFLOW_TRACKING_URI=http://mlflow.from.dotenv:5000\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.database_url == "postgresql://from-dotenv@127.0.0.1:5432/dotenv"
    assert settings.async_database_url == "postgresql+asyncpg://from-dotenv@127.0.0.1:5432/dotenv"
    assert settings.api_port == 9123
    assert settings.log_json is False
    assert settings.mlflow_tracking_uri == "http://mlflow.from.dotenv:5000"

    monkeypatch.setenv("SM_API_PORT", "9200")
    assert load_settings().api_port == 9200


def test_dotenv_can_satisfy_the_production_guard(isolated_environment: Path) -> None:
    (isolated_environment / ".env").write_text(
        f"SM_ENV=production\nSM_API_KEY={SAFE_KEY}\nSM_WEBHOOK_SIGNING_SECRET={SAFE_SECRET}\nDATABASE_URL={SAFE_DB}\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.env is Environment.production
    assert settings.api_key.get_secret_value() == SAFE_KEY


def test_invalid_values_are_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_API_PORT", "70000")
    monkeypatch.setenv("SM_READY_TIMEOUT_S", "0")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "api_port" in message and "ready_timeout_s" in message
    assert "Traceback" not in message


def test_url_forms_are_normalised() -> None:
    settings = load_settings(database_url="postgres://u:p@h:5432/d")
    assert settings.async_database_url == "postgresql+asyncpg://u:p@h:5432/d"
    assert settings.libpq_database_url == "postgres://u:p@h:5432/d".replace("postgres://", "postgresql://")


def test_create_app_refuses_production_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.api.main import create_app

    monkeypatch.setenv("SM_ENV", "production")
    with pytest.raises(ConfigurationError, match="SM_API_KEY"):
        create_app()


def test_api_entry_point_exits_2_with_message_and_no_traceback(isolated_environment: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k.upper() not in ECOSYSTEM}
    env |= {"SM_ENV": "production", "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "apps.api"],
        cwd=isolated_environment,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to start with SM_ENV=production" in result.stderr
    for name in ("SM_API_KEY", "SM_WEBHOOK_SIGNING_SECRET", "DATABASE_URL"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_openapi_is_public_by_default_except_in_production() -> None:
    assert load_settings(env="development").openapi_public is True
    production = load_settings(
        env="production",
        api_key="a-production-key-of-enough-length-0123",
        webhook_signing_secret="a-production-secret",
        database_url="postgresql://app@db:5432/sm",
    )
    assert production.openapi_public is False
    assert (
        load_settings(
            env="production",
            openapi_public=True,
            api_key="a-production-key-of-enough-length-0123",
            webhook_signing_secret="s",
            database_url="postgresql://app@db/sm",
        ).openapi_public
        is True
    )
