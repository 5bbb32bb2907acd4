"""core/ml/rul/coverage.py and the weighted/normalised conformal calibrator: the admissible cuts are exactly the
support of the test-like truncation, the estimate at a cut equals the estimate on the truncated trajectory (what
lets the nested study score every cut exactly), the engine-weighted and normalised quantiles, and the nested
splits (three disjoint engine sets, one row per split and variant)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ml.rul.coverage import (
    VARIANTS,
    CalibrationData,
    admissible_cuts,
    coverage_of,
    difficulty_scale,
    nested_coverage,
    predicted_cuts,
    summarise_coverage,
)
from core.ml.rul.evaluation import ConformalCalibrator, truncate, weighted_rank_quantiles
from core.ml.rul.model import RulModel, predict_last
from tests.ml.rul.conftest import SMALL


def test_admissible_cuts_are_the_support_of_truncation(fleet: pd.DataFrame) -> None:
    cuts = admissible_cuts(fleet)
    for unit, group in cuts.groupby("unit"):
        life = int(fleet.loc[fleet["unit"] == unit, "cycle"].max())
        assert sorted(group["rul"]) == list(range(1, min(145, life - 31) + 1))
        assert (group["cycle"] + group["rul"] == life).all()
        assert group["weight"].sum() == pytest.approx(1.0)
    _, truth = truncate(fleet, 3, cuts_per_engine=50)
    merged = truth.merge(cuts, left_on=["source_unit", "last_cycle"], right_on=["unit", "cycle"], how="left")
    assert merged["rul_y"].notna().all() and (merged["rul_x"] == merged["rul_y"]).all()


def test_estimate_at_a_cut_equals_the_estimate_on_the_truncated_trajectory(
    fleet: pd.DataFrame, small_model: RulModel
) -> None:
    engines = fleet[fleet["unit"].isin([36, 37, 38])]
    at_cuts = predicted_cuts(small_model, engines)
    observed, truth = truncate(engines, 5, cuts_per_engine=4)
    direct = predict_last(small_model, observed).merge(truth.drop(columns=["last_cycle"]), on="unit")
    merged = direct.merge(at_cuts, left_on=["source_unit", "last_cycle"], right_on=["unit", "cycle"])
    assert len(merged) == len(truth)
    np.testing.assert_allclose(merged["rul_x"], merged["predicted"], rtol=1e-12)


def test_weighted_quantiles_weigh_engines_not_cuts() -> None:
    scores = np.arange(1.0, 201.0)
    # equal weights: the weighted rule is the rank rule up to the (tiny) difference of the inflation
    lo, hi = weighted_rank_quantiles(scores, None, 0.1)
    wlo, whi = weighted_rank_quantiles(scores, np.ones(200), 0.1)
    assert (lo, hi) == (10.0, 191.0) and abs(wlo - lo) <= 1 and abs(whi - hi) <= 1
    # one engine with 190 cuts of score 0 and ten engines with one large cut each: by engine, the upper
    # quantile is among the large scores; by cut, it would be 0
    s = np.r_[np.zeros(190), np.arange(101.0, 111.0)]
    w = np.r_[np.full(190, 1 / 190), np.ones(10)]
    assert weighted_rank_quantiles(s, w, 0.2)[1] >= 101.0
    assert weighted_rank_quantiles(s, None, 0.2)[1] == 0.0


def test_normalised_scores_cover_evenly_where_errors_grow() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 120, 6000)
    t = p + rng.normal(0, 1.0 + 0.2 * p)
    cal, test = slice(0, 3000), slice(3000, None)
    plain = ConformalCalibrator.fit(p[cal], t[cal], 0.1)
    scaled = ConformalCalibrator.fit(p[cal], t[cal], 0.1, scale=(1.0, 0.2))
    low, high = p[test] < 40, p[test] >= 80
    cover = {}
    for name, c in (("plain", plain), ("scaled", scaled)):
        lo, hi = c.interval(p[test])
        inside = (lo <= t[test]) & (t[test] <= hi)
        cover[name] = (inside[low].mean(), inside[high].mean())
    assert cover["plain"][0] > 0.97 and cover["plain"][1] < 0.85  # one width for all: wrong at both ends
    assert all(0.87 <= c <= 0.93 for c in cover["scaled"])
    restored = ConformalCalibrator.from_dict(scaled.to_dict())
    np.testing.assert_allclose(restored.interval(p[:50]), scaled.interval(p[:50]))


def test_difficulty_scale_follows_the_error_growth() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 120, 4000)
    train = pd.DataFrame({"predicted": p, "rul": p + rng.normal(0, 2.0 + 0.1 * p)})
    a, b = difficulty_scale(train)
    assert 1.0 <= a < 3.0 and 0.06 < b < 0.1  # E|N(0, s)| = 0.8 s


def test_nested_coverage_splits_and_summary(fleet: pd.DataFrame) -> None:
    variants = {k: VARIANTS[k] for k in ("bins40/80_20cuts", "normalised_allcuts_engine-weighted")}
    table = nested_coverage(fleet, fleet["unit"].unique(), SMALL, repeats=1, folds=3, variants=variants,
                            progress=False)  # fmt: skip
    assert len(table) == 3 * 2 and set(table["variant"]) == set(variants)
    first = table[table["variant"] == "bins40/80_20cuts"]
    assert (first["train_engines"] + first["calibration_engines"] + first["evaluation_engines"] == 40).all()
    assert first["evaluation_engines"].sum() == 40  # each engine evaluated once per repeat
    for column in ("per_engine", "per_cut", "one_cut"):
        assert table[column].between(0.5, 1.0).all()
    summary = summarise_coverage(table)
    assert list(summary["variant"]) == list(variants) and (summary["splits"] == 3).all()
    assert summary["per_engine_mean"].iloc[0] == pytest.approx(first["per_engine"].mean())


def test_coverage_definitions_weigh_engines_or_cuts() -> None:
    cuts = pd.DataFrame({"unit": [1, 1, 1, 2], "rul": [10, 20, 30, 40], "weight": [1 / 3, 1 / 3, 1 / 3, 1.0]})
    out = coverage_of([0, 0, 25, 0], [15, 25, 35, 35], cuts)  # unit 1: 3 of 3 covered; unit 2: not covered
    assert out["per_engine"] == pytest.approx(0.5) and out["per_cut"] == pytest.approx(0.75)
    assert isinstance(CalibrationData, type)
