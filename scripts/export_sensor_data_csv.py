"""Write data/sensor_data.csv (and data/sensor_data_faults.csv alongside) from the database or the generator.

    python scripts/export_sensor_data_csv.py [--output data/sensor_data.csv]
    python scripts/export_sensor_data_csv.py --from-generator --end 2026-11-01T00:00:00Z --seed 42

Header: ``sensor_id,sensor_type,value,unit,timestamp,quality`` (ISO 8601 UTC, sorted by sensor then time).
``--from-generator`` needs no database. The format is documented in data/README.md and core.simulation.export.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

with contextlib.suppress(ImportError):  # imported as scripts.export_sensor_data_csv
    import _bootstrap  # noqa: F401  (run by path)

import typer

from core.config import Settings, load_settings
from core.simulation.export import (
    DEFAULT_READINGS_PATH,
    export_from_database,
    export_from_generator,
    faults_path_for,
)
from core.simulation.generator import parse_utc
from scripts._bootstrap import in_unit_of_work, run_cli, usage_errors

app = typer.Typer(add_completion=False, help=__doc__)


async def export_database(settings: Settings, output: Path, faults_output: Path) -> tuple[int, int]:
    return await in_unit_of_work(
        settings, lambda session: export_from_database(session, output, faults_output)
    )


@app.command()
def export_command(
    output: Annotated[Path, typer.Option(help="readings CSV")] = DEFAULT_READINGS_PATH,
    faults_output: Annotated[
        Path | None, typer.Option(help="faults CSV; default <output>_faults.csv")
    ] = None,
    from_generator: Annotated[bool, typer.Option(help="generate instead of reading the database")] = False,
    end: Annotated[str | None, typer.Option(help="generator: last reading time, ISO 8601 UTC")] = None,
    seed: Annotated[int, typer.Option(help="generator: random seed")] = 42,
    readings_per_sensor: Annotated[int, typer.Option(min=50, help="generator: readings per sensor")] = 600,
) -> None:
    faults_output = faults_output or faults_path_for(output)
    with usage_errors():
        if from_generator:
            end_at = parse_utc(end) if end else None
            counts = export_from_generator(
                output, faults_output, end=end_at, seed=seed, readings_per_sensor=readings_per_sensor
            )
        else:
            counts = asyncio.run(export_database(load_settings(), output, faults_output))
    typer.echo(f"wrote {counts[0]:,} readings to {output} and {counts[1]} faults to {faults_output}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    return run_cli(app, argv, "export_sensor_data_csv.py")


if __name__ == "__main__":
    raise SystemExit(main())
