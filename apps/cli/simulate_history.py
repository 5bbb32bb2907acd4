"""``simulate --start/--hours``: the live demo fleet in simulated time (:mod:`core.simulation.simulated`), sent
as history (``?backfill=true``) in time order, as fast as the API takes it.

Reading ``k`` (k = 1, 2, …) of every sensor is stamped ``start + k · cadence``; faults (``--faults``) follow the
live kinds and magnitudes, timed in simulated seconds (default: the first after 1 h, one every 90 min, each
lasting 30 min). A history seeded with ``python -m apps.cli seed --end START`` is continued without a gap.
Requests carry ``--batch-size`` readings at most (whole instants) and an ``Idempotency-Key``; failed requests are
retried with backoff (``apps.cli.backtest.client``). The last line is the same machine-readable summary as live mode.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from secrets import token_hex

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.simulation.catalogue import SensorSpec
from core.simulation.generator import floor_time, parse_utc
from core.simulation.simulated import FaultTiming, SimulatedFleet, fault_window, simulated_schedule

console = Console(highlight=False)


def _log(message: str) -> None:
    console.print(f"{time.strftime('%H:%M:%S')} {message}", markup=False)


def simulate_history(
    api_url: str,
    api_key: str,
    specs: Sequence[SensorSpec],
    start: str | None,
    hours: float | None,
    cadence_s: float,
    seed: int,
    faults: bool,
    timing: tuple[float | None, float | None, float | None],
    batch_size: int,
) -> int:
    """Send the span; answers the exit status (0 sent, 1 the API failed, 2 bad options)."""
    from apps.cli.backtest.client import ApiError, PlatformClient

    span_s = (hours if hours is not None else 24.0) * 3600.0
    defaults = FaultTiming()
    first, every, duration = timing
    try:
        if start is not None:
            begin = parse_utc(start)
        else:  # the span ends now
            begin = floor_time(datetime.now(UTC) - timedelta(seconds=span_s), timedelta(seconds=cadence_s))
        plan = FaultTiming(
            defaults.first_at_s if first is None else first,
            defaults.every_s if every is None else every,
            defaults.duration_s if duration is None else duration,
        )
        schedule = simulated_schedule(specs, span_s, plan) if faults else []
        fleet = SimulatedFleet(specs, begin, span_s, cadence_s=cadence_s, seed=seed, faults=schedule)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    total = fleet.steps * len(specs)
    _log(f"simulated time: {len(specs)} sensors from {begin.isoformat()} to {fleet.end.isoformat()}, one reading "
         f"every {cadence_s:g} s per sensor ({total} readings), as history to {api_url}")  # fmt: skip
    if schedule:
        _log(f"fault schedule ({len(schedule)} faults; showing the first 8):")
        for fault in schedule[:8]:
            at, until = fault_window(fault, begin)
            _log(f"  {at:%Y-%m-%d %H:%M:%S} – {until:%H:%M:%S} UTC {fault.kind} on {fault.sensor_id}")
    retries = 0

    def retried(message: str) -> None:
        nonlocal retries
        retries += 1
        _log(message)

    client = PlatformClient(api_url, api_key, on_retry=retried)
    run = token_hex(4)
    accepted = duplicates = rejected = sent = 0
    code = 0
    batch_s = max(1, batch_size // len(specs)) * cadence_s
    try:
        with Progress(
            TextColumn("simulated"), BarColumn(), MofNCompleteColumn(), TextColumn("readings"), TimeElapsedColumn(),
            console=console, transient=False,
        ) as progress:  # fmt: skip
            task = progress.add_task("send", total=total)
            for i, batch in enumerate(fleet.batches(batch_s)):
                answer = client.ingest(batch, f"simulate-{run}-{i:06d}", f"request {i + 1}")
                sent += len(batch)
                accepted += int(answer.get("accepted", 0))
                duplicates += int(answer.get("duplicates", 0))
                rejected += len(answer.get("rejected", []))
                progress.advance(task, len(batch))
    except ApiError as exc:
        console.print(str(exc), style="red", markup=False)
        code = 1
    finally:
        client.close()
    unsent = total - sent
    print(f"SIMULATE accepted={accepted} sent={sent} duplicates={duplicates} rejected={rejected} "
          f"errors={retries} unsent={unsent}", flush=True)  # fmt: skip
    return code


__all__ = ["simulate_history"]
