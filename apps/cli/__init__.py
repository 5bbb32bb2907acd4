"""``python -m apps.cli``: the one command-line entry point (local stack, servers, database, data).

This module only assembles: the typer ``app`` lives in ``apps/cli/app.py``; importing each command module
registers its commands on it. The commands import their heavy modules lazily, so ``--help`` stays quick.
"""

from __future__ import annotations

import typer

from apps.cli import (  # noqa: F401  (imported for their side effect: each registers its commands on `app`)
    datasets,
    dead_letters,
    diagnose,
    ingest,
    keys,
    labels,
    models,
    mqtt,
    notebook,
    rul,
    serve,
    simulate,
    stack,
    stack_detached,
    worker,
)
from apps.cli.app import app
from apps.cli.backtest import command as backtest_command  # noqa: F401  (the `backtest` command)

__all__ = ["app", "main"]


def main() -> None:
    from core.config import ConfigurationError

    try:
        app()
    except ConfigurationError as exc:  # e.g. production without DATABASE_URL, raised where the database is opened
        typer.echo(f"smart-maintenance: {exc}", err=True)
        raise SystemExit(2) from None
