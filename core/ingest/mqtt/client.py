"""The bridge's MQTT connection (paho-mqtt 2.x, MQTT v5), driven by paho's network thread.

* **Persistent session.** A fixed client id, ``clean_start=False`` and a Session Expiry Interval
  (``SM_MQTT_SESSION_EXPIRY_S``): the broker keeps the subscription and every unacknowledged QoS 1 message while
  the bridge is away (a restart, a crash, a network cut) and delivers them when it connects again.
* **Manual acknowledgement.** ``manual_ack=True``: paho sends no PUBACK by itself; ``ack(message)`` sends it once
  the bridge stored the message. The Receive Maximum (``SM_MQTT_RECEIVE_MAXIMUM``) bounds the unacknowledged
  messages the broker sends. Packet ids belong to a connection: after a reconnect the broker sends the
  unacknowledged messages again, so ``ack`` refuses messages of an earlier connection (``generation``).
* Messages go from the network thread to an ``asyncio.Queue`` of the bridge's event loop; ``publish`` (QoS 1)
  resolves when the broker's PUBACK arrived. paho reconnects by itself (1 s to 30 s backoff); every connect and
  disconnect is logged and reflected in ``sm_mqtt_connected_count``.
* ``start()`` raises ``BrokerError`` with one readable line when the broker cannot be reached within
  ``SM_MQTT_CONNECT_TIMEOUT_S``, refuses the connection (credentials) or the subscription (ACL).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core.config import Environment, Settings
from core.ingest.mqtt.messages import Message
from core.ingest.mqtt.topics import subscription
from core.observability.metrics import MQTT_CONNECTED
from core.secret_strength import weak_secret_reason

logger = logging.getLogger("core.ingest.mqtt")

QOS = 1


class BrokerError(RuntimeError):
    """The broker cannot be used (unreachable, refused the connection or the subscription); one readable line."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    ca_file: Path | None

    @property
    def display(self) -> str:
        """``mqtt://host:port`` (no credentials)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def broker_address(settings: Settings) -> BrokerAddress:
    """The broker of ``SM_MQTT_URL`` when set, else of ``SM_MQTT_HOST``/``PORT``/``USERNAME``/``PASSWORD``/``TLS``."""
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password is not None else None
    if not settings.mqtt_url:
        return BrokerAddress(
            settings.mqtt_host,
            settings.mqtt_port,
            settings.mqtt_username,
            password,
            settings.mqtt_tls,
            settings.mqtt_tls_ca_file,
        )
    url = urlsplit(settings.mqtt_url)
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise BrokerError(f"SM_MQTT_URL must be mqtt://host[:port] or mqtts://host[:port], not {url.scheme}://…")
    tls = url.scheme == "mqtts"
    return BrokerAddress(
        url.hostname,
        url.port or (8883 if tls else 1883),
        unquote(url.username) if url.username else settings.mqtt_username,
        unquote(url.password) if url.password else password,
        tls,
        settings.mqtt_tls_ca_file,
    )


#: The password compose gives the bridge's broker user when ``SM_MQTT_PASSWORD`` is unset (development only).
DEV_MQTT_PASSWORD = "sm-dev-mqtt-password"


def production_problem(settings: Settings, address: BrokerAddress) -> str | None:
    """Why the bridge must not start with ``SM_ENV=production`` (the development password, or a weak one), or None.
    Never includes the password."""
    if settings.env is not Environment.production or address.password is None:
        return None
    return weak_secret_reason("SM_MQTT_PASSWORD", address.password, dev_default=DEV_MQTT_PASSWORD)


def _reason(code: Any) -> str:
    return str(getattr(code, "getName", lambda: code)())


class PahoBroker:
    """One MQTT v5 connection feeding ``queue`` (module docstring); implements ``core.ingest.mqtt.bridge.Broker``."""

    def __init__(self, settings: Settings, queue: asyncio.Queue[Message]) -> None:
        self.address = broker_address(settings)
        self.topic_filter = subscription(settings.mqtt_topic_prefix, settings.mqtt_site)
        self._settings = settings
        self._queue = queue
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.generation = 0
        self.connected = False
        self._published: set[int] = set()
        self._waiting: dict[int, asyncio.Future[ReasonCode | None]] = {}
        self._first_connack: asyncio.Future[ReasonCode] | None = None
        self._first_suback: asyncio.Future[list[ReasonCode]] | None = None
        self._client = self._build_client()

    def _build_client(self) -> mqtt.Client:
        s = self._settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.mqtt_client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            context = ssl.create_default_context(cafile=str(self.address.ca_file) if self.address.ca_file else None)
            client.tls_set_context(context)
        client.connect_timeout = s.mqtt_connect_timeout_s
        client.reconnect_delay_set(1, 30)
        client.max_inflight_messages_set(1000)  # our own publishes (rejection notices) in flight
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    # --- life cycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, subscribe, and check both answers; raise ``BrokerError`` (module docstring)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._first_connack = loop.create_future()
        self._first_suback = loop.create_future()
        s = self._settings
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = s.mqtt_session_expiry_s
        properties.ReceiveMaximum = s.mqtt_receive_maximum
        where = self.address.display
        try:
            await asyncio.to_thread(
                self._client.connect,
                self.address.host,
                self.address.port,
                keepalive=s.mqtt_keepalive_s,
                clean_start=False,
                properties=properties,
            )
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"cannot reach the MQTT broker at {where} ({_os_reason(exc)})") from None
        self._client.loop_start()
        try:
            code = await asyncio.wait_for(self._first_connack, s.mqtt_connect_timeout_s)
            if code.is_failure:
                raise BrokerError(f"the MQTT broker at {where} refused the connection: {_reason(code)}")
            granted = await asyncio.wait_for(self._first_suback, s.mqtt_connect_timeout_s)
            failed = [c for c in granted if c.is_failure]
            if failed:
                raise BrokerError(
                    f"the MQTT broker at {where} refused the subscription to {self.topic_filter}: "
                    f"{_reason(failed[0])} (check the bridge user's ACL)"
                )
        except TimeoutError:
            await self.stop()
            raise BrokerError(
                f"the MQTT broker at {where} did not answer within {s.mqtt_connect_timeout_s:g} s"
            ) from None
        except BrokerError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Disconnect (unacknowledged messages stay with the broker) and stop the network thread."""
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._set_connected(False)

    # --- the bridge's side -----------------------------------------------------------------------------------
    def ack(self, message: Message) -> bool:
        if message.qos == 0:
            return True
        if message.generation != self.generation or not self.connected:
            return False  # its connection is gone: the broker sends it again on the next one
        return self._client.ack(message.mid, message.qos) == mqtt.MQTT_ERR_SUCCESS

    async def publish(self, topic: str, payload: bytes) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ReasonCode | None] = loop.create_future()
        info = self._client.publish(topic, payload, qos=QOS)
        with self._lock:
            if info.mid in self._published:
                self._published.discard(info.mid)
                future.set_result(None)
            else:
                self._waiting[info.mid] = future
        code = await future
        if code is not None and code.is_failure:
            logger.warning(
                "the broker refused the message on %s: %s (check the bridge user's ACL)", topic, _reason(code)
            )

    # --- paho callbacks (network thread) ----------------------------------------------------------------------
    def _call(self, fn: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, code: ReasonCode, _p: Any) -> None:
        if code.is_failure:
            logger.error("MQTT broker %s refused the connection: %s", self.address.display, _reason(code))
        else:
            self.generation += 1
            self._set_connected(True)
            logger.info(
                "connected to the MQTT broker %s as %r (session present: %s); subscribing to %s (QoS 1)",
                self.address.display,
                self._settings.mqtt_client_id,
                bool(getattr(flags, "session_present", False)),
                self.topic_filter,
            )
            client.subscribe(self.topic_filter, qos=QOS)
        if self._first_connack is not None:
            self._call(_resolve, self._first_connack, code)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        self._set_connected(False)
        level = logging.WARNING if code.is_failure else logging.INFO
        logger.log(level, "disconnected from the MQTT broker %s: %s", self.address.display, _reason(code))

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        if any(c.is_failure for c in codes):
            logger.error("the MQTT broker refused the subscription to %s: %s", self.topic_filter, _reason(codes[0]))
        if self._first_suback is not None:
            self._call(_resolve, self._first_suback, list(codes))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        message = Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation, time.monotonic())
        self._call(self._queue.put_nowait, message)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, code: ReasonCode, _p: Any) -> None:
        with self._lock:
            future = self._waiting.pop(mid, None)
            if future is None:
                self._published.add(mid)
        if future is not None:
            self._call(_resolve, future, code)

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        MQTT_CONNECTED.set(1 if connected else 0)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).lower()


__all__ = ["QOS", "BrokerAddress", "BrokerError", "PahoBroker", "broker_address"]
