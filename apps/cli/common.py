"""What every command of ``python -m apps.cli`` shares: settings (with the local stack's database) and a
transaction helper."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import ConfigurationError, Settings, load_settings

T = TypeVar("T")


def state_file(settings: Settings) -> Path:
    """Where a running ``up`` records its pid, status, URLs and database."""
    return settings.data_dir / "run" / "stack.json"


def running_stack() -> dict | None:
    """The state of the local stack if one is running (its process alive), else None."""
    try:
        path = state_file(load_settings())
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError, ConfigurationError):
        return None
    return state


def cli_settings() -> Settings:
    """Settings for a command; exit 2 with the message when they are invalid.

    With DATABASE_URL unset, a command run beside a ``make up`` stack uses that stack's database (the embedded
    PostgreSQL listens on a Unix socket whose address only the running stack knows).
    """
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if not settings.database_url_is_explicit:
        state = running_stack()
        if state and state.get("database_url"):
            settings = settings.model_copy(update={"database_url": state["database_url"]})
    return settings


async def in_transaction(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, pool_size: int = 1
) -> T:
    """Run ``work(session)`` in one transaction on a short-lived engine (committed here, by its opener)."""
    from core.db.session import create_engine, create_session_factory, unit_of_work

    engine = create_engine(settings, pool_size=pool_size, max_overflow=0)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()
