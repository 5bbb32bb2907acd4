"""notebooks/07_audio_gauntlet.ipynb: committed clean, and a papermill run in small mode (real excerpt limited
to 3 clips per label, 4 generated normal clips of 2 s per id, PCA only) logs the gauntlet run with nested runs per
dataset and model, registers audio_<machine>_pca, and writes the figures and the summary JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from core.ml.registry.uris import fluent_uri
from tests.support.notebooks import committed_parameters, imported_modules, missing_dataset_message

NOTEBOOK = PROJECT_ROOT / "notebooks" / "07_audio_gauntlet.ipynb"
MIMII = (PROJECT_ROOT / ".." / "shared" / "datasets" / "mimii").resolve()


def test_notebook_is_committed_clean_with_a_parameters_cell() -> None:
    assigned = committed_parameters(NOTEBOOK)
    assert assigned["data_path"] is None  # mimii in SM_DATASETS_DIR
    assert assigned["layout"] == "mimii"
    assert assigned["output_dir"] == "docs/ml/audio"
    assert assigned["summary_path"] == "docs/ml/audio_summary.json"
    assert assigned["tracking_uri"] is None
    assert assigned["generated"] is True
    assert {"max_clips", "n_generated", "models", "n_folds"} <= set(assigned)


def test_notebook_only_imports_core_ml_and_display() -> None:
    modules = imported_modules(NOTEBOOK)
    assert modules == {"core.ml.audio", "IPython.display"}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    if not MIMII.is_dir():
        pytest.skip("MIMII excerpt not present")
    import papermill

    tmp = tmp_path_factory.mktemp("notebook_07")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp / "07.ipynb"),
        parameters={
            "data_path": str(MIMII),
            "output_dir": str(tmp / "audio"),
            "summary_path": str(tmp / "audio_summary.json"),
            "tracking_uri": uri,
            "max_clips": 3,
            "models": ["pca"],
            "n_folds": 3,
            "n_generated": 4,
            "generated_seconds": 2.0,
        },
        kernel_name="python3",
        cwd=str(PROJECT_ROOT),
        progress_bar=False,
        execution_timeout=600,
    )
    return {"tmp": tmp, "uri": uri}


@pytest.mark.slow
@pytest.mark.heavy_ml
def test_papermill_run_writes_figures_and_summary(executed: dict[str, Path | str]) -> None:
    tmp = Path(executed["tmp"])
    names = sorted(p.name for p in (tmp / "audio").iterdir())
    assert names == sorted(
        f"{d}_{f}.png"
        for d in ("real", "generated")
        for f in ("score_distributions", "roc_per_id", "spectrograms")
    )
    summary = json.loads((tmp / "audio_summary.json").read_text())
    assert summary["reference"]["auc_percent"] == {"fan": 65.2, "pump": 72.6, "slider": 85.0, "valve": 66.5}
    real = summary["datasets"]["real"]
    assert real["n_clips"] == 4  # 3 normal + the single anomalous clip
    assert set(real["models"]) == {"pca", "rf"}
    row = real["models"]["pca"]["by_id"][0]
    assert row["machine_id"] == "id_00" and row["n_normal"] == 3 and row["n_anomaly"] == 1
    assert any("1 anomalous clips" in note for note in real["caveats"])  # the excerpt's size is stated
    generated = summary["datasets"]["generated"]
    assert generated["n_clips"] == 12
    assert generated["models"]["pca"]["mean_auc"] > 0.5
    assert {r["name"] for r in summary["registered"]} == {"audio_mimii_pca", "audio_generated_fan_pca"}


@pytest.mark.slow
@pytest.mark.heavy_ml
def test_papermill_run_logs_one_gauntlet_run_and_registers_the_models(
    executed: dict[str, Path | str],
) -> None:
    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    uri = str(executed["uri"])
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("audio-gauntlet")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = {
        r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id
    }
    assert set(children) == {"real-pca", "real-rf", "generated-pca", "generated-rf"}
    assert "auc_generated_fan_id_00" in children["generated-pca"].data.metrics
    plots = {a.path for a in client.list_artifacts(parents[0].info.run_id, "plots")}
    assert "plots/real_roc_per_id.png" in plots
    version = client.get_model_version_by_alias("audio_mimii_pca", "champion")
    assert version.tags["sm.family"] == "audio"
    with fluent_uri(uri):
        model = mlflow.pyfunc.load_model("models:/audio_mimii_pca@champion")
    clip = min(MIMII.glob("id_00/anomaly_*.wav"))
    out = model.predict(pd.DataFrame({"path": [str(clip)]}))
    assert list(out.columns) == ["score", "is_anomaly"] and out["score"].iloc[0] > 0


@pytest.mark.slow
def test_a_missing_dataset_stops_the_run_with_the_folder_and_the_command(
    tmp_path: Path
) -> None:
    empty = tmp_path / "datasets"
    (empty / "mimii").mkdir(parents=True)  # the folder exists but holds no clip
    message = missing_dataset_message(
        NOTEBOOK, tmp_path / "07.ipynb", empty,
        {"output_dir": str(tmp_path / "out"), "summary_path": None, "generated": False},
    )  # fmt: skip
    assert f"folder of .wav clips 'id_00' in the datasets folder {empty} (SM_DATASETS_DIR)" in message
    assert "make datasets DATASETS=mimii" in message
