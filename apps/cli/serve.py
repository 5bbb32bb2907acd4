"""Server and job commands: each replaces the current process (signals reach the server directly)."""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
from datetime import datetime
from typing import Annotated

import typer

from apps.cli.app import app
from apps.cli.commands import mlflow_command, mlflow_environment, ui_command
from apps.cli.common import cli_settings, in_transaction
from core.config import Settings


def _settings() -> Settings:
    return cli_settings()


def _exec(cmd: list[str], env: dict[str, str] | None = None) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, {**os.environ, **(env or {})})


@app.command("serve-api")
def serve_api() -> None:
    """Run the API (uvicorn, factory apps.api.main:create_app) on SM_API_HOST:SM_API_PORT."""
    runpy.run_module("apps.api", run_name="__main__", alter_sys=True)


@app.command("serve-ui")
def serve_ui() -> None:
    """Run the Streamlit console on SM_UI_HOST:SM_UI_PORT (it talks to API_BASE_URL only)."""
    _exec(ui_command(_settings()))


@app.command("serve-mlflow")
def serve_mlflow() -> None:
    """Run the MLflow tracking server and registry (sqlite backend and artifacts under SM_DATA_DIR)."""
    settings = _settings()
    if settings.mlflow_backend_store_uri is None or settings.mlflow_artifacts_destination is None:
        (settings.data_dir / "mlflow" / "artifacts").mkdir(parents=True, exist_ok=True)
    _exec(mlflow_command(settings), mlflow_environment(settings))


@app.command("migrate")
def migrate(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply the Alembic migrations (``alembic upgrade head``) to DATABASE_URL."""
    from core.db.admin import upgrade

    _settings()
    upgrade(revision=revision)


@app.command("seed")
def seed(
    end: Annotated[datetime | None, typer.Option(help="last reading time (UTC); default now")] = None,
    seed_value: Annotated[int, typer.Option("--seed", help="random seed")] = 42,
    force: Annotated[bool, typer.Option(help="insert even when the demo fleet is already seeded")] = False,
) -> None:
    """Create the demo fleet: 15 sensors, 5 types, 600 readings each, injected faults with ground truth."""
    asyncio.run(_seed(_settings(), end=end, seed=seed_value, force=force))


async def _seed(settings: Settings, *, end: datetime | None, seed: int, force: bool) -> None:
    from core.simulation.seed import seed_demo_fleet

    report = await in_transaction(
        settings, lambda session: seed_demo_fleet(session, end=end, seed=seed, force=force)
    )
    typer.echo(f"seed: {report}")
