"""``backtest``: replay a wide CSV of a plant's history through the platform and report what it would have done
(logic in ``core.backtest``, the run in this package: ``platform``, ``client``, ``runner``, ``render``;
docs/architecture/backtest.md)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from apps.cli.app import app

if (
    TYPE_CHECKING
):  # the command imports them lazily (pandas, httpx, rich): `python -m apps.cli --help` stays quick
    from rich.console import Console

    from apps.cli.backtest.runner import Options
    from core.backtest.frame import ReplayFrame

EXAMPLE = (
    "python -m apps.cli backtest .data/datasets/ims/features/test1_per_file.csv --time-column timestamp "
    "--columns '_(rms|kurt)$' --asset-pattern '(Bearing\\d)' --sensor-type '_rms$=acceleration:g' "
    "--sensor-type '_kurt$=kurtosis' --report out.json"
)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command("backtest", epilog=f"Example: {EXAMPLE}")
def backtest(
    csv: Annotated[
        Path, typer.Argument(help="wide CSV: one timestamp column, one column per signal (header line first)")
    ],
    time_column: Annotated[
        str, typer.Option("--time-column", help="the timestamp column (ISO 8601), e.g. timestamp")
    ],
    columns: Annotated[
        str,
        typer.Option(
            "--columns",
            help="regex selecting the signal columns (searched in each name), e.g. '_(rms|kurt)$'",
        ),
    ],
    asset_pattern: Annotated[
        str,
        typer.Option(
            "--asset-pattern",
            help="regex whose first group, searched in a column name, names its asset, e.g. '(Bearing\\d)'; "
            "every selected column must match",
        ),
    ],
    sensor_type: Annotated[
        list[str],
        typer.Option(
            "--sensor-type",
            help="TYPE[:UNIT] for every column, or PATTERN=TYPE[:UNIT] (repeatable, first match wins), e.g. "
            "'_rms$=acceleration:g'; without :UNIT the type's canonical unit",
        ),
    ],
    report: Annotated[Path, typer.Option("--report", help="where to write the JSON report, e.g. out.json")],
    end: Annotated[
        str | None,
        typer.Option(
            help="replay up to this timestamp (inclusive; default: the file's last), e.g. 2003-11-20T00:00"
        ),
    ] = None,
    timezone: Annotated[
        str,
        typer.Option(
            help="IANA time zone of naive timestamps (aware ones keep their offset), e.g. Europe/Berlin"
        ),
    ] = "UTC",
    api_url: Annotated[
        str | None,
        typer.Option(
            help="replay into this running platform as it is, e.g. http://127.0.0.1:8000 (default: a private "
            "embedded database and API, removed afterwards)"
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="admin API key for --api-url (default SM_API_KEY)")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="readings per ingest request at most (whole rows; ≤ 10000)")
    ] = 10_000,
    settle_timeout: Annotated[
        float, typer.Option(min=1.0, help="seconds to wait for the agents to settle after the replay")
    ] = 600.0,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot/--no-plot",
            help="also draw every signal with its anomalies, alerts and work orders next to the report "
            "(out.json → out.png)",
        ),
    ] = True,
) -> None:
    """Replay a wide CSV of a plant's history through the ingest API in time order, wait until the agents settled,
    print the first anomaly / alert / work order per sensor and write the JSON report.

    Without --api-url the command starts its own embedded PostgreSQL and API (shipped defaults, historic timestamps
    accepted) and removes them afterwards. Exit status: 0 done, 1 the platform failed or did not settle, 2 bad
    arguments or file.
    """
    from rich.console import Console
    from rich.markup import escape

    from apps.cli.backtest.runner import Options, prepare
    from apps.cli.common import Unreachable, probe_http
    from core.backtest.specs import BacktestInputError

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    options = Options(
        csv=csv, time_column=time_column, columns=columns, asset_pattern=asset_pattern,
        sensor_types=list(sensor_type), report=report, end=end, timezone=timezone, api_url=api_url,
        api_key=api_key, batch_size=batch_size, settle_timeout_s=settle_timeout,
        plot=report.with_suffix(".png") if plot else None,
    )  # fmt: skip
    # --api-url: before reading the file, fail within seconds naming the address (not after minutes of retries)
    if api_url:
        try:
            probe_http("the API", api_url)
        except Unreachable as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None
    try:
        try:
            frame = prepare(options)
        except BacktestInputError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
        code = _run(options, frame, console)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: everything started was stopped")
        code = 130
    raise typer.Exit(code)


def _run(options: Options, frame: ReplayFrame, console: Console) -> int:
    from rich.markup import escape

    from apps.cli.backtest.client import ApiError, PlatformClient, SetupConflict
    from apps.cli.backtest.platform import LocalPlatform, PlatformError, tail
    from apps.cli.backtest.runner import Run, SettleTimeout, oldest
    from core.config import ConfigurationError, load_settings

    try:
        settings = load_settings()
    except ConfigurationError as exc:
        console.print(escape(str(exc)))
        return 2
    run = Run(options, frame, console)

    def fail(exc: Exception) -> int:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 2 if isinstance(exc, SetupConflict) else 1

    def retried(message: str) -> None:
        console.print(message, style="yellow", markup=False)

    try:
        if options.api_url:
            key = options.api_key or settings.api_key.get_secret_value()
            client = PlatformClient(options.api_url, key, on_retry=retried)
            try:
                run.execute(client)
            finally:
                client.close()
            return 0
        with LocalPlatform(settings, oldest=oldest(frame), say=run.say) as platform:
            client = PlatformClient(platform.url, platform.api_key, on_retry=retried)
            try:
                run.execute(client)
            except (ApiError, SettleTimeout):
                console.print(f"API log (last lines):\n{escape(tail(platform.log_path))}")
                raise
            finally:
                client.close()
        return 0
    except (ApiError, PlatformError, SettleTimeout) as exc:
        return fail(exc)
