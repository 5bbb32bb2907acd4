"""Seed the demo fleet into DATABASE_URL: 15 sensors, 5 types, 600 readings each, injected faults.

    python scripts/seed_data.py [--end 2026-11-01T00:00:00Z] [--seed 42] [--force] [--readings-per-sensor 600]

Thin wrapper: the work is ``core.simulation.seed.seed_demo_fleet`` in one unit of work. Without ``--force`` the
run is skipped when the demo sensors are already seeded; see that module for re-run and top-up behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated

with contextlib.suppress(ImportError):  # imported as scripts.seed_data
    import _bootstrap  # noqa: F401  (run by path)

import typer
from rich.console import Console
from rich.table import Table

from core.config import Settings, load_settings
from core.simulation.generator import parse_utc
from core.simulation.seed import SeedReport, seed_demo_fleet
from scripts._bootstrap import in_unit_of_work, run_cli, usage_errors

app = typer.Typer(add_completion=False, help=__doc__)


async def run_seed(
    settings: Settings,
    *,
    end: datetime | None = None,
    seed: int = 42,
    force: bool = False,
    readings_per_sensor: int = 600,
) -> SeedReport:
    """Open an engine from ``settings``, seed in one unit of work (committed on success), dispose."""
    return await in_unit_of_work(
        settings,
        lambda session: seed_demo_fleet(
            session, end=end, seed=seed, force=force, readings_per_sensor=readings_per_sensor
        ),
    )


def print_report(report: SeedReport, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="Demo fleet seed", show_header=False)
    table.add_row("status", "skipped (already seeded; --force to top up)" if report.skipped else "seeded")
    table.add_row("end", report.end.isoformat().replace("+00:00", "Z"))
    table.add_row("seed", str(report.seed))
    table.add_row("assets", str(report.assets))
    table.add_row("sensors", f"{report.sensors} ({report.sensor_types} types, {report.sensors_created} new)")
    table.add_row("readings inserted", f"{report.readings_inserted:,} of {report.readings_generated:,}")
    table.add_row("faults recorded", f"{report.faults_recorded} of {report.faults_generated}")
    console.print(table)


@app.command()
def seed_command(
    end: Annotated[str | None, typer.Option(help="last reading time, ISO 8601 (UTC); default now")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
    force: Annotated[bool, typer.Option(help="write even when the demo fleet is already seeded")] = False,
    readings_per_sensor: Annotated[int, typer.Option(min=50, help="readings per sensor")] = 600,
) -> None:
    with usage_errors():
        settings = load_settings()
        end_at = parse_utc(end) if end else None
    report = asyncio.run(
        run_seed(settings, end=end_at, seed=seed, force=force, readings_per_sensor=readings_per_sensor)
    )
    print_report(report)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    return run_cli(app, argv, "seed_data.py")


if __name__ == "__main__":
    raise SystemExit(main())
