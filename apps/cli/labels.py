"""``python -m apps.cli export-labels [--output FILE.csv] [--since ISO]``: the labels of ``GET /api/v1/labels``
(one row per completed maintenance task) as CSV for retraining; stdout when no file is given."""

from __future__ import annotations

import asyncio
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from apps.cli.app import app
from apps.cli.common import cli_settings, in_transaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

PAGE_SIZE = 1000


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        typer.echo(f"error: --since {value!r} is not an ISO 8601 date or timestamp", err=True)
        raise typer.Exit(2) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return "" if value is None else value


@app.command("export-labels")
def export_labels(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV file to write (default: stdout)")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="only tasks completed at or after this time (ISO 8601; UTC if no offset)"),
    ] = None,
) -> None:
    """Export the labels (completed maintenance tasks with their alert window and outcome) as CSV."""
    from core.maintenance.schemas import LABEL_CSV_COLUMNS
    from core.maintenance.service import MaintenanceService

    since_at = _parse_since(since)

    async def work(session: AsyncSession) -> list[list[Any]]:
        service = MaintenanceService(session)
        rows: list[list[Any]] = []
        offset = 0
        while True:
            page, _ = await service.labels(since=since_at, limit=PAGE_SIZE, offset=offset)
            rows.extend([_cell(getattr(r, c)) for c in LABEL_CSV_COLUMNS] for r in page)
            if len(page) < PAGE_SIZE:
                return rows
            offset += PAGE_SIZE

    rows = asyncio.run(in_transaction(cli_settings(), work))

    def write(stream: TextIO) -> None:
        writer = csv.writer(stream)
        writer.writerow(LABEL_CSV_COLUMNS)
        writer.writerows(rows)

    if output is None:
        write(sys.stdout)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="", encoding="utf-8") as stream:
        write(stream)
    typer.echo(f"wrote {len(rows)} labels to {output}", err=True)
