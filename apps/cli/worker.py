"""``python -m apps.cli worker [--agents anomaly,alerting,scheduling,notification,diagnosis]``: the agents as a process.

Runs when SM_BUS_URL is a NATS URL (docs/architecture/scaling.md): the worker consumes the JetStream stream's
partitions it holds for each of its agents (``core.events.consumer``), runs their handlers, publishes the events
they commit through its own outbox relay, and runs the periodic workers of its agents (no-data checks with
``alerting``, drift checks with ``anomaly``, webhook/e-mail delivery with ``notification``). Start as many as the
load needs; SIGTERM or Ctrl-C stops it after the batches in flight (bounded by SM_BUS_STOP_TIMEOUT_S) and gives
its partitions back at once; SIGUSR1 logs where each of its asyncio tasks waits (a diagnosis aid).
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer

from apps.cli.app import app
from apps.cli.common import cli_settings


@app.command("worker")
def worker(
    agents: Annotated[
        str | None,
        typer.Option(
            "--agents",
            help="comma-separated agents to run: anomaly, alerting, scheduling, notification, diagnosis (default: all)",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="serve /metrics on this port (default SM_WORKER_METRICS_PORT; 0: off)"),
    ] = None,
) -> None:
    """Run agents as a bus worker (needs SM_BUS_URL=nats://…): durable JetStream consumers, explicit ack."""
    from core.runtime.handlers import parse_agents

    settings = cli_settings()
    try:
        chosen = parse_agents(agents)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--agents") from None
    if not settings.bus_servers:
        typer.echo(
            "smart-maintenance worker: SM_BUS_URL is unset, so the agents run inside the API process (the in-process "
            "bus). Set SM_BUS_URL=nats://host:4222 on the API and the workers to run them here "
            "(docs/architecture/scaling.md).",
            err=True,
        )
        raise SystemExit(2)
    from core.observability.logging import configure_logging

    configure_logging(settings)
    if settings.worker_nice:  # ingest first on a shared host (SM_WORKER_NICE); raising niceness needs no privilege
        os.nice(settings.worker_nice)
    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    if port:
        from prometheus_client import start_http_server

        from core.observability.metrics import REGISTRY

        start_http_server(port, addr=settings.worker_metrics_host, registry=REGISTRY)
    raise SystemExit(asyncio.run(_run(settings, chosen)))


async def _run(settings: object, agents: tuple[str, ...]) -> int:
    import logging

    from core.config import Settings
    from core.runtime.bootstrap import bootstrap_worker

    assert isinstance(settings, Settings)
    log = logging.getLogger("apps.cli.worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)  # `kill -USR1 <pid>`: where every task waits, logged
    runtime = bootstrap_worker(settings, agents)
    starting = asyncio.ensure_future(runtime.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # SIGTERM while connecting: stop at once
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await runtime.stop()
        return 0
    if starting.exception() is not None:  # NATS or the database unreachable: one clear line, exit 1
        exc = starting.exception()
        log.error("worker could not start: %s: %s", type(exc).__name__, exc)
        stopping.cancel()
        await runtime.stop()
        return 1
    log.info("worker running", extra={"agents": list(agents), "bus": settings.bus_url})
    try:
        await stopping
    finally:
        await runtime.stop()
    return 0

def _dump_tasks() -> None:
    import io
    import logging

    out = io.StringIO()
    tasks = asyncio.all_tasks()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"--- {task.get_name()}\n")
        task.print_stack(limit=12, file=out)
    logging.getLogger("apps.cli.worker").warning("%d asyncio tasks:\n%s", len(tasks), out.getvalue())
