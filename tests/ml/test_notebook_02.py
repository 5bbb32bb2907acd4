"""notebooks/02_anomaly_isolation_forest.ipynb: committed clean, and a papermill run with small parameters writes
the figures, logs one MLflow run (with one nested run per sensor type) and registers a champion (temp sqlite)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from core.config import PROJECT_ROOT
from tests.support.notebooks import code_cells, committed_parameters, imported_modules

NOTEBOOK = PROJECT_ROOT / "notebooks" / "02_anomaly_isolation_forest.ipynb"
FIGURES = ["scores_voltage.png", "score_distributions.png", "precision_recall_threshold.png"]


def test_notebook_is_committed_clean_with_a_parameters_cell() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assigned = committed_parameters(NOTEBOOK)
    assert assigned == {
        "data_path": "data/sensor_data.csv",
        "faults_path": "data/sensor_data_faults.csv",
        "output_dir": "docs/ml/anomaly",
        "tracking_uri": None,
        "sensor_types": None,
        "n_estimators": 200,
        "max_train_rows": None,
        "train_fraction": 0.4,
        "val_fraction": 0.2,
        "alarm_rate": 0.01,
        "promote": True,
        "labels_path": None,
        "labels_from_db": True,
    }


def test_notebook_only_imports_core_ml_and_display() -> None:
    modules = imported_modules(NOTEBOOK)
    assert modules == {"core.ml", "core.ml.anomaly", "core.ml.eda", "IPython.display"}


@pytest.mark.heavy_ml
def test_papermill_run_trains_registers_and_logs_one_run(tmp_path: Path) -> None:
    import papermill
    from mlflow.tracking import MlflowClient

    out_dir = tmp_path / "anomaly"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    output = tmp_path / "02.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(output),
        parameters={
            "output_dir": str(out_dir),
            "tracking_uri": uri,
            "sensor_types": ["voltage"],
            "n_estimators": 20,
            "max_train_rows": 300,
            "labels_from_db": False,
        },
        kernel_name="python3",
        cwd=str(PROJECT_ROOT),
        progress_bar=False,
        execution_timeout=180,
    )
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FIGURES)
    for name in FIGURES:
        assert (out_dir / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    nb = nbformat.read(output, as_version=4)
    outputs = [o for cell in code_cells(nb) for o in cell.outputs]
    assert not any(o.output_type == "error" for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == len(FIGURES)

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("anomaly")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 1
    parent, child = parents[0], children[0]
    assert parent.info.status == child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.data.params["sensor_types"] == "voltage"
    assert parent.data.params["n_estimators"] == "20"
    assert "voltage.iforest.f1" in parent.data.metrics and "voltage.baseline.f1" in parent.data.metrics
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} == {
        f"plots/{n}" for n in FIGURES
    }
    # promotion against the robust_z baseline (no champion yet) by alerts on the test split: in small mode the
    # forest's alerts catch the test spike without a false alarm, the baseline raises no alert
    version = client.get_model_version_by_alias("anomaly_voltage", "champion")
    assert version.run_id == child.info.run_id
    assert version.tags["sm.promotion.decision"] == "promoted"
    assert version.tags["sm.promotion.serving"] == "baseline robust_z"
    assert "recall better, false alarms equal" in version.tags["sm.promotion.reason"]
    assert {"f1", "precision", "recall", "false_alarms", "threshold"} <= set(child.data.metrics)
    assert child.data.metrics["promotion.candidate.event_recall"] == 1.0
    assert child.data.metrics["promotion.serving.event_recall"] == 0.0
    assert parent.data.metrics["voltage.promotion_promoted"] == 1.0
    assert "summary/promotion.csv" in {a.path for a in client.list_artifacts(parent.info.run_id, "summary")}
    shown = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "baseline robust_z" in shown and "candidate v1" in shown
