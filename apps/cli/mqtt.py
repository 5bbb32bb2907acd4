"""``python -m apps.cli mqtt-bridge``: MQTT readings → the ingest service (docs/architecture/mqtt.md).

Subscribes with QoS 1 and a persistent session (client id SM_MQTT_CLIENT_ID) to
``<SM_MQTT_TOPIC_PREFIX>/<SM_MQTT_SITE>/+/readings`` and writes every message through the ingest service the API
uses (same validation, de-duplication on (sensor, timestamp), ``ReadingsIngested`` in the outbox); a message is
acknowledged only after its readings are committed. Refused messages are answered on
``…/<sensor_id>/rejected``. The bridge runs no agent. On the in-process bus it runs no outbox relay either (a relay
here would mark its rows published with no handler to see them): the API's relay publishes its events, found by
its poll (SM_OUTBOX_POLL_INTERVAL_S). When SM_BUS_URL is a NATS URL the bridge runs its own relay to the JetStream
stream, woken by each commit like the API's, so MQTT readings reach the workers as fast as HTTP ones.

Exits 1 with one line when PostgreSQL or the broker cannot be used at start; afterwards it rides out outages (the
broker: paho reconnects; the database: the batch is retried, nothing acknowledged). SIGTERM or Ctrl-C stops it
after the batch in progress.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

import typer

from apps.cli.app import app
from apps.cli.common import cli_settings, require_database
from core.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from core.events.relay import OutboxRelay

#: Seconds a stop waits for the batch in progress (a database outage may hold it) before leaving it to the broker.
STOP_GRACE_S = 10.0


@app.command("mqtt-bridge")
def mqtt_bridge() -> None:
    """Ingest readings published over MQTT (QoS 1, persistent session) through the ingest service."""
    settings = cli_settings()
    from core.ingest.mqtt.client import BrokerError, broker_address, production_problem

    try:
        problem = production_problem(settings, broker_address(settings))
    except BrokerError as exc:
        typer.echo(f"smart-maintenance mqtt-bridge: {exc}", err=True)
        raise SystemExit(2) from None
    if problem:
        typer.echo(f"smart-maintenance mqtt-bridge: refusing to start with SM_ENV=production: {problem}.", err=True)
        raise SystemExit(2)
    from core.observability.logging import configure_logging

    configure_logging(settings)
    raise SystemExit(asyncio.run(_run(settings)))


async def _run(settings: Settings) -> int:
    import logging

    from core import units
    from core.db.session import create_engine, create_session_factory
    from core.ingest.mqtt.client import BrokerError
    from core.ingest.mqtt.runner import MqttIngest
    from core.runtime.ingest import IngestRuntime

    log = logging.getLogger("apps.cli.mqtt")
    engine = create_engine(settings)
    try:
        await require_database(engine, settings)
        await asyncio.to_thread(units.warm_up)  # the unit registry, built once before the first conversion
        factory = create_session_factory(engine)
        ingest = IngestRuntime(settings, factory, background=False)
        relay = await _jetstream_relay(settings, factory) if settings.bus_servers else None
        bridge = MqttIngest(settings, ingest.service)
        try:
            await bridge.start()
        except BrokerError as exc:
            typer.echo(f"error: {exc}", err=True)
            if relay is not None:
                await _stop_relay(relay)
            return 1
        if settings.mqtt_metrics_port:
            from prometheus_client import start_http_server

            from core.observability.metrics import REGISTRY

            start_http_server(settings.mqtt_metrics_port, settings.mqtt_metrics_host, registry=REGISTRY)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("MQTT bridge running on %s, topics %s", bridge.broker.address.display, bridge.broker.topic_filter)
        waiting = asyncio.ensure_future(bridge.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        await bridge.stop(STOP_GRACE_S)
        if relay is not None:
            await _stop_relay(relay)
        if waiting.done() and waiting.exception() is not None:  # the bridge loop failed: a bug, logged
            log.error("the MQTT bridge stopped on an error", exc_info=waiting.exception())
            return 1
        log.info("MQTT bridge stopped")
        return 0
    finally:
        await engine.dispose()


async def _jetstream_relay(
    settings: Settings, factory: async_sessionmaker[AsyncSession]
) -> OutboxRelay:
    """The bridge's outbox relay onto the JetStream stream (SM_BUS_URL is NATS), started."""
    from core.events.jetstream import JetStreamBus
    from core.events.relay import OutboxRelay
    from core.runtime.handlers import remote_handlers

    bus = JetStreamBus(settings, remote_handlers(), name="sm-mqtt-bridge")
    await bus.open()
    relay = OutboxRelay.from_settings(settings, factory, bus)
    relay.start()
    return relay


async def _stop_relay(relay: OutboxRelay) -> None:
    await relay.stop()
    await relay.bus.stop()
