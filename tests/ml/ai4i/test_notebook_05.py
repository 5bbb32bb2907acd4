"""notebooks/05_classification_gauntlet_ai4i.ipynb: committed clean with literal parameters, only core.ml imports,
and a papermill run in small mode against a temporary sqlite MLflow store logs one parent run with nested runs per
model, writes the figures and the summary, and registers the champion."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from core.config import PROJECT_ROOT
from tests.support.notebooks import (
    code_cells,
    committed_parameters,
    imported_modules,
    missing_dataset_message,
)

NOTEBOOK = PROJECT_ROOT / "notebooks" / "05_classification_gauntlet_ai4i.ipynb"
FIGURES = {"confusion_matrix.png", "roc_pr.png", "cv_f1.png", "feature_importances.png"}


def test_notebook_is_committed_clean_with_literal_parameters() -> None:
    assigned = committed_parameters(NOTEBOOK)
    assert assigned["data_path"] is None  # ai4i2020/ai4i2020.csv in SM_DATASETS_DIR
    assert assigned["output_dir"] == "docs/ml/ai4i"
    assert assigned["summary_path"] == "docs/ml/ai4i_summary.json"
    assert assigned["tracking_uri"] is None
    assert (assigned["n_splits"], assigned["n_repeats"], assigned["small_mode"]) == (5, 3, False)
    assert {"n_rows", "seed", "inner_splits", "models", "register", "log_to_mlflow"} <= set(assigned)


def test_notebook_only_imports_core_ml_and_display() -> None:
    modules = imported_modules(NOTEBOOK)
    assert all(m == "IPython.display" or m.startswith("core.ml") for m in modules), modules


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    import papermill

    tmp = tmp_path_factory.mktemp("notebook_05")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    params = {
        "output_dir": str(tmp / "ai4i"),
        "summary_path": str(tmp / "ai4i_summary.json"),
        "tracking_uri": uri,
        "small_mode": True,
    }
    from core.ml.ai4i.data import default_path

    if not default_path().is_file():
        params |= {"data_path": "generated", "n_rows": 3000}
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp / "05.ipynb"),
        parameters=params,
        kernel_name="python3",
        cwd=str(PROJECT_ROOT),
        progress_bar=False,
        execution_timeout=240,
    )
    key = "real_small" if default_path().is_file() else "generated_small"
    return {"tmp": tmp, "uri": uri, "key": key, "output": tmp / "05.ipynb"}


@pytest.mark.heavy_ml
@pytest.mark.slow
def test_small_run_writes_figures_and_summary(executed: dict[str, Path | str]) -> None:
    tmp, key = Path(executed["tmp"]), str(executed["key"])
    figures = tmp / "ai4i" / key
    assert {p.name for p in figures.iterdir()} == FIGURES
    assert all((figures / name).read_bytes().startswith(b"\x89PNG") for name in FIGURES)
    summary = json.loads((tmp / "ai4i_summary.json").read_text())
    run = summary["runs"][key]
    assert summary["reference"]["target_f1"] == 0.90
    assert set(run["models"]) == {
        f"{m}__{f}" for m in ("random_forest", "svc", "lightgbm") for f in ("raw", "engineered")
    }
    champion = run["champion"]
    assert champion["key"] in run["models"]
    assert champion["cv_mean"]["f1"] == max(m["mean"]["f1"] for m in run["models"].values())
    assert 0.0 < champion["cv_mean"]["f1"] <= 1.0
    assert run["registered"]["version"] == "1"
    assert run["registered"]["promotion"]["promoted"] is True
    nb = nbformat.read(executed["output"], as_version=4)
    assert not any(o.output_type == "error" for c in code_cells(nb) for o in c.outputs)


@pytest.mark.heavy_ml
@pytest.mark.slow
def test_small_run_logs_one_parent_run_with_nested_model_runs(executed: dict[str, Path | str]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=str(executed["uri"]))
    experiment = client.get_experiment_by_name("ai4i_gauntlet")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    names = {r.info.run_name for r in children}
    assert {"random_forest__raw", "svc__engineered", "lightgbm__engineered", "published_limits"} <= names
    assert len(children) == 6 + 1 + 1  # models × feature sets, the published limits, the registered champion
    assert "champion_cv_f1_mean" in parent.data.metrics and "holdout_f1" in parent.data.metrics
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert plots == {f"plots/{name}" for name in FIGURES}
    version = client.get_model_version_by_alias("ai4i_failure_classifier", "champion")
    champion_run = client.get_run(version.run_id)
    assert champion_run.data.tags["sm.family"] == "classifier"
    assert "holdout_f1" in champion_run.data.metrics
    assert experiment.artifact_location == (Path(executed["tmp"]) / "mlartifacts").as_uri()


@pytest.mark.slow
def test_a_missing_dataset_stops_the_run_with_the_file_the_folder_and_the_command(
    tmp_path: Path
) -> None:
    empty = tmp_path / "datasets"
    empty.mkdir()
    message = missing_dataset_message(
        NOTEBOOK, tmp_path / "05.ipynb", empty,
        {"output_dir": str(tmp_path / "out"), "summary_path": None, "log_to_mlflow": False},
    )  # fmt: skip
    assert str(empty / "ai4i2020" / "ai4i2020.csv") in message
    assert f"in the datasets folder {empty} (SM_DATASETS_DIR)" in message
    assert "make datasets DATASETS=ai4i2020" in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
