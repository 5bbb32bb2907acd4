"""``up --detach`` and ``down``: the local stack in the background, found again through its state file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Annotated

import typer

from apps.cli.app import app
from apps.cli.commands import cli
from apps.cli.common import state_file
from apps.cli.stack_support import console, log_tail, print_keys, rel_path, running_pid, settings_or_exit
from core.config import PROJECT_ROOT, Settings


def detach(settings: Settings) -> int:
    """``up --detach``: start ``up`` in a new session, wait until it reports ready (or failed), print the banner."""
    if pid := running_pid(settings):
        console.print(f"a stack is already running (pid {pid})")
        return 1
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / "stack.log"
    with log_path.open("a") as log:
        proc = subprocess.Popen(cli("up"), cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    with console.status("starting the stack in the background"):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                console.print(f"[red]the stack failed to start[/]; see {rel_path(log_path)}:\n{log_tail(log_path)}")
                return 1
            path = state_file(settings)
            if path.exists():
                state = json.loads(path.read_text() or "{}")
                if state.get("status") == "ready":
                    for name, url in state["urls"].items():
                        console.print(f"  {name:<7} {url}")
                    if state.get("processes"):
                        console.print(f"  runs    {state['processes']}", soft_wrap=True)
                    print_keys(settings)
                    console.print(f"running in the background (pid {proc.pid}, log {rel_path(log_path)}); "
                                  "stop it with `make down`")  # fmt: skip
                    return 0
            time.sleep(0.5)
    console.print(f"[red]the stack did not become ready in time[/]; see {rel_path(log_path)}")
    return 1


@app.command("down")
def down(timeout: Annotated[float, typer.Option(help="seconds to wait for a clean stop")] = 60.0) -> None:
    """Stop a stack started in the background (``make up-detached``) or in another shell."""
    settings = settings_or_exit()
    pid = running_pid(settings)
    if pid is None:
        console.print("no stack is running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            console.print(f"stack stopped (pid {pid})")
            return
        time.sleep(0.3)
    console.print(f"[red]stack (pid {pid}) did not stop within {timeout:.0f} s[/]")
    raise typer.Exit(1)
