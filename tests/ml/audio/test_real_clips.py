"""The real MIMII excerpt in ../shared/datasets/mimii loads and scores (skipped where it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import PROJECT_ROOT

MIMII = (PROJECT_ROOT / ".." / "shared" / "datasets" / "mimii").resolve()
pytestmark = pytest.mark.skipif(not MIMII.is_dir(), reason="MIMII excerpt not present")


def test_real_clips_load_at_16k_mono() -> None:
    from core.ml.audio.io import describe, load_wav, read_clips

    clips = read_clips(MIMII, "mimii")
    counts = describe(clips).set_index("label")["clips"]
    assert counts["normal"] == 10 and counts["anomaly"] == 1
    assert set(clips["machine_id"]) == {"id_00"}
    signal = load_wav(clips["path"].iloc[0])
    assert signal.shape == (160_000,) and np.abs(signal).max() <= 1.0


@pytest.mark.heavy_ml
def test_real_clips_score_with_the_pca_model() -> None:
    from core.ml.audio.evaluation import evaluate_frame_model
    from core.ml.audio.features import extract_context_vectors
    from core.ml.audio.io import read_clips

    clips = read_clips(MIMII, "mimii")
    vectors = extract_context_vectors(clips["path"], progress=False)
    assert all(v.shape == (309, 640) for v in vectors.values())
    evaluation = evaluate_frame_model(clips, vectors, "pca", n_folds=5)
    scores = evaluation.clip_scores
    assert len(scores) == 11 and scores["clip"].is_unique
    assert np.isfinite(scores["score"]).all() and (scores["score"] > 0).all()
    row = evaluation.by_id.iloc[0]
    assert row.n_normal == 10 and row.n_anomaly == 1
    assert 0.0 <= row.auc <= 1.0 and row.auc * 10 == pytest.approx(
        round(row.auc * 10)
    )  # 1 anomaly vs 10 normals
