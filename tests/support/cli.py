"""Run ``python -m apps.cli`` as a subprocess against a given database, the way an operator would."""

from __future__ import annotations

import os
import subprocess
import sys

from core.config import PROJECT_ROOT


def cli_environment(database_url: str, **env_overrides: str) -> dict[str, str]:
    """The environment ``run_cli`` gives the child (for tests that start the CLI with ``subprocess.Popen``)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SM_") and k not in ("DATABASE_URL", "database_url")
    }
    env.update({"DATABASE_URL": database_url, "SM_ENV": "test", "SM_LOG_JSON": "false", **env_overrides})
    return env


def run_cli(
    database_url: str, *args: str, timeout: float = 120, **env_overrides: str
) -> subprocess.CompletedProcess[str]:
    """``python -m apps.cli *args`` with ``DATABASE_URL`` set and none of the parent's own settings (``SM_*``,
    ``DATABASE_URL``) leaking into the child; ``env_overrides`` adds settings (e.g. ``SM_LOG_LEVEL="WARNING"``)."""
    return subprocess.run(
        [sys.executable, "-m", "apps.cli", *args],
        cwd=PROJECT_ROOT,
        env=cli_environment(database_url, **env_overrides),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
