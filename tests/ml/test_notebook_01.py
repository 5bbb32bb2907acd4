"""notebooks/01_data_exploration.ipynb: committed clean, and a papermill run writes the figures and logs exactly
one MLflow run (against a temporary sqlite store)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from core.config import PROJECT_ROOT
from tests.support.notebooks import code_cells, committed_parameters, imported_modules

NOTEBOOK = PROJECT_ROOT / "notebooks" / "01_data_exploration.ipynb"
FIGURES = [
    "timeseries_humidity.png",
    "timeseries_pressure.png",
    "timeseries_temperature.png",
    "timeseries_vibration.png",
    "timeseries_voltage.png",
    "daily_profiles.png",
    "value_distributions.png",
]


def test_notebook_is_committed_clean_with_a_parameters_cell() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec.name == "python3"
    assigned = committed_parameters(NOTEBOOK)
    assert assigned == {
        "data_path": "data/sensor_data.csv",
        "faults_path": "data/sensor_data_faults.csv",
        "output_dir": "docs/ml/eda",
        "tracking_uri": None,
        "log_to_mlflow": True,
    }


def test_notebook_only_imports_core_ml_and_display() -> None:
    modules = imported_modules(NOTEBOOK)
    assert modules == {"core.ml", "core.ml.eda", "IPython.display"}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    import papermill

    tmp = tmp_path_factory.mktemp("notebook_01")
    out_dir = tmp / "eda"
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    output = tmp / "01_data_exploration.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(output),
        parameters={"output_dir": str(out_dir), "tracking_uri": uri},
        kernel_name="python3",
        cwd=str(PROJECT_ROOT),
        progress_bar=False,
        execution_timeout=120,
    )
    return {"tmp": tmp, "out_dir": out_dir, "uri": uri, "output": output}


@pytest.mark.slow
def test_papermill_run_writes_the_figures(executed: dict[str, Path | str]) -> None:
    out_dir = Path(executed["out_dir"])
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FIGURES)
    for name in FIGURES:
        data = (out_dir / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) < 100_000
    nb = nbformat.read(executed["output"], as_version=4)
    images = [
        output for cell in code_cells(nb) for output in cell.outputs if "image/png" in output.get("data", {})
    ]
    assert len(images) == len(FIGURES)
    assert not any(output.output_type == "error" for cell in code_cells(nb) for output in cell.outputs)


@pytest.mark.slow
def test_papermill_run_logs_exactly_one_finished_mlflow_run(executed: dict[str, Path | str]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=str(executed["uri"]))
    experiment = client.get_experiment_by_name("eda")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["data_path"] == "data/sensor_data.csv"
    assert run.data.params["faults_path"] == "data/sensor_data_faults.csv"
    assert run.data.params["rows"] == "9000"
    assert run.data.params["sensors"] == "15"
    metrics = run.data.metrics
    assert metrics["rows"] == 9000
    assert metrics["sensors"] == 15
    assert metrics["sensor_types"] == 5
    assert metrics["gap_count"] == 1
    assert metrics["missing_readings"] == 36
    assert metrics["dropout_faults_recovered"] == 1
    assert 0.99 < metrics["mean_quality"] < 1.0
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {f"plots/{name}" for name in FIGURES}
    tables = {a.path for a in client.list_artifacts(run.info.run_id, "summary")}
    assert {"summary/sensors.csv", "summary/types.csv", "summary/gaps.csv", "summary/summary.json"} <= tables
    # the store is self-contained: artifacts beside the database, not in ./mlruns of the working directory
    assert experiment.artifact_location == (Path(executed["tmp"]) / "mlartifacts").as_uri()
