"""``python -m apps.cli``: the one command-line entry point (local stack, servers, database, data)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="smart-maintenance",
    help="Smart Maintenance command line: run the stack, the servers, migrations and data jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from apps.cli import (  # noqa: F401  (modules register their commands on `app`)
        backtest,
        datasets,
        dead_letters,
        diagnose,
        ingest,
        keys,
        labels,
        models,
        notebook,
        serve,
        simulate,
        stack,
        stack_detached,
    )


_register()


def main() -> None:
    from core.config import ConfigurationError

    try:
        app()
    except ConfigurationError as exc:  # e.g. production without DATABASE_URL, raised where the database is opened
        typer.echo(f"smart-maintenance: {exc}", err=True)
        raise SystemExit(2) from None
