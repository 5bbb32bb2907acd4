"""Variable names in docker-compose.yml, the Dockerfiles and .env.example are Settings fields (or documented compose
variables), and .env.example ships blank secrets that the settings refuse until they are filled in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.config import ConfigurationError, Settings
from tests.support.compose import (
    ENV_EXAMPLE,
    PROJECT_ROOT,
    interpolated_names,
    parse_env_file,
    passed_through,
    service_environment,
    settings_from_env,
)
from tests.support.dockerfiles import (
    Dockerfile,
)
from tests.support.stack import (
    APP_SERVICES,
    DOCKERFILES,
    container_settings,
)

#: Variables that are not Settings fields, and who reads them.
COMPOSE_ONLY = {
    "POSTGRES_USER": "db image and compose (builds DATABASE_URL)",
    "POSTGRES_PASSWORD": "db image and compose (builds DATABASE_URL)",
    "POSTGRES_DB": "db image and compose (builds DATABASE_URL)",
    "NOTEBOOK_FILE": "notebook_runner's command",
    "APP_UID": "compose build argument: UID of the image user",
    "SM_DATASETS_DIR": "notebook_runner: host folder of the gauntlet datasets",
    "GF_SECURITY_ADMIN_PASSWORD": "grafana: admin password of the first start",
    "API_HOST_PORTS": "api: host port or range (one port per replica) compose publishes",
}
DB_IMAGE_ENV = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "TIMESCALEDB_TELEMETRY"}
GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
SECRETS = ("SM_API_KEY", "SM_CONSOLE_API_KEY", "SM_WEBHOOK_SIGNING_SECRET", "POSTGRES_PASSWORD")
#: Keys and secrets a deployer generates: each has a "generate with: ..." comment just above it.
GENERATED = ("SM_API_KEY", "SM_CONSOLE_API_KEY", "SM_WEBHOOK_SIGNING_SECRET")


# --- settings names -----------------------------------------------------------------------------------------------
def test_compose_environment_names_are_settings(
    svcs: dict[str, dict[str, Any]], env_names: dict[str, str]
) -> None:
    for name in APP_SERVICES:
        unknown = {k for k in service_environment(svcs[name]) if k not in env_names and k not in COMPOSE_ONLY}
        assert not unknown, f"{name}: {sorted(unknown)} are not Settings fields (core/config.py)"
        container_settings(svcs[name])  # every value validates
    unknown_db = set(service_environment(svcs["db"])) - DB_IMAGE_ENV
    assert not unknown_db, f"db: unexpected variables {unknown_db}"


def test_image_env_sm_names_are_settings(env_names: dict[str, str]) -> None:
    for name in DOCKERFILES:
        for stage in Dockerfile.load(PROJECT_ROOT / name).stages:
            unknown = {k for k in stage.env() if k.startswith("SM_") and k not in env_names}
            assert not unknown, f"{name}: {sorted(unknown)} are not Settings fields"


def test_env_example_names_are_settings_or_compose_variables(env_names: dict[str, str]) -> None:
    lines = parse_env_file(ENV_EXAMPLE)
    assert lines, ".env.example is empty"
    unknown = sorted({ln.name for ln in lines if ln.name not in env_names and ln.name not in COMPOSE_ONLY})
    assert not unknown, f".env.example: {unknown} are neither Settings fields nor compose variables"
    dupes = sorted({ln.name for ln in lines if sum(o.name == ln.name for o in lines) > 1})
    assert not dupes, f".env.example: {dupes} appear twice"


def test_compose_variables_are_documented_and_used(compose: dict[str, Any]) -> None:
    documented = {ln.name for ln in parse_env_file(ENV_EXAMPLE)}
    used = interpolated_names(compose)
    used |= {name for svc in compose["services"].values() for name in passed_through(svc)}
    assert used <= documented, f"docker-compose.yml uses {sorted(used - documented)}, not in .env.example"
    dead = {n for n in documented & set(COMPOSE_ONLY) if n not in used}
    assert not dead, f".env.example documents {sorted(dead)} but compose never uses them"


def test_env_example_has_blank_secrets_and_says_how_to_generate_them() -> None:
    lines = parse_env_file(ENV_EXAMPLE)
    by_name = {ln.name: ln for ln in lines}
    text = ENV_EXAMPLE.read_text().splitlines()
    for name in SECRETS:
        assert name in by_name and not by_name[name].commented, f"{name} must be an active line to fill in"
        assert by_name[name].value == "", f"{name} must be blank in the example, not a usable secret"
    for name in GENERATED:
        lineno = by_name[name].lineno
        assert any(GENERATE_HINT in line for line in text[max(0, lineno - 3) : lineno - 1]), (
            f"{name} needs a 'generate with: ...' comment just above it"
        )


def test_env_example_is_refused_until_the_secrets_are_filled_in(tmp_path: Path) -> None:
    env = {ln.name: ln.value for ln in parse_env_file(ENV_EXAMPLE) if not ln.commented}
    assert env.get("SM_ENV") == "production", "the example is for deployments: SM_ENV=production"
    settings = settings_from_env(Settings, {}, env_file=ENV_EXAMPLE)  # MLflow and the console load it
    with pytest.raises(ConfigurationError, match="SM_API_KEY"):
        settings.require_service_secrets()  # the API, which holds the secrets, refuses to start


def test_env_example_values_validate(tmp_path: Path) -> None:
    """Every value, also the commented examples, is valid for its setting (with development secrets)."""
    lines = parse_env_file(ENV_EXAMPLE)
    uncommented = tmp_path / "env"
    uncommented.write_text("".join(f"{ln.name}={ln.value}\n" for ln in lines))
    blank_secrets = dict.fromkeys(("SM_API_KEY", "SM_WEBHOOK_SIGNING_SECRET"), "x" * 32)
    settings = settings_from_env(Settings, {**blank_secrets, "SM_ENV": "development"}, env_file=uncommented)
    assert settings.env.value == "development"
