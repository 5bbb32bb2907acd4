"""The typer application every command module registers its commands on (``@app.command``).

It imports no command module: ``apps/cli/__init__.py`` assembles them, so the command modules and the package do
not import each other.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="smart-maintenance",
    help="Smart Maintenance command line: run the stack, the servers, migrations and data jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
