"""Private NATS servers for the bus tests: JetStream on, a free loopback port, a temporary store directory.

``NatsServer(tmp).start()`` runs ``nats-server -js`` (the Debian binary, or the one on PATH) on 127.0.0.1; it can be
stopped, killed and restarted on the same port and store (the stream survives). ``nats_cluster(tmp, 3)`` runs a
3-node JetStream cluster on loopback. Nothing touches the machine's shared NATS on 4222.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.mlflow_server import free_port


def nats_binary() -> str:
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server"):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("nats-server is not installed (Debian package nats-server)")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class NatsServer:
    def __init__(
        self,
        root: Path,
        *,
        name: str = "n1",
        cluster_port: int | None = None,
        routes: list[int] | None = None,
        binary: str | None = None,
    ) -> None:
        self.root = root
        self.binary = binary
        self.name = name
        self.port = free_port()
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.store = root / f"store-{name}"
        self.log = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            self.binary or nats_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store),
            "-n",
            self.name,
            "-l",
            str(self.log),
        ]
        if self.cluster_port is not None:
            cmd += ["--cluster_name", "sm-test", "--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            if self.routes:
                cmd += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        return cmd

    def start(self, timeout: float = 10.0) -> NatsServer:
        self.store.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.proc.poll() is not None:
                pytest.fail(f"nats-server exited: {self.log.read_text()[-2000:] if self.log.exists() else ''}")
            if time.monotonic() > deadline:
                pytest.fail("nats-server did not listen in time")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def nats_server(root: Path) -> Iterator[NatsServer]:
    server = NatsServer(root).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def nats_cluster(root: Path, size: int = 3) -> Iterator[list[NatsServer]]:
    cluster_ports = [free_port() for _ in range(size)]
    servers = [
        NatsServer(root, name=f"n{i + 1}", cluster_port=cluster_ports[i], routes=[p for p in cluster_ports if p != cp])
        for i, cp in enumerate(cluster_ports)
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


__all__ = ["NatsServer", "nats_binary", "nats_cluster", "nats_server"]
