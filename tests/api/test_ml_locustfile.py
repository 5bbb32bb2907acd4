"""locustfile.py (``make load-test``) imports and defines the user classes (checked by locust itself, in a
subprocess: locust monkey-patches the standard library with gevent when imported)."""

from __future__ import annotations

import subprocess
import sys

from core.config import PROJECT_ROOT


def test_locustfile_lists_its_user_classes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(PROJECT_ROOT / "locustfile.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    listed = {line.strip() for line in result.stdout.splitlines()}
    assert {"IngestUser", "QueryUser", "MlUser", "MlflowRegistryUser"} <= listed


def test_locustfile_hits_the_documented_endpoints() -> None:
    source = (PROJECT_ROOT / "locustfile.py").read_text()
    for path in (
        "/api/v1/data/ingest",
        "/api/v1/sensors",
        "/api/v1/alerts",
        "/api/v1/ml/predict",
        "/api/v1/ml/detect_anomaly",
        "/api/v1/ml/models",
        "/api/2.0/mlflow/registered-models/search",
    ):
        assert path in source, path
    assert "load_settings()" in source and "os.environ" not in source
