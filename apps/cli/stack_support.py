"""What ``up`` (``apps/cli/stack.py``), ``up --detach`` / ``down`` (``apps/cli/stack_detached.py``) and the
back-test's private platform (``apps/cli/backtest/platform.py``) share: the console, the state file's running
pid, stopping a server's process group, log tails and the keys banner. No command lives here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import typer
from rich.console import Console

from apps.cli.common import state_file
from core.config import PROJECT_ROOT, ConfigurationError, Settings, load_settings

console = Console(highlight=False)


def health_problem(url: str, timeout_s: float = 2.0) -> str | None:
    """None when ``GET url`` answers 200; otherwise what it answered (``HTTP 503: …`` or the error's name).
    Loopback health checks bypass any proxy of the environment."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout_s, trust_env=False)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if response.status_code == 200 else f"HTTP {response.status_code}: {response.text[:300]}"


def log_tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the server's whole process group (its workers too), then SIGKILL what is left after timeout."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        proc.wait()
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None:  # the leader is gone; wait for the rest of its group
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.2)
    proc.wait()


def rel_path(path: Path) -> str:
    """``path`` relative to the project when it is inside it (shorter in messages), else as given."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        console.print(str(exc))
        raise typer.Exit(2) from None


def running_pid(settings: Settings) -> int | None:
    path = state_file(settings)
    if not path.exists():
        return None
    try:
        pid = int(json.loads(path.read_text())["pid"])
        os.kill(pid, 0)
    except (ValueError, KeyError, ProcessLookupError, json.JSONDecodeError):
        path.unlink(missing_ok=True)
        return None
    except PermissionError:
        pass
    return pid


def print_keys(settings: Settings) -> None:
    """The keys of the banner: the bootstrap key's value only in development; the console's and the simulator's
    own keys by setting and scopes (the API registered them at start-up)."""
    from core.auth.keys import CONFIGURED_KEY_SPECS, CONSOLE_KEY_NAME, SIMULATOR_KEY_NAME
    from core.config import Environment

    if settings.env is Environment.development:
        console.print(
            f"  API key {settings.api_key.get_secret_value()}   (development key: header X-API-Key)"
        )
    else:
        console.print("  API key SM_API_KEY (bootstrap key, all scopes; header X-API-Key)")
    for name, role in ((CONSOLE_KEY_NAME, "console"), (SIMULATOR_KEY_NAME, "simulator")):
        if name == SIMULATOR_KEY_NAME and not settings.demo:
            continue
        setting, scopes = CONFIGURED_KEY_SPECS[name]
        console.print(f"  {role:<9} uses its own key {setting} (scopes {','.join(scopes)})")
