"""notebooks/03_forecast_prophet.ipynb and 04_forecast_tuning.ipynb: committed clean, parameters cell of literals,
only core.ml imports; a papermill run of each with tiny parameters against one temporary sqlite MLflow store
(03 then 04, so 04's registered version is judged against 03's champion)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from core.config import PROJECT_ROOT
from tests.support.notebooks import code_cells, committed_parameters, imported_modules

NB03 = PROJECT_ROOT / "notebooks" / "03_forecast_prophet.ipynb"
NB04 = PROJECT_ROOT / "notebooks" / "04_forecast_tuning.ipynb"
COMMON = {
    "data_path": "data/sensor_data.csv",
    "faults_path": "data/sensor_data_faults.csv",
    "output_dir": "docs/ml/forecast",
    "tracking_uri": None,
    "horizon": 24,
    "n_folds": 6,
    "n_validation": 3,
    "calibration_folds": 6,
    "interval": 0.8,
    "sensor_types": None,
    "max_sensors_per_type": None,
    "register": True,
}
TUNING = {"max_configs": 8, "seed": 0, "prophet_grid": None, "lightgbm_grid": None}
TINY = {
    "sensor_types": ["vibration"],
    "max_sensors_per_type": 1,
    "n_folds": 3,
    "n_validation": 1,
    "calibration_folds": 1,
    "horizon": 6,
}


@pytest.mark.parametrize(("path", "expected"), [(NB03, COMMON), (NB04, COMMON | TUNING)])
def test_notebook_is_committed_clean_with_a_parameters_cell(path: Path, expected: dict) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assigned = committed_parameters(path)
    assert assigned == expected


@pytest.mark.parametrize("path", [NB03, NB04])
def test_notebook_only_imports_core_ml_and_display(path: Path) -> None:
    modules = imported_modules(path)
    assert modules == {"core.ml", "core.ml.eda", "core.ml.forecast", "IPython.display"}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    import papermill

    tmp = tmp_path_factory.mktemp("notebook_03_04")
    out_dir = tmp / "forecast"
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    common = TINY | {"output_dir": str(out_dir), "tracking_uri": uri}
    runs = [
        (NB03, common),
        (
            NB04,
            common
            | {
                "max_configs": 2,
                "prophet_grid": {"changepoint_prior_scale": [0.05, 0.5]},
                "lightgbm_grid": {"num_leaves": [7], "n_estimators": [30, 60]},
            },
        ),
    ]
    for notebook, parameters in runs:
        papermill.execute_notebook(
            str(notebook),
            str(tmp / notebook.name),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(PROJECT_ROOT),
            progress_bar=False,
            execution_timeout=300,
        )
    return {"tmp": tmp, "out_dir": out_dir, "uri": uri}


@pytest.mark.slow
@pytest.mark.heavy_ml
def test_papermill_runs_write_the_figures(executed: dict[str, Path | str]) -> None:
    names = {p.name for p in Path(executed["out_dir"]).iterdir()}
    expected = {f"{prefix}_{name}.png" for prefix in ("train", "tuned") for name in (
        "forecast_vibration", "error_by_horizon", "skill", "coverage")}  # fmt: skip
    assert names == expected | {"tuned_validation_search.png"}
    for name in names:
        data = (Path(executed["out_dir"]) / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) < 150_000
    for notebook in (NB03, NB04):
        nb = nbformat.read(Path(executed["tmp"]) / notebook.name, as_version=4)
        outputs = [output for cell in code_cells(nb) for output in cell.outputs]
        assert not any(output.output_type == "error" for output in outputs)
        assert sum("image/png" in output.get("data", {}) for output in outputs) >= 3


@pytest.mark.slow
@pytest.mark.heavy_ml
def test_each_notebook_is_one_run_and_04_is_promoted_on_evidence(executed: dict[str, Path | str]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=str(executed["uri"]))
    experiment = client.get_experiment_by_name("forecast")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.info.run_name for r in parents) == ["forecast-train", "forecast-tune"]
    assert all(r.info.status == "FINISHED" for r in runs)
    by_name = {r.info.run_name: r for r in parents}
    assert by_name["forecast-tune"].data.params["grids"] != "defaults"
    assert by_name["forecast-train"].data.params["grids"] == "defaults"
    assert "vibration.naive.test_mae" in by_name["forecast-train"].data.metrics
    children = [
        r for r in runs if r.data.tags.get("mlflow.parentRunId") == by_name["forecast-tune"].info.run_id
    ]
    assert [r.data.tags["sm.sensor_type"] for r in children] == ["vibration"]
    assert {"val_mae", "test_mae", "test_skill", "test_coverage", "test_coverage_raw", "cal_n"} <= set(
        children[0].data.metrics
    )
    assert children[0].data.params["interval_calibration"] == (
        "sequential conformal through the folds, state as of training end"
    )

    versions = client.search_model_versions("name='forecast_vibration'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    v2 = client.get_model_version("forecast_vibration", "2")
    assert v2.tags["sm.promotion.metric"] == "mae"
    champion = str(client.get_model_version_by_alias("forecast_vibration", "champion").version)
    promoted = v2.tags["sm.promotion.decision"] == "promoted"
    assert champion == ("2" if promoted else "1")
    assert float(v2.tags["sm.promotion.candidate_score"]) >= 0
