"""MQTT brokers and clients for the bridge's tests.

* ``Mosquitto(root).start()``: a private broker (``/usr/sbin/mosquitto -c <conf>``) on a free 127.0.0.1 port with a
  temporary persistence directory, the queue limits of infrastructure/mosquitto/mosquitto.conf, and optionally a
  password file and an ACL; for anything destructive. ``shared_broker()``: the machine's broker on 127.0.0.1:1883
  when it answers (else a private one), for the plain tests.
* ``Device``: a paho client that publishes QoS 1 (waiting for the broker's PUBACK) and collects what arrives on the
  topics it subscribes to (the rejection notices).
"""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.mlflow_server import free_port

SHARED = ("127.0.0.1", 1883)


def mosquitto_binary() -> str:
    for candidate in ("/usr/sbin/mosquitto", shutil.which("mosquitto")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("mosquitto is not installed (Debian package mosquitto)")


def listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Mosquitto:
    root: Path
    users: dict[str, str] = field(default_factory=dict)
    acl: str | None = None
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        lines = [
            f"listener {self.port} {self.host}",
            f"user {getpass.getuser()}",  # as root mosquitto switches to its own user, who cannot write root's tmp
            "persistence true",
            f"persistence_location {self.root / 'data'}/",
            "autosave_interval 1",
            # the bridge's persistent session must not lose queued messages while it is away (see mosquitto.conf)
            "max_queued_messages 1000000",
            "max_inflight_messages 0",
            f"log_dest file {self.root / 'mosquitto.log'}",
        ]
        if self.users:
            passwords = self.root / "passwd"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            (self.root / "acl").write_text(self.acl)
            lines.append(f"acl_file {self.root / 'acl'}")
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        conf = self.root / "mosquitto.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not listening(self.host, self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "mosquitto.log").read_text() if (self.root / "mosquitto.log").exists() else ""
                self.stop()
                raise RuntimeError(f"mosquitto did not start on {self.port}: {log[-2000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@contextmanager
def mosquitto(root: Path, **options: Any) -> Iterator[Mosquitto]:
    broker = Mosquitto(root, **options).start()
    try:
        yield broker
    finally:
        broker.stop()


class Device:
    """A publishing client (QoS 1, each publish waits for the broker's PUBACK) that records what it receives."""

    def __init__(self, host: str, port: int, *, username: str | None = None, password: str | None = None) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((msg.topic, json.loads(msg.payload)))

    def subscribe(self, topic: str) -> None:
        info = self.client.subscribe(topic, qos=1)
        assert info[0] == mqtt.MQTT_ERR_SUCCESS
        time.sleep(0.2)  # the SUBACK; the notices of interest are published later

    def publish(self, topic: str, payload: bytes | str | Any, *, wait: bool = True) -> mqtt.MQTTMessageInfo:
        if not isinstance(payload, bytes | str):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=1)
        if wait:
            info.wait_for_publish(10)
            assert info.is_published(), f"the broker did not acknowledge the message on {topic}"
        return info

    def notices(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def device(host: str, port: int, **credentials: Any) -> Iterator[Device]:
    client = Device(host, port, **credentials)
    try:
        yield client
    finally:
        client.close()


def forget_session(host: str, port: int, client_id: str, **credentials: Any) -> None:
    """End the persistent session of ``client_id`` on the broker (a clean start with session expiry 0)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if credentials:
        client.username_pw_set(credentials["username"], credentials.get("password"))
    try:
        client.connect(host, port, clean_start=True)
        client.loop_start()
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass
