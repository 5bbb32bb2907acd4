"""Data commands: ``ingest-csv`` (COPY backfill with a progress bar) and ``purge-idempotency``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from apps.cli.app import app
from apps.cli.common import cli_settings, require_database
from core.config import Settings
from core.ingest.schemas import DEFAULT_BACKFILL_BATCH_SIZE

if TYPE_CHECKING:
    from core.ingest.backfill import BackfillReport

#: Rejected lines printed in the summary (all of them go to --rejects when given).
MAX_PRINTED_REJECTS = 50


def _settings() -> Settings:
    return cli_settings()


async def _backfill(settings: Settings, path: Path, batch_size: int, console: Console) -> BackfillReport:
    from core.db.session import create_engine, create_session_factory
    from core.ingest.backfill import count_data_lines
    from core.ingest.service import IngestService

    total = count_data_lines(path)
    engine = create_engine(settings)
    try:
        await require_database(engine, settings)  # one line naming the address when it does not answer
        with Progress(
            TextColumn("[bold]ingest[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task(path.name, total=total)
            return await IngestService(create_session_factory(engine), settings).backfill_csv(
                path,
                batch_size=batch_size,
                progress=lambda lines: progress.advance(task, lines),
            )
    finally:
        await engine.dispose()


@app.command("ingest-csv")
def ingest_csv(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="rows per COPY + transaction")] = (
        DEFAULT_BACKFILL_BATCH_SIZE
    ),
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="write every rejected line (line,reason) to this CSV")
    ] = None,
) -> None:
    """Backfill readings from a CSV (sensor_id,sensor_type,value,unit,timestamp,quality) through COPY.

    Sensors are registered with the CSV's type. Exit status 1 when some lines were rejected (listed).
    """
    from core.ingest.backfill import CsvHeaderError

    settings = _settings()
    console = Console(highlight=False)
    try:
        report = asyncio.run(_backfill(settings, file, batch_size, console))
    except CsvHeaderError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    console.print(
        f"rows read: {report.rows_read}  inserted: {report.inserted}  duplicates: {report.duplicates}  "
        f"rejected: {len(report.rejected)}  batches: {report.batches}"
    )
    for line, reason in report.rejected[:MAX_PRINTED_REJECTS]:
        console.print(f"  line {line}: {reason}", markup=False)
    if len(report.rejected) > MAX_PRINTED_REJECTS:
        console.print(f"  … and {len(report.rejected) - MAX_PRINTED_REJECTS} more (use --rejects FILE)")
    if rejects is not None:
        import csv

        with rejects.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "reason"])
            writer.writerows(report.rejected)
    if report.rejected:
        raise typer.Exit(1)


@app.command("purge-idempotency")
def purge_idempotency() -> None:
    """Delete expired idempotency keys (the API also does it periodically)."""
    settings = _settings()

    async def run() -> int:
        from core.db.session import create_engine, create_session_factory
        from core.ingest.idempotency import purge_expired_keys

        engine = create_engine(settings)
        try:
            await require_database(engine, settings)
            return await purge_expired_keys(create_session_factory(engine))
        finally:
            await engine.dispose()

    typer.echo(f"purged {asyncio.run(run())} expired idempotency keys")
