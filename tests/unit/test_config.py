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

SAFE_KEY = "Zq8rT2vLw5NcX1bHy7KdF3mPj9sGa4Ue"
SAFE_SECRET = "Wm3nB8xQ2rV7tK5yH1cJ6dL9fP4sZ0gA-webhook"
SAFE_CONSOLE = "Cn5Rk2Wq8Tz3Lp7Yv1Bx4Hs9Df6Jm0Ga-console"
SAFE = {"api_key": SAFE_KEY, "webhook_signing_secret": SAFE_SECRET, "console_api_key": SAFE_CONSOLE}
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
        load_settings().require_service_secrets()
    message = str(info.value)
    assert "SM_ENV=production" in message
    for name in ("SM_API_KEY", "SM_WEBHOOK_SIGNING_SECRET", "SM_CONSOLE_API_KEY"):
        assert f"{name} is the development default" in message
    assert DEV_API_KEY not in message  # the message names settings, it does not print secrets
    # the database is checked where it is opened (the API, migrations, notebooks), not by every process
    assert "DATABASE_URL" not in message


def test_production_database_is_required_only_where_it_is_opened() -> None:
    settings = load_settings(env="production", **SAFE)
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set"):
        settings.require_database_url()
    from core.db.session import create_engine

    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set"):
        create_engine(settings)
    load_settings(env="production", database_url=SAFE_DB, **SAFE).require_database_url()
    load_settings(env="development").require_database_url()  # the development default is fine there


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("short-Secret-1", "shorter than 24 characters"),
        ("a" * 64, "too predictable"),
        ("passwordpasswordpasswordpassword", "too predictable"),
        ("abababababababababababababababab", "too predictable"),
        ("012345678901234567890123", "too predictable"),
    ],
)
def test_production_refuses_weak_secrets_without_echoing_them(secret: str, reason: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(env="production", **{**SAFE, "webhook_signing_secret": secret}).require_service_secrets()
    message = str(info.value)
    assert f"SM_WEBHOOK_SIGNING_SECRET is {reason}" in message or (
        "SM_WEBHOOK_SIGNING_SECRET" in message and reason in message
    )
    assert secret not in message
    assert "SM_API_KEY" not in message


def test_processes_without_secrets_load_production_settings() -> None:
    # MLflow and the console get no platform secrets (compose passes them only to the API): their settings load
    settings = load_settings(env="production")
    assert settings.env is Environment.production
    load_settings(env="production", **SAFE).require_service_secrets()


def test_generated_secrets_pass_the_entropy_screen() -> None:
    import secrets as stdlib_secrets

    from core.secret_strength import MIN_SECRET_BITS, secret_bits

    for _ in range(200):
        assert secret_bits(stdlib_secrets.token_urlsafe(24)) >= MIN_SECRET_BITS
        assert secret_bits(stdlib_secrets.token_hex(24)) >= MIN_SECRET_BITS


@pytest.mark.parametrize(
    ("overrides", "named", "not_named"),
    [
        ({**SAFE, "api_key": DEV_API_KEY}, "SM_API_KEY", "SM_WEBHOOK"),
        ({**SAFE, "webhook_signing_secret": DEV_WEBHOOK_SECRET}, "SM_WEBHOOK_SIGNING_SECRET", "SM_API_KEY"),
        ({**SAFE, "console_api_key": "c" * 40}, "SM_CONSOLE_API_KEY", "SM_API_KEY"),
        ({**SAFE, "api_key": "short"}, "shorter than 24 characters", "development default"),
    ],
)
def test_production_names_only_what_is_wrong(overrides: dict[str, str], named: str, not_named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(env="production", database_url=SAFE_DB, **overrides).require_service_secrets()
    assert named in str(info.value)
    assert not_named not in str(info.value)


def test_production_with_explicit_values_starts_without_auto_registration() -> None:
    settings = load_settings(env="production", database_url=SAFE_DB, **SAFE)
    assert settings.auto_register_sensors is False
    explicit = load_settings(env="production", database_url=SAFE_DB, auto_register_sensors=True, **SAFE)
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
        f"SM_ENV=production\nSM_API_KEY={SAFE_KEY}\nSM_WEBHOOK_SIGNING_SECRET={SAFE_SECRET}\n"
        f"SM_CONSOLE_API_KEY={SAFE_CONSOLE}\nDATABASE_URL={SAFE_DB}\n",
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
    for name in ("SM_API_KEY", "SM_WEBHOOK_SIGNING_SECRET", "SM_CONSOLE_API_KEY"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_openapi_is_public_by_default_except_in_production() -> None:
    assert load_settings(env="development").openapi_public is True
    production = load_settings(env="production", database_url="postgresql://app@db:5432/sm", **SAFE)
    assert production.openapi_public is False
    assert load_settings(env="production", openapi_public=True, **SAFE).openapi_public is True
