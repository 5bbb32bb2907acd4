"""notebooks/06_vibration_gauntlet.ipynb: committed clean with one parameters cell; a papermill run in small
mode against a temporary sqlite MLflow store writes the figures and summary and logs one parent run with one
nested run per model, the IMS detectors registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from tests.support.notebooks import committed_parameters, imported_modules, missing_dataset_message

NOTEBOOK = PROJECT_ROOT / "notebooks" / "06_vibration_gauntlet.ipynb"
IMS_RAW = (PROJECT_ROOT / ".." / "shared" / "datasets" / "ims" / "raw").resolve()


def test_notebook_is_committed_clean_with_a_parameters_cell() -> None:
    assigned = committed_parameters(NOTEBOOK)
    assert assigned["ims_path"] is None  # ims/raw in SM_DATASETS_DIR
    assert assigned["cwru_path"] is None and assigned["tracking_uri"] is None
    assert assigned["output_dir"] == "docs/ml/vibration" and assigned["window"] == 2048
    assert assigned["simulate"] is True and assigned["max_files"] is None
    modules = imported_modules(NOTEBOOK)
    assert modules == {"core.ml.vibration.report", "IPython.display"}


@pytest.mark.heavy_ml
@pytest.mark.skipif(not IMS_RAW.is_dir(), reason="IMS excerpt not present")
def test_papermill_small_mode(tmp_path: Path) -> None:
    import mlflow.pyfunc
    import numpy as np
    import papermill
    from mlflow.tracking import MlflowClient
    from scipy.io import savemat

    from core.ml.registry.uris import fluent_uri
    from core.ml.vibration.simulator import simulate_signal
    from core.ml.vibration.tracking import evaluate_for_promotion

    cwru = tmp_path / "cwru"
    cwru.mkdir()
    x = simulate_signal("outer", fs=12_000, rpm=1797, n_samples=24_000, severity=0.25, rng=8)
    savemat(cwru / "OR007@6_0.mat", {"X130_DE_time": x[:, None], "X130RPM": np.array([[1797]])})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out_dir, summary = tmp_path / "plots", tmp_path / "summary.json"
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "06.ipynb"), kernel_name="python3", cwd=str(PROJECT_ROOT),
        progress_bar=False, execution_timeout=300,
        parameters={"output_dir": str(out_dir), "summary_path": str(summary), "tracking_uri": uri,
                    "sim_files": 30, "sim_onset": 20, "sim_samples": 8192, "diag_seeds": 1,
                    "sim_other_faults": ["ball"],
                    "cwru_path": str(cwru), "ims_path": str(IMS_RAW)},
    )  # fmt: skip
    names = {p.name for p in out_dir.iterdir()}
    assert {"sim_health_indicators.png", "sim_detection.png", "ims_2nd_test_health_indicators.png",
            "envelope_spectra_simulated.png", "envelope_spectra_ims_2nd_test.png"} <= names  # fmt: skip
    assert all((out_dir / n).read_bytes().startswith(b"\x89PNG") for n in names)
    data = json.loads(summary.read_text())
    assert data["reference"]["ims_test2_bearing1_rms_alarm_file"] == 530
    assert data["ims"]["2nd_test"]["coverage"]["files_present"] == 3
    assert data["simulation"]["onset_file"] == 20
    assert {r["indicator"] for r in data["simulation_other_faults"]["ball"]} >= {"rms", "isolation_forest"}
    assert 0 <= data["diagnosis_simulated"]["accuracy"] <= 1
    assert [(r["file"], r["fault"]) for r in data["cwru"]] == [("OR007@6_0.mat", "outer race")]
    assert "envelope_spectra_cwru.png" in names
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("vibration_gauntlet")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == [
        "ims_isolation_forest", "ims_one_class_svm", "sim_isolation_forest", "sim_one_class_svm"
    ]  # fmt: skip
    assert "diagnosis_accuracy_simulated" in parents[0].data.metrics
    for name in ("vibration_ims_isolation_forest", "vibration_ims_one_class_svm"):
        version = client.get_model_version(name, "1")
        assert version.tags["sm.family"] == "vibration"
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
        # promotion evidence: Youden's J on the held-out healthy file ± simulated defect, logged on the run; the
        # registry's family evaluator computes the same figure from the same file on the registered model
        j = client.get_run(version.run_id).data.metrics["heldout_youden_j"]
        assert version.tags["sm.promotion.metric"] == "heldout_youden_j"
        assert float(version.tags["sm.promotion.candidate_score"]) == pytest.approx(j)
        with fluent_uri(uri):
            model = mlflow.pyfunc.load_model(f"models:/{name}/1")
        assert evaluate_for_promotion(model, name) == pytest.approx(j)
        summary_j = data["models"][name.removeprefix("vibration_")]["heldout_evidence"]["youden_j"]
        assert summary_j == pytest.approx(j)
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"plots", "vibration_summary.json"} <= artifacts


@pytest.mark.slow
def test_a_missing_dataset_stops_the_run_before_any_work(tmp_path: Path) -> None:
    empty = tmp_path / "datasets"
    empty.mkdir()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    message = missing_dataset_message(
        NOTEBOOK, tmp_path / "06.ipynb", empty,
        {"output_dir": str(tmp_path / "out"), "summary_path": None, "tracking_uri": uri},
    )  # fmt: skip
    assert f"folder 'raw' in the datasets folder {empty} (SM_DATASETS_DIR), at {empty / 'ims' / 'raw'}" in message
    assert "make datasets DATASETS=ims" in message
    assert not (tmp_path / "out").exists()  # stopped before the simulation or any figure
