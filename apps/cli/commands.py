"""Command lines of the platform's processes, built from settings.

The local runner (``make up``) and docker compose start the same commands; tests compare them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.config import PROJECT_ROOT, Settings


def cli(*args: str) -> list[str]:
    """``python -m apps.cli <args>`` with this interpreter."""
    return [sys.executable, "-m", "apps.cli", *args]


def mlflow_command(settings: Settings) -> list[str]:
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--host", settings.mlflow_host,
        "--port", str(settings.mlflow_port),
        "--workers", str(settings.mlflow_workers),
        "--backend-store-uri", settings.mlflow_backend_store,
        "--artifacts-destination", settings.mlflow_artifacts_dir,
        "--serve-artifacts",
    ]  # fmt: skip
    if settings.mlflow_allowed_hosts:
        cmd += ["--allowed-hosts", settings.mlflow_allowed_hosts]
    return cmd


def mlflow_environment(settings: Settings) -> dict[str, str]:
    """Environment MLflow's server reads for options it has no flag for."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true" if settings.mlflow_job_execution else "false"}


def ui_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "ui" / "streamlit_app.py"),
        "--server.address", settings.ui_host,
        "--server.port", str(settings.ui_port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",  # no "Deploy" button nor developer menu for operators
    ]  # fmt: skip


def notebook_command(notebook_file: str, parameters: dict[str, str] | None = None) -> list[str]:
    name = Path(notebook_file).name
    cmd = [
        sys.executable, "-m", "papermill",
        str(PROJECT_ROOT / "notebooks" / name),
        str(PROJECT_ROOT / "notebooks" / "output" / name),
        "--cwd", str(PROJECT_ROOT),
        "--progress-bar",
    ]  # fmt: skip
    for key, value in (parameters or {}).items():
        cmd += ["-p", key, value]
    return cmd
