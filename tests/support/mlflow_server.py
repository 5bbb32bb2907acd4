"""A real ``mlflow server`` on a free loopback port with a temporary store (session fixture), and tiny pyfunc
models that follow the project's model contracts (docs/notes: anomaly and forecast models), to register in it.

The server is started with the same command line as the local stack (``apps.cli.commands.mlflow_command``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel

from apps.cli.commands import mlflow_command, mlflow_environment
from core.config import load_settings
from core.ml.registry.uris import fluent_uri

STARTUP_TIMEOUT_S = 240.0  # generous: the 2-core machine is shared (seen: > 90 s at load average 12)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mlflow_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``mlflow server`` with its store under ``root``; return the process and its URL once healthy."""
    port = free_port()
    settings = load_settings(
        mlflow_host="127.0.0.1",
        mlflow_port=port,
        mlflow_workers=1,
        mlflow_backend_store_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifacts_destination=str(root / "artifacts"),
        data_dir=root,
    )
    env = {**os.environ, **mlflow_environment(settings)}
    log = open(root / "mlflow-server.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(  # own process group: the server's uvicorn child is stopped with it
        mlflow_command(settings), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            log.close()
            raise RuntimeError(f"mlflow server exited: {(root / 'mlflow-server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0, trust_env=False).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_mlflow_server(process)
            raise RuntimeError(f"mlflow server did not answer within {STARTUP_TIMEOUT_S} s")
        time.sleep(0.2)


def stop_mlflow_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers (its process group)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def mlflow_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real MLflow tracking server + registry on a temporary store (stopped at the end of the run)."""
    process, url = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield url
    finally:
        stop_mlflow_server(process)


# --- tiny models that follow the contracts ------------------------------------------------------------------------
class CenterScaleAnomalyModel(PythonModel):
    """``anomaly_<type>`` contract: DataFrame[sensor_id, timestamp, value] → DataFrame[score, is_anomaly].

    score = |value − center| / scale, anomalous when score ≥ threshold (center/scale learned from training values).
    """

    def __init__(self, center: float, scale: float, threshold: float = 3.0) -> None:
        self.center, self.scale, self.threshold = center, scale, threshold

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        score = np.abs(model_input["value"].to_numpy(dtype=float) - self.center) / self.scale
        return pd.DataFrame({"score": score, "is_anomaly": score >= self.threshold})


class NaiveForecastModel(PythonModel):
    """``forecast_<type>`` contract: history DataFrame[sensor_id, timestamp, value] + params horizon/interval →
    DataFrame[sensor_id, timestamp, yhat, yhat_lower, yhat_upper]: last value, ± z·σ(differences)·√h."""

    def __init__(self, freq: str = "5min") -> None:
        self.freq = freq

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        from scipy.stats import norm

        params = params or {}
        horizon, interval = int(params.get("horizon", 24)), float(params.get("interval", 0.8))
        z = float(norm.ppf(0.5 + interval / 2))
        frames = []
        for sensor_id, group in model_input.sort_values("timestamp").groupby("sensor_id", sort=True):
            values = group["value"].to_numpy(dtype=float)
            sigma = float(np.std(np.diff(values))) if len(values) > 2 else 0.0
            steps = np.arange(1, horizon + 1)
            last = group["timestamp"].iloc[-1]
            width = z * sigma * np.sqrt(steps)
            frames.append(
                pd.DataFrame(
                    {
                        "sensor_id": sensor_id,
                        "timestamp": last + pd.to_timedelta(self.freq) * steps,
                        "yhat": values[-1],
                        "yhat_lower": values[-1] - width,
                        "yhat_upper": values[-1] + width,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def example_readings(n: int = 5, start: str = "2026-11-01T00:00:00Z") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sensor_id": ["sensor-x"] * n,
            "timestamp": pd.date_range(start, periods=n, freq="5min", tz="UTC").astype("datetime64[ns, UTC]"),
            "value": np.linspace(20.0, 21.0, n),
        }
    )


def register_contract_model(
    tracking_uri: str,
    name: str,
    python_model: PythonModel,
    *,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    alias: str | None = "champion",
) -> str:
    """Log ``python_model`` with a signature (and params schema) in one run, register it as ``name``, set
    ``alias``; return the version."""
    import mlflow
    from mlflow.models import infer_signature

    # MLflow's schema enforcement accepts only timezone-naive values in datetime columns: the signature and the
    # example use naive UTC (the API converts aware input to naive UTC for such models, core/ml/serving/loader.py)
    aware = example_readings()
    example = aware.assign(timestamp=aware["timestamp"].dt.tz_convert(None))
    output = python_model.predict(None, example, params)
    signature = infer_signature(example, output, params=params)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name("serving-tests")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("serving-tests")
    # the fluent API needs the process globals: pointed at this store for the block, then restored exactly
    with fluent_uri(tracking_uri), mlflow.start_run(experiment_id=experiment_id):
        mlflow.set_tags(tags or {})
        if metrics:
            mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            signature=signature,
            input_example=example,
            registered_model_name=name,
            pip_requirements=[],
        )
    version = str(info.registered_model_version)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return version
