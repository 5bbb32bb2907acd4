"""``python -m apps.cli worker [--agents anomaly,alerting,scheduling,notification]``: the agents as a process.

Runs when SM_BUS_URL is a NATS URL (docs/architecture/scaling.md): the worker consumes the JetStream stream's
partitions it holds for each of its agents (``core.events.consumer``), runs their handlers, publishes the events
they commit through its own outbox relay, and runs the periodic workers of its agents (no-data checks with
``alerting``, drift checks with ``anomaly``, webhook/e-mail delivery with ``notification``). Start as many as the
load needs; SIGTERM or Ctrl-C stops it after the batches in flight (bounded by SM_BUS_STOP_TIMEOUT_S) and gives
its partitions back at once.
"""

from __future__ import annotations

import asyncio
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
            help="comma-separated agents to run: anomaly, alerting, scheduling, notification (default: all)",
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
    runtime = bootstrap_worker(settings, agents)
    try:
        await runtime.start()
    except Exception as exc:  # noqa: BLE001 - NATS or the database unreachable: one clear line, exit 1
        log.error("worker could not start: %s: %s", type(exc).__name__, exc)
        await runtime.stop()
        return 1
    log.info("worker running", extra={"agents": list(agents), "bus": settings.bus_url})
    try:
        await stop.wait()
    finally:
        await runtime.stop()
    return 0
