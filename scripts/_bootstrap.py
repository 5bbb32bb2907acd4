"""Make the project importable when a script is run by path (``python scripts/x.py``), and the pieces every
script's command line shares: :func:`usage_errors`, :func:`in_unit_of_work` and :func:`run_cli`.

Scripts import it first (``import _bootstrap`` by path, which puts the project root on ``sys.path``), then take the
helpers from ``scripts._bootstrap``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

if TYPE_CHECKING:
    import typer
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.config import Settings

T = TypeVar("T")


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn a configuration error or a bad argument value into ``error: …`` on stderr and exit status 2."""
    import typer

    from core.config import ConfigurationError

    try:
        yield
    except (ConfigurationError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


async def in_unit_of_work(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Open an engine from ``settings``, run ``work(session)`` in one unit of work (committed on success) and
    dispose of the engine."""
    from core.db.session import create_engine, create_session_factory, unit_of_work

    engine = create_engine(settings)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


def run_cli(app: typer.Typer, argv: list[str] | None, prog_name: str) -> int:
    """Run ``app`` with ``argv`` (default ``sys.argv[1:]``) and return its exit status instead of exiting."""
    try:
        app(args=argv if argv is not None else sys.argv[1:], prog_name=prog_name)
    except SystemExit as exc:  # typer ends every run with SystemExit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
