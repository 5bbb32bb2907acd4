"""Fixtures of the compose tests (tests/unit/test_compose_*.py): the parsed compose file, its services, the
.dockerignore rules, the Settings environment names and the commands of the project CLI."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from core.config import Settings
from tests.support.compose import load_compose, services, settings_env_names
from tests.support.dockerfiles import DockerIgnore

# the helpers of tests/support/stack.py assert like the tests that call them (imported after this conftest)
pytest.register_assert_rewrite("tests.support.stack")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def svcs(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return services(compose)


@pytest.fixture(scope="module")
def ignore() -> DockerIgnore:
    return DockerIgnore.load()


@pytest.fixture(scope="module")
def env_names() -> dict[str, str]:
    return settings_env_names(Settings)


@pytest.fixture(scope="module")
def cli_commands() -> dict[str, Any]:
    from apps.cli import app

    group = typer.main.get_command(app)
    commands = getattr(group, "commands", None)  # typer vendors click: duck-type the group
    assert isinstance(commands, dict), "apps.cli.app must be a group of commands"
    return dict(commands)
