"""``python -m apps.cli notebook``: a missing notebook is a clear error, and a run against the local MLflow
address starts that server for the run when nothing answers there (and stops it afterwards)."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from apps.cli.notebook import _answers, _local_mlflow_needed, _start_mlflow, _stop
from core.config import PROJECT_ROOT, Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_missing_notebook_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "apps.cli", "notebook", "99_nope.ipynb"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no such notebook: notebooks/99_nope.ipynb" in proc.stderr


def test_only_an_unanswering_loopback_server_needs_starting(settings: Settings) -> None:
    closed = settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{_free_port()}"})
    assert _local_mlflow_needed(closed, {})
    assert _local_mlflow_needed(closed, {"tracking_uri": "None"})
    assert not _local_mlflow_needed(closed, {"tracking_uri": "sqlite:////tmp/x.db"})
    remote = settings.model_copy(update={"mlflow_tracking_uri": "http://mlflow:5000"})
    assert not _local_mlflow_needed(remote, {})
    file_store = settings.model_copy(update={"mlflow_tracking_uri": "sqlite:////tmp/mlflow.db"})
    assert not _local_mlflow_needed(file_store, {})


@pytest.mark.slow
def test_temporary_mlflow_serves_the_platform_store_and_stops(
    settings: Settings, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("SM_DATA_DIR", str(tmp_path / "data"))
    local = settings.model_copy(
        update={"mlflow_tracking_uri": f"http://127.0.0.1:{port}", "log_dir": tmp_path / "logs"}
    )
    proc = _start_mlflow(local)
    try:
        assert _answers(local.mlflow_tracking_uri)
        resp = httpx.get(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5", timeout=10
        )
        assert resp.status_code == 200
        assert (tmp_path / "data" / "mlflow" / "mlflow.db").exists()
    finally:
        _stop(proc)
    assert proc.poll() is not None
    assert not _answers(local.mlflow_tracking_uri)
