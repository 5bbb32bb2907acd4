"""notebooks/08_rul.ipynb: committed clean with literal parameters, only core.ml imports; a papermill run in small
mode against a temporary sqlite MLflow store logs one parent run with the registered model's nested run, writes the
figures and the summary, registers ``rul_turbofan`` and makes it champion; ``rul-evaluate`` then scores that
champion on a test/truth pair generated from held-back training engines, matching the run's own figure."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.config import PROJECT_ROOT
from core.ml.rul.data import default_train_path, load_cmapss, write_cmapss, write_truth
from core.ml.rul.model import promotion_cuts
from tests.support.notebooks import code_cells, committed_parameters, imported_modules, missing_dataset_message

NOTEBOOK = PROJECT_ROOT / "notebooks" / "08_rul.ipynb"
FIGURES = {
    "predicted_vs_true_cv.png",
    "predicted_vs_true_holdout.png",
    "interval_coverage.png",
    "rmse_by_fold.png",
    "nested_coverage.png",
}


def test_notebook_is_committed_clean_with_literal_parameters() -> None:
    assigned = committed_parameters(NOTEBOOK)
    assert assigned["data_path"] is None and assigned["tracking_uri"] is None
    assert (assigned["output_dir"], assigned["summary_path"]) == ("docs/ml/rul", "docs/ml/rul_summary.json")
    assert (assigned["folds"], assigned["repeats"], assigned["small_mode"]) == (5, 2, False)
    assert assigned["model_name"] == "rul_turbofan"


def test_notebook_only_imports_core_ml_and_display() -> None:
    modules = imported_modules(NOTEBOOK)
    assert all(m == "IPython.display" or m.startswith("core.ml") for m in modules), modules


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    import papermill

    if not default_train_path().is_file():
        pytest.skip(f"C-MAPSS FD001 absent: {default_train_path()}")
    tmp = tmp_path_factory.mktemp("notebook_08")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp / "08.ipynb"),
        parameters={
            "output_dir": str(tmp / "rul"),
            "summary_path": str(tmp / "rul_summary.json"),
            "tracking_uri": uri,
            "small_mode": True,
        },
        kernel_name="python3",
        cwd=str(PROJECT_ROOT),
        progress_bar=False,
        execution_timeout=240,
    )
    return {"tmp": tmp, "uri": uri, "output": tmp / "08.ipynb"}


@pytest.mark.heavy_ml
@pytest.mark.slow
def test_small_run_registers_a_champion_with_figures_and_summary(executed: dict[str, Path | str]) -> None:
    from mlflow.tracking import MlflowClient

    tmp = Path(executed["tmp"])
    assert {p.name for p in (tmp / "rul").iterdir()} == FIGURES
    summary = json.loads((tmp / "rul_summary.json").read_text())
    assert summary["small_mode"] is True and summary["engines"] == {"development": 80, "promotion": 20}
    assert len(summary["folds"]) == 3 and 5 < summary["cv"]["cv_rmse_mean"] < 40
    assert 0.5 < summary["holdout"]["coverage"] <= 1.0
    nested = summary["nested_coverage"]  # small mode: 1 x 3 nested splits, every calibration variant
    assert nested["chosen"] in {v["variant"] for v in nested["variants"]}
    assert all(v["splits"] == 3 and 0.5 < v["per_engine_mean"] <= 1.0 for v in nested["variants"])
    assert summary["registered"]["version"] == "1" and summary["registered"]["promotion"]["promoted"] is True
    client = MlflowClient(tracking_uri=str(executed["uri"]))
    experiment = client.get_experiment_by_name("rul")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    [child] = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert child.info.run_name == "rul_turbofan" and child.data.tags["sm.family"] == "rul"
    assert {"cv_rmse_mean", "cv_coverage_pooled", "holdout_rmse", "holdout_phm08_score"} <= set(parent.data.metrics)
    assert {"nested_coverage_per_engine_mean", "nested_coverage_per_engine_sd"} <= set(parent.data.metrics)
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} == {f"plots/{f}" for f in FIGURES}
    version = client.get_model_version_by_alias("rul_turbofan", "champion")
    assert str(version.version) == "1"
    nb = nbformat.read(executed["output"], as_version=4)
    assert not any(o.output_type == "error" for c in code_cells(nb) for o in c.outputs)


@pytest.mark.heavy_ml
@pytest.mark.slow
def test_rul_evaluate_scores_the_champion_on_a_generated_test_pair(
    executed: dict[str, Path | str], tmp_path: Path
) -> None:
    from apps.cli import app

    observed, truth = promotion_cuts(load_cmapss(default_train_path()))
    write_cmapss(observed, tmp_path / "test_FD001.txt")
    write_truth(truth["rul"], tmp_path / "RUL_FD001.txt")
    args = ["rul-evaluate", "--test", str(tmp_path / "test_FD001.txt"), "--truth", str(tmp_path / "RUL_FD001.txt"),
            "--tracking-uri", str(executed["uri"]), "--out", str(tmp_path / "engines.csv")]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output[result.output.index("{") :])
    summary = json.loads((Path(executed["tmp"]) / "rul_summary.json").read_text())
    assert scores["version"] == "1" and scores["engines"] == len(truth) == 100
    assert scores["rmse"] == pytest.approx(summary["holdout"]["rmse"], rel=1e-6)  # the run's promotion figure
    assert scores["coverage"] == pytest.approx(summary["holdout"]["coverage"])
    table = pd.read_csv(tmp_path / "engines.csv")
    assert len(table) == 100 and table["true_rul"].tolist() == truth["rul"].tolist()
    assert table["phm08"].sum() == pytest.approx(scores["phm08_score"], rel=1e-3)
    text = CliRunner().invoke(app, args)
    assert "RMSE:" in text.output and "PHM08 score:" in text.output and "coverage" in text.output
    bad = CliRunner().invoke(app, [*args[:4], str(tmp_path / "missing.txt"), *args[5:]])
    assert bad.exit_code == 2 and "is not a file" in bad.output


@pytest.mark.slow
def test_a_missing_dataset_stops_the_run_with_the_file_the_folder_and_the_command(tmp_path: Path) -> None:
    empty = tmp_path / "datasets"
    empty.mkdir()
    message = missing_dataset_message(
        NOTEBOOK, tmp_path / "08.ipynb", empty,
        {"output_dir": str(tmp_path / "out"), "summary_path": None, "log_to_mlflow": False},
    )  # fmt: skip
    assert str(empty / "cmapss" / "train_FD001.txt") in message
    assert "make datasets DATASETS=cmapss" in message
