"""AUC and the DCASE (non-standardised) pAUC against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.ml.audio.metrics import auc, mcclish, partial_area, pauc, scores_by_id

# 2 anomalies, 10 normals. Ranked by score: A(0.95) N(0.9) A(0.5) N(0.4) N … → ROC (0,0)→(0,.5)→(.1,.5)→(.1,1)→(1,1)
Y = np.array([1, 1] + [0] * 10)
S = np.array([0.95, 0.5, 0.9, 0.4, 0.3, 0.29, 0.28, 0.27, 0.26, 0.25, 0.24, 0.23])


def test_hand_computed_example() -> None:
    assert auc(Y, S) == pytest.approx(19 / 20)  # A1 beats 10 normals, A2 beats 9
    assert partial_area(Y, S, 0.1) == pytest.approx(0.05)  # TPR 0.5 over FPR [0, 0.1]
    assert pauc(Y, S, 0.1) == pytest.approx(0.5)
    # FPR [0, 0.15]: 0.1·0.5 + 0.05·1.0 = 0.1 → /0.15
    assert pauc(Y, S, 0.15) == pytest.approx(0.1 / 0.15)
    # McClish: ½(1 + (0.05 − 0.005)/(0.1 − 0.005))
    assert mcclish(0.5, 0.1) == pytest.approx(0.5 * (1 + 0.045 / 0.095))


def test_pauc_interpolates_inside_a_tie_segment() -> None:
    # one anomaly tied with all 4 normals: the ROC is the diagonal, partial area over [0, 0.1] = 0.1²/2
    y = np.array([1, 0, 0, 0, 0])
    s = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    assert partial_area(y, s, 0.1) == pytest.approx(0.005)
    assert pauc(y, s, 0.1) == pytest.approx(0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mcclish_of_dcase_pauc_equals_sklearn_max_fpr(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + 0.8 * y
    assert mcclish(pauc(y, s)) == pytest.approx(roc_auc_score(y, s, max_fpr=0.1))
    assert pauc(y, s) != pytest.approx(roc_auc_score(y, s, max_fpr=0.1))


def test_perfect_and_inverted_detectors() -> None:
    y = np.array([0, 0, 0, 1, 1])
    assert pauc(y, np.array([0, 1, 2, 3, 4])) == pytest.approx(1.0)
    assert pauc(y, np.array([4, 3, 2, 1, 0])) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="both"):
        auc(np.array([0, 0]), np.array([1.0, 2.0]))


def test_scores_by_id() -> None:
    frame = pd.DataFrame(
        {
            "machine": ["fan"] * 12 + ["fan"] * 2,
            "machine_id": ["id_00"] * 12 + ["id_02"] * 2,
            "label": ["anomaly" if v else "normal" for v in Y] + ["normal", "normal"],
            "score": list(S) + [0.1, 0.2],
        }
    )
    table = scores_by_id(frame).set_index("machine_id")
    assert table.loc["id_00", "auc"] == pytest.approx(0.95)
    assert table.loc["id_00", "pauc"] == pytest.approx(0.5)
    assert table.loc["id_00", "n_anomaly"] == 2
    assert np.isnan(table.loc["id_02", "auc"])  # no anomalous clip: not evaluable, not invented
