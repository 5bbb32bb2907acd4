"""``notebook``: one papermill run of a notebook under ``notebooks/`` (what ``make train-*``, the gauntlet targets
and the compose ``notebook_runner`` run).

The notebooks log to ``MLFLOW_TRACKING_URI``. When that is the local MLflow server (a loopback HTTP address) and
nothing answers there, the command starts the same server ``make up`` runs (``python -m apps.cli serve-mlflow``,
sqlite store and artifacts under ``SM_DATA_DIR``) for the duration of the run and stops it afterwards, so runs,
models and plots land in the store the platform's MLflow serves. A remote tracking URI that does not answer is an
error, not a reason to log elsewhere. Every run holds a shared lock on ``<SM_DATA_DIR>/run/notebook-mlflow.lock``;
the run that started the server stops it only once it gets the lock exclusively, i.e. after notebook runs that
found the server up (and use it) have finished.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer

from apps.cli.app import app
from apps.cli.commands import cli, notebook_command
from apps.cli.common import cli_settings
from core.config import PROJECT_ROOT, Settings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url.rstrip("/") + "/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _local_mlflow_needed(settings: Settings, params: dict[str, str]) -> bool:
    """True when the run logs to the local MLflow server and that server is not up."""
    explicit = params.get("tracking_uri", "None")
    uri = settings.mlflow_tracking_uri if explicit in ("None", "") else explicit
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK:
        return False
    return not _answers(uri)


def _start_mlflow(settings: Settings) -> subprocess.Popen[bytes]:
    url = settings.mlflow_tracking_uri.rstrip("/")
    port = urlsplit(url).port or 80
    log_path = settings.log_dir / "notebook-mlflow.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SM_MLFLOW_HOST": "127.0.0.1", "SM_MLFLOW_PORT": str(port)}
    typer.echo(f"MLflow is not answering at {url}: starting it for this run (log: {log_path})")
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cli("serve-mlflow"), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            typer.echo(f"MLflow exited with code {proc.returncode}; see {log_path}", err=True)
            raise typer.Exit(1)
        if _answers(url):
            return proc
        time.sleep(0.5)
    _stop(proc)
    typer.echo(f"MLflow did not become healthy at {url} within 120 s; see {log_path}", err=True)
    raise typer.Exit(1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@app.command("notebook")
def notebook(
    notebook_file: Annotated[str, typer.Argument(help="file name under notebooks/")],
    param: Annotated[list[str] | None, typer.Option("-p", help="parameter as key=value")] = None,
) -> None:
    """Run a notebook with papermill; the executed copy goes to notebooks/output/."""
    path = PROJECT_ROOT / "notebooks" / Path(notebook_file).name
    if not path.exists():
        typer.echo(f"no such notebook: {path.relative_to(PROJECT_ROOT)}", err=True)
        raise typer.Exit(2)
    try:
        params = dict(item.split("=", 1) for item in (param or []))
    except ValueError:
        typer.echo("parameters are key=value", err=True)
        raise typer.Exit(2) from None
    settings = cli_settings()
    # The kernel reads the same settings; a running `make up` stack's database is passed on explicitly.
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    lock_path = settings.data_dir / "run" / "notebook-mlflow.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        server = _start_mlflow(settings) if _local_mlflow_needed(settings, params) else None
        try:
            sys.stdout.flush()
            code = subprocess.call(notebook_command(notebook_file, params), env=env)
        finally:
            if server is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    typer.echo("waiting for other notebook runs that use the temporary MLflow server")
                    fcntl.flock(lock, fcntl.LOCK_EX)
                _stop(server)
    if code:
        raise typer.Exit(code)
