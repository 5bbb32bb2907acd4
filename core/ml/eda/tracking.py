"""One MLflow run of an exploratory data analysis: :func:`log_eda_run` logs the tables of
:class:`core.ml.eda.analysis.EdaSummary` and the figures of :mod:`core.ml.eda.plots`; :func:`dataset_params` identifies
the input files (the only reads here).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from matplotlib.figure import Figure

from core.ml.eda.analysis import EdaSummary, jsonable
from core.ml.eda.plots import DEFAULT_DPI, save_figures

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_EXPERIMENT = "eda"


def file_sha256(path: str | PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_params(
    data_path: str | PathLike[str], faults_path: str | PathLike[str] | None = None
) -> dict[str, str]:
    """Run parameters that identify the input files: their paths as given and their SHA-256 digests."""
    params = {"data_path": str(data_path), "data_sha256": file_sha256(data_path)}
    if faults_path is not None:
        params |= {"faults_path": str(faults_path), "faults_sha256": file_sha256(faults_path)}
    return params


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """``tracking_uri`` when given, else ``MLFLOW_TRACKING_URI`` from the settings."""
    if tracking_uri:
        return tracking_uri
    from core.config import load_settings

    return load_settings().mlflow_tracking_uri


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a local sqlite store: ``<directory of the .db>/mlartifacts`` so the store is self-contained (MLflow's
    own default is ``./mlruns`` relative to the working directory). None otherwise: the server decides."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db_path = unquote(tracking_uri[len("sqlite:///") :].split("?", 1)[0])
    if not db_path or db_path == ":memory:":
        return None
    return (Path(db_path).resolve().parent / "mlartifacts").as_uri()


def _get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)  # created concurrently
        if experiment is None:
            raise
        return experiment.experiment_id


def _param_value(value: Any) -> str:
    value = jsonable(value)
    return value if isinstance(value, str) else json.dumps(value)


def log_eda_run(
    summary: EdaSummary,
    figures: Mapping[str, Figure] | Iterable[str | PathLike[str]],
    params: Mapping[str, Any] | None = None,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    *,
    run_name: str | None = None,
    artifact_location: str | None = None,
    dpi: int = DEFAULT_DPI,
) -> str:
    """Log one MLflow run of an exploration and return its run id.

    * params: ``params`` (e.g. :func:`dataset_params`) plus ``rows``, ``sensors``, ``sensor_types``,
      ``interval_s``, ``start``, ``end`` from the summary;
    * metrics: the numeric ``summary.overview`` entries (rows, sensors, gap_count, missing_readings,
      mean_quality, low_quality_share, …);
    * artifacts: ``plots/<name>.png`` (``figures`` as figures by name, or paths of saved PNGs) and
      ``summary/<table>.csv`` for every table plus ``summary/summary.json``.

    ``tracking_uri`` None means the settings' ``MLFLOW_TRACKING_URI``. The experiment is created when missing
    (with ``artifact_location``, default :func:`default_artifact_location`). The run is named ``run_name``
    (default ``eda-<data file stem>``) and ends FINISHED, or FAILED when logging raises.
    """
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    location = artifact_location if artifact_location is not None else default_artifact_location(uri)
    experiment_id = _get_or_create_experiment(client, experiment, location)

    overview = summary.overview
    all_params: dict[str, Any] = {
        key: overview[key]
        for key in ("rows", "sensors", "sensor_types", "interval_s", "start", "end")
        if key in overview
    }
    all_params |= dict(params or {})
    if run_name is None and "data_path" in all_params:
        run_name = f"eda-{Path(str(all_params['data_path'])).stem}"
    run = client.create_run(experiment_id, run_name=run_name, tags={"sm.kind": "eda"})
    run_id: str = run.info.run_id
    try:
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, now, 0) for key, value in summary.metrics().items()],
            params=[Param(key, _param_value(value)) for key, value in all_params.items()],
            tags=[RunTag("sm.dataset", str(all_params.get("data_path", "")))],
        )
        with tempfile.TemporaryDirectory(prefix="sm-eda-") as tmp:
            plots = Path(tmp) / "plots"
            if isinstance(figures, Mapping):
                save_figures(figures, plots, dpi=dpi)
            else:
                plots.mkdir()
                for path in figures:
                    (plots / Path(path).name).write_bytes(Path(path).read_bytes())
            tables = Path(tmp) / "summary"
            tables.mkdir()
            for name, table in summary.tables().items():
                keep_index = name in {"sensors", "types", "daily_profile"}
                table.to_csv(tables / f"{name}.csv", index=keep_index, date_format="%Y-%m-%dT%H:%M:%SZ")
            (tables / "summary.json").write_text(
                json.dumps(summary.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
            )
            client.log_artifacts(run_id, str(plots), "plots")
            client.log_artifacts(run_id, str(tables), "summary")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
