"""Detector wrappers: trained on healthy windows only, they score damaged windows higher; the pyfunc wrapper
logs, registers and reloads through MLflow (temporary sqlite store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ml.vibration.bearings import REXNORD_ZA_2115
from core.ml.vibration.features import FEATURE_COLUMNS, window_features
from core.ml.vibration.models import MODEL_KINDS, train_detector
from core.ml.vibration.simulator import simulate_signal


def _windows(fault: str, severity: float, seeds: range) -> pd.DataFrame:
    frames = [
        window_features(
            simulate_signal(
                fault, fs=20_000, rpm=2000, geometry=REXNORD_ZA_2115, n_samples=8192, severity=severity, rng=s
            ),
            20_000,
            REXNORD_ZA_2115,
            2000,
            window=2048,
        )
        for s in seeds
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return {
        "train": _windows("none", 0, range(8)),
        "healthy": _windows("none", 0, range(100, 104)),
        "faulty": _windows("outer", 0.3, range(200, 204)),
    }


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_detector_scores_damage_higher_than_unseen_healthy(kind: str, data: dict[str, pd.DataFrame]) -> None:
    det = train_detector(kind, data["train"], random_state=0)
    assert det.train_rows == len(data["train"]) == 56
    healthy, faulty = det.score(data["healthy"]), det.score(data["faulty"])
    assert np.median(faulty) > np.quantile(healthy, 0.95)
    assert (faulty > det.threshold).mean() > 0.9
    # the window threshold (99th percentile of 56 training windows) is tight: unseen healthy windows exceed it
    # now and then, which is why alarms use per-file medians and n-of-m confirmation
    assert (healthy > det.threshold).mean() < 0.35
    assert det.threshold == pytest.approx(np.percentile(det.score(data["train"]), 99))


def test_training_rejects_tiny_or_incomplete_tables(data: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="at least 10"):
        train_detector("isolation_forest", data["train"].head(5))
    det = train_detector("isolation_forest", data["train"])
    with pytest.raises(ValueError, match="lacks"):
        det.score(data["healthy"].drop(columns=["env_bpfo"]))
    with pytest.raises(ValueError):
        train_detector("lof", data["train"])


@pytest.mark.heavy_ml
def test_pyfunc_logs_registers_and_reloads(tmp_path: Path, data: dict[str, pd.DataFrame]) -> None:
    import mlflow

    from core.ml.vibration.promotion import build_evidence
    from core.ml.vibration.tracking import PROMOTION_METRIC, log_detector_run, start_experiment

    uri = start_experiment(f"sqlite:///{tmp_path / 'mlflow.db'}")
    det = train_detector("isolation_forest", data["train"])
    healthy = [
        simulate_signal("none", fs=20_000, rpm=2000, geometry=REXNORD_ZA_2115, n_samples=8192, rng=s)
        for s in (100, 101)
    ]
    evidence = build_evidence(healthy)  # the same recordings with the simulated outer-race defect added
    with mlflow.start_run(run_name="parent"):
        info = log_detector_run(
            det, data["train"], run_name="ims_isolation_forest", metrics={"heldout_exceed_rate": 0.1},
            params={"data": "test"}, registered_model_name="vibration_test_isolation_forest",
            heldout=evidence, tracking_uri=uri,
        )  # fmt: skip
    assert info["version"] == "1"
    assert info["promotion"]["promoted"] is True  # first version: no champion yet
    model = mlflow.pyfunc.load_model("models:/vibration_test_isolation_forest@champion")
    out = model.predict(data["faulty"][list(FEATURE_COLUMNS)])
    assert list(out.columns) == ["score", "is_anomaly"]
    np.testing.assert_allclose(out["score"], det.score(data["faulty"]))
    client = mlflow.MlflowClient(uri)
    version = client.get_model_version("vibration_test_isolation_forest", "1")
    assert version.tags["sm.family"] == "vibration"
    run = client.get_run(version.run_id)
    assert run.data.metrics["heldout_exceed_rate"] == 0.1
    # promotion evidence: Youden's J on the held-out recordings, logged and used as the candidate's score
    j, tpr, fpr = (run.data.metrics[f"heldout_{k}"] for k in ("youden_j", "tpr", "fpr"))
    assert j == pytest.approx(tpr - fpr) and j > 0.5
    assert info["promotion"]["candidate_score"] == pytest.approx(j)
    assert version.tags["sm.promotion.metric"] == PROMOTION_METRIC[0] == "heldout_youden_j"
    assert run.data.tags["mlflow.parentRunId"]
