"""``simulate``: stream live demo readings through the ingest API (logic in :mod:`core.simulation.live`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live

from apps.cli.app import app
from core.config import ConfigurationError, load_settings

if TYPE_CHECKING:  # imported by the command (pandas, ~1 s): every other command of the CLI starts faster
    from core.config import Settings
    from core.simulation.live import LiveSimulator
    from core.simulation.waveform_live import WaveformStreamer

console = Console(highlight=False)
#: Printed after a 401/403 with the configured key (``make up`` explains the failure from this line too).
KEY_HINT = (
    "the simulator's key SM_SIMULATOR_API_KEY was rejected: the API registers it as 'simulator' (scope ingest) at "
    "start-up, so the API and the simulator must see the same value; set SM_SIMULATOR_API_KEY in .env "
    "(generate one with `python -m apps.cli keys generate`) and restart (`make up`)."
)


def _log(message: str) -> None:
    console.print(f"{time.strftime('%H:%M:%S')} {message}")


@app.command("simulate")
def simulate(
    sensors: Annotated[int, typer.Option(min=1, max=10_000, help="number of sensors")] = 15,
    rate: Annotated[
        str | None,
        typer.Option(help="readings per second over all sensors: N/s, N/min, N/h (default SM_DEMO_RATE)"),
    ] = None,
    faults: Annotated[bool, typer.Option("--faults/--no-faults", help="inject faults on a schedule")] = False,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="stop after S seconds (default: run until Ctrl-C)")
    ] = None,
    fleet: Annotated[str, typer.Option(help="demo: sensor-001… of the seeded fleet; sim: sim-001…")] = "demo",
    api_url: Annotated[str | None, typer.Option(help="API base URL (default API_BASE_URL)")] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="API key with the ingest scope (default the simulator's key, SM_SIMULATOR_API_KEY)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed of the physics")] = 42,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="readings per request at most")] = 1000,
    senders: Annotated[int, typer.Option(min=1, max=64, help="concurrent requests")] = 4,
    fault_every: Annotated[
        float | None, typer.Option(help="seconds between two fault starts (live default 60, simulated 5400)")
    ] = None,
    fault_duration: Annotated[
        float | None, typer.Option(help="seconds a fault lasts (live default 30, simulated 1800)")
    ] = None,
    first_fault: Annotated[
        float | None, typer.Option(help="seconds before the first fault (live default 20, simulated 3600)")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="simulated time: the span starts here (ISO 8601, UTC); readings at start + k·cadence"
        ),
    ] = None,
    hours: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="simulated time: hours to simulate (default 24 with --start; without "
            "--start the span ends now)",
        ),
    ] = None,
    cadence: Annotated[
        float, typer.Option(min=0.1, help="simulated time: seconds between two readings of a sensor")
    ] = 10.0,
    waveforms: Annotated[
        bool,
        typer.Option(
            "--waveforms/--no-waveforms",
            help="live: also send vibration snapshots of the demo bearing (accel-m301-de; with --faults a defect "
            "develops on a schedule); registers that sensor when missing",
        ),
    ] = False,
    waveform_every: Annotated[float, typer.Option(min=1.0, help="seconds between two vibration snapshots")] = 10.0,
) -> None:
    """Stream realistic readings in real time through the ingest API (Ctrl-C stops), faults on a schedule.

    With --start or --hours: simulated time instead — the span's readings (and faults, timed in simulated
    seconds) are sent as history (?backfill=true) in time order, as fast as the API takes them."""
    from apps.cli.common import require_http
    from core.simulation.live import LiveSimulator, live_fleet, parse_rate
    from core.simulation.live_faults import fault_schedule

    try:
        settings = load_settings()
        per_s = parse_rate(rate or settings.demo_rate)
        specs = live_fleet(sensors, fleet)
    except (ConfigurationError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    url = api_url or settings.api_base_url
    require_http("the API", url)  # exit 1 within seconds, naming the address, if nothing answers there
    key = api_key or settings.simulator_api_key.get_secret_value()
    if start is not None or hours is not None:
        from apps.cli.simulate_history import simulate_history

        timing = (first_fault, fault_every, fault_duration)
        raise typer.Exit(
            simulate_history(url, key, specs, start, hours, cadence, seed, faults, timing, batch_size)
        )
    first_fault = 20.0 if first_fault is None else first_fault
    fault_every = 60.0 if fault_every is None else fault_every
    fault_duration = 30.0 if fault_duration is None else fault_duration
    horizon = duration if duration is not None else 7 * 24 * 3600.0
    schedule = (
        fault_schedule(specs, horizon, first_at_s=first_fault, every_s=fault_every, duration_s=fault_duration)
        if faults
        else []
    )
    sim = LiveSimulator(url, key, specs, per_s, faults=schedule, seed=seed, batch_size=batch_size,
                        senders=senders, on_log=_log)  # fmt: skip
    streamer = _waveform_streamer(settings, url, key, faults, waveform_every, seed) if waveforms else None
    _log(f"simulating {len(specs)} sensors ({specs[0].sensor_id}…{specs[-1].sensor_id}) at {per_s:g} readings/s "
         f"to {url}" + (f" for {duration:g} s" if duration else " until stopped"))  # fmt: skip
    if schedule:
        _log(f"fault schedule ({len(schedule)} faults; showing the first 8):")
        for f in schedule[:8]:
            _log(f"  {f.describe(sim.t0)}")
    code = asyncio.run(_run(sim, duration, streamer))
    if sim.fatal and api_key is None:
        console.print(KEY_HINT, soft_wrap=True, markup=False)
    raise typer.Exit(code)


def _waveform_streamer(
    settings: Settings, url: str, key: str, faults: bool, every_s: float, seed: int
) -> WaveformStreamer:
    from apps.cli.simulate_waveforms import bearing_signal, ensure_demo_sensor
    from core.simulation.waveform_live import WaveformPlan, WaveformStreamer

    try:
        _log(asyncio.run(ensure_demo_sensor(settings)))
    except Exception as exc:  # noqa: BLE001 - the command says why and stops
        console.print(f"[red]--waveforms: {exc}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    plan = WaveformPlan(faults=faults, every_s=every_s)
    _log(f"waveforms: a snapshot of {plan.sensor_id} every {every_s:g} s ({plan.n_samples} samples at "
         f"{plan.sample_rate_hz:g} Hz)" + (", bearing defects on a schedule" if faults else ""))  # fmt: skip
    return WaveformStreamer(url, key, plan, bearing_signal, seed=seed, on_log=_log)


async def _run(sim: LiveSimulator, duration: float | None, streamer: WaveformStreamer | None = None) -> int:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        sim.stop()
        if streamer is not None:
            streamer.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    snapshots = asyncio.create_task(streamer.run(duration)) if streamer is not None else None
    task = asyncio.create_task(sim.run(duration))
    announced: set[int] = set()
    live = (
        Live(sim.stats.line(), console=console, refresh_per_second=4, transient=False)
        if console.is_terminal
        else None
    )
    last_log = time.monotonic()
    with live if live is not None else contextlib.nullcontext():
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            elapsed = time.monotonic() - sim.stats.started
            for i, f in enumerate(sim.faults):
                if i not in announced and f.start_s <= elapsed:
                    announced.add(i)
                    (live.console.print if live is not None else _log)(f"fault started: {f.describe(sim.t0)}")
            if live is not None:
                live.update(sim.stats.line())
            elif time.monotonic() - last_log >= 10:
                _log(sim.stats.line())
                last_log = time.monotonic()
    stats = task.result()
    if streamer is not None and snapshots is not None:
        streamer.stop()
        waves = await snapshots
        _log("waveforms stopped: " + waves.line())
        print(f"WAVEFORMS sent={waves.sent} accepted={waves.accepted} errors={sum(waves.errors.values())}", flush=True)
        if streamer.fatal:
            console.print(f"[red]{streamer.fatal}[/]", soft_wrap=True)
    _log("stopped: " + stats.line() + f" unsent={stats.unsent}")
    if stats.rejected:
        _log("rejected by reason: " + ", ".join(f"{r}: {n}" for r, n in stats.rejected.most_common()))
    if stats.errors:
        _log("failed attempts (retried): " + ", ".join(f"{r}: {n}" for r, n in stats.errors.most_common()))
    # a machine-readable summary line for scripts and tests
    print(f"SIMULATE accepted={stats.accepted} sent={stats.sent} duplicates={stats.duplicates} "
          f"rejected={stats.rejected_total} errors={sum(stats.errors.values())} unsent={stats.unsent}",
          flush=True)  # fmt: skip
    if sim.fatal:
        console.print(f"[red]{sim.fatal}[/]", soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
