"""The compose profile `nats-cluster` started: three nodes run their compose commands on
infrastructure/nats/cluster.conf, form a JetStream cluster, pass their health check, hold a stream with 3
replicas, and keep accepting (and keep every acknowledged message) after one node is killed.

No Docker engine here: each node is the compose command on the wheel's nats-server (the image's version, checked
by tests/unit/test_compose_scaling.py) with a copy of the file in which only addresses change: the service names of
the routes become 127.0.0.1 and a free port, the client, monitoring and cluster ports free loopback ports, and the
store directory a temporary one. Bounded: loopback only, 20 messages, every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from apps.cli.stack_nats import nats_binary
from tests.support.compose import PROJECT_ROOT, load_compose, service_command
from tests.support.stack import NATS_CLUSTER

pytestmark = pytest.mark.slow

CLUSTER_CONF = PROJECT_ROOT / "infrastructure" / "nats" / "cluster.conf"
HEALTHY_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Node:
    name: str
    client: int
    monitor: int
    route: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client}"

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.monitor}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _local_conf(nodes: dict[str, _Node], node: _Node, store: Path) -> str:
    """cluster.conf for ``node`` on loopback: same blocks and routes, only addresses and the store changed."""
    text = CLUSTER_CONF.read_text()
    text, n_port = re.subn(r"^port:\s*\d+", f"host: 127.0.0.1\nport: {node.client}", text, flags=re.MULTILINE)
    text, n_http = re.subn(r"^http_port:\s*\d+", f"http: 127.0.0.1:{node.monitor}", text, flags=re.MULTILINE)
    text, n_store = re.subn(r"store_dir:\s*\S+", f'store_dir: "{store}"', text)
    text, n_cluster = re.subn(
        r"(cluster\s*\{[^}]*?)\bport:\s*\d+", rf"\g<1>listen: 127.0.0.1:{node.route}", text, flags=re.DOTALL
    )
    text, n_routes = re.subn(
        r"nats-route://([\w-]+):\d+", lambda m: f"nats-route://127.0.0.1:{nodes[m.group(1)].route}", text
    )
    assert (n_port, n_http, n_store, n_cluster, n_routes) == (1, 1, 1, 1, 3), "cluster.conf changed shape"
    return text


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[_Node]]:
    binary = nats_binary()
    assert binary is not None
    services = load_compose()["services"]
    nodes = {name: _Node(name, _free_port(), _free_port(), _free_port()) for name in NATS_CLUSTER}
    try:
        for name, node in nodes.items():
            conf = tmp_path / f"{name}.conf"
            conf.write_text(_local_conf(nodes, node, tmp_path / f"{name}-data"))
            cmd = [binary, *service_command(services[name])]
            cmd[cmd.index("--config") + 1] = str(conf)
            log = (tmp_path / f"{name}.log").open("ab")
            node.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        for node in nodes.values():
            while not node.healthy():
                assert node.proc is not None and node.proc.poll() is None, (
                    f"{node.name} exited:\n{(tmp_path / f'{node.name}.log').read_text()[-3000:]}"
                )
                assert time.monotonic() < deadline, (
                    f"{node.name} not healthy within {HEALTHY_TIMEOUT_S:.0f} s:\n"
                    + (tmp_path / f"{node.name}.log").read_text()[-3000:]
                )
                time.sleep(0.3)
        yield list(nodes.values())
    finally:
        for node in nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
                try:
                    node.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()


async def _publish(js: Any, subject: str, payload: bytes, deadline: float) -> None:
    """Publish until acknowledged (a leader election after a node died answers with timeouts for a few seconds)."""
    import nats.errors
    import nats.js.errors

    while True:
        try:
            await js.publish(subject, payload, timeout=2, headers={"Nats-Msg-Id": payload.decode()})
            return
        except (nats.errors.TimeoutError, nats.js.errors.Error, nats.errors.NoRespondersError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _exercise(nodes: list[_Node]) -> dict[str, Any]:
    import nats
    from nats.js.api import StreamConfig

    urls = [n.url for n in nodes]
    nc = await nats.connect(urls, connect_timeout=5, max_reconnect_attempts=20, reconnect_time_wait=0.5)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="SM_CLUSTER_PROBE", subjects=["probe.>"], num_replicas=3))
        deadline = time.monotonic() + 30
        for i in range(10):
            await _publish(js, "probe.a", f"before-{i}".encode(), deadline)
        info = await js.stream_info("SM_CLUSTER_PROBE")
        leader = info.cluster.leader if info.cluster else None
        replicas = [r.name for r in (info.cluster.replicas or [])] if info.cluster else []
        # kill the stream's leader: the two others hold a quorum and elect a new one
        victim = next(n for n in nodes if n.name == leader)
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        for i in range(10):
            await _publish(js, "probe.a", f"after-{i}".encode(), deadline)
        after = await js.stream_info("SM_CLUSTER_PROBE")
        return {
            "leader": leader, "replicas": sorted(replicas), "messages": after.state.messages,
            "new_leader": after.cluster.leader if after.cluster else None,
        }  # fmt: skip
    finally:
        await nc.close()


def test_the_nats_cluster_profile_keeps_a_three_replica_stream_through_a_node_loss(cluster: list[_Node]) -> None:
    result = asyncio.run(_exercise(cluster))
    names = {n.name for n in cluster}
    assert result["leader"] in names, result
    assert set(result["replicas"]) | {result["leader"]} == names, f"3 replicas on the 3 nodes: {result}"
    assert result["new_leader"] in names - {result["leader"]}, result
    assert result["messages"] == 20, f"an acknowledged message was lost or doubled: {result}"
