"""RUL logic: loaders, trailing windows, capped target, engine splits without leakage, test-like truncation, the
PHM08 score, conformal coverage on synthetic data, the model's input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ml.rul.data import COLUMNS, CmapssFormatError, load_cmapss, load_truth, rul_target, write_cmapss
from core.ml.rul.evaluation import (
    ConformalCalibrator,
    cv_splits,
    engine_folds,
    phm08_score,
    scores,
    truncate,
)
from core.ml.rul.features import Scaler, cycle_features, trailing_mean, trailing_slope
from core.ml.rul.model import RulModel, predict_last, promotion_engines


def test_trailing_windows_match_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=40).cumsum()
    for w in (1, 5, 30):
        means, slopes = trailing_mean(x, w), trailing_slope(x, w)
        for i in range(len(x)):
            part = x[max(0, i - w + 1) : i + 1]
            assert means[i] == pytest.approx(part.mean())
            expected = 0.0 if len(part) < 2 else np.polyfit(np.arange(len(part)), part, 1)[0]
            assert slopes[i] == pytest.approx(expected, abs=1e-9)


def test_features_at_a_cycle_use_no_later_cycle(fleet: pd.DataFrame) -> None:
    unit = fleet[fleet["unit"] == 1]
    scaler = Scaler.fit(fleet, ["T24", "T30"])
    full = cycle_features(unit, ["T24", "T30"], scaler)
    cut = cycle_features(unit[unit["cycle"] <= 50], ["T24", "T30"], scaler)
    pd.testing.assert_frame_equal(full.iloc[:50].reset_index(drop=True), cut)
    shuffled = cycle_features(unit.sample(frac=1.0, random_state=1), ["T24", "T30"], scaler)
    pd.testing.assert_frame_equal(full, shuffled)


def test_target_is_cycles_to_failure_capped() -> None:
    frame = pd.DataFrame({"unit": [1] * 5 + [2] * 3, "cycle": [1, 2, 3, 4, 5, 1, 2, 3]})
    assert rul_target(frame, cap=None).tolist() == [4, 3, 2, 1, 0, 2, 1, 0]
    assert rul_target(frame, cap=2).tolist() == [2, 2, 2, 1, 0, 2, 1, 0]


def test_engine_splits_are_disjoint_and_cover_every_engine() -> None:
    units = np.arange(1, 81)
    folds = engine_folds(units, 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == units.tolist()
    splits = cv_splits(units, 5, 2, 0.25, seed=0)
    assert len(splits) == 10
    for _, _, split in splits:
        train, cal, val = (set(s.tolist()) for s in (split.train, split.calibration, split.validation))
        assert not (train & cal or train & val or cal & val)
        assert train | cal | val == set(units.tolist())
    for r in range(2):
        validated = np.concatenate([s.validation for rr, _, s in splits if rr == r])
        assert sorted(validated.tolist()) == units.tolist()  # each engine validated once per repeat
    development, promotion = promotion_engines(np.arange(1, 101))
    assert len(promotion) == 20 and not set(development) & set(promotion)


def test_truncation_cuts_each_engine_once_like_the_test_set(fleet: pd.DataFrame) -> None:
    observed, truth = truncate(fleet, 5, max_rul=145, min_cycles=31)
    assert len(truth) == fleet["unit"].nunique()
    lives = fleet.groupby("unit")["cycle"].max()
    for row in truth.itertuples():
        part = observed[observed["unit"] == row.unit]
        assert part["cycle"].max() == row.last_cycle == lives[row.source_unit] - row.rul
        assert len(part) >= 31 and 1 <= row.rul <= 145
    again = truncate(fleet, 5)[1]
    pd.testing.assert_frame_equal(truth, again)


def test_phm08_score_by_hand() -> None:
    assert phm08_score([10], [10]) == 0.0
    assert phm08_score([20], [10]) == pytest.approx(np.e - 1)  # 10 late: e^(10/10) − 1
    assert phm08_score([0], [13]) == pytest.approx(np.e - 1)  # 13 early: e^(13/13) − 1
    assert phm08_score([20, 0], [10, 13]) == pytest.approx(2 * (np.e - 1))
    assert phm08_score([15], [10]) > phm08_score([5], [10])  # late costs more than early
    s = scores([1, 2, 3], [1, 2, 5], [0, 0, 0], [2, 3, 4])
    assert s["rmse"] == pytest.approx(np.sqrt(4 / 3)) and s["coverage"] == pytest.approx(2 / 3)


def test_conformal_interval_covers_90_percent_of_exchangeable_cases() -> None:
    rng = np.random.default_rng(1)
    coverages = []
    for _trial in range(40):
        pred_cal = rng.uniform(0, 125, 300)
        true_cal = pred_cal + rng.normal(0, 5 + 0.1 * pred_cal)
        calibrator = ConformalCalibrator.fit(pred_cal, true_cal, 0.1, edges=(40, 80))
        pred = rng.uniform(0, 125, 2000)
        true = pred + rng.normal(0, 5 + 0.1 * pred)
        lo, hi = calibrator.interval(pred)
        coverages.append(np.mean((lo <= true) & (true <= hi)))
    assert 0.88 <= float(np.mean(coverages)) <= 0.93
    narrow = ConformalCalibrator.fit(pred_cal, true_cal, 0.1, edges=(40, 80))
    assert narrow.q_hi[0] - narrow.q_lo[0] < narrow.q_hi[2] - narrow.q_lo[2]  # wider where errors are larger
    assert ConformalCalibrator.fit([10.0] * 5, [10.0] * 5, 0.1).q_hi == (np.inf,)  # too few: no finite bound
    assert ConformalCalibrator.from_dict(narrow.to_dict()) == narrow


def test_model_estimates_each_unit_and_refuses_bad_input(fleet: pd.DataFrame, small_model: RulModel) -> None:
    observed, truth = truncate(fleet[fleet["unit"] > 35], 9)
    out = predict_last(small_model, observed)
    assert out["unit"].tolist() == truth["unit"].tolist()
    # the interval is the estimate shifted by calibrated residual quantiles: ordered and ≥ 0, but it need not
    # contain a biased estimate (this small synthetic model over-estimates near failure: its low bin shifts down)
    assert (0 <= out["rul_lower"]).all() and (out["rul_lower"] < out["rul_upper"]).all()
    lo, hi = small_model.calibrator.interval(out["rul"])
    np.testing.assert_allclose(out["rul_lower"], lo)
    np.testing.assert_allclose(out["rul_upper"], hi)
    assert (out["rul"].between(0, small_model.cap)).all()
    assert np.sqrt(np.mean((out["rul"] - truth["rul"]) ** 2)) < 40  # learns the synthetic wear
    with pytest.raises(ValueError, match="fewer than 10 cycles"):
        small_model.predict_frame(observed[observed["cycle"] <= 5])
    with pytest.raises(ValueError, match="lack the columns"):
        small_model.predict_frame(observed.drop(columns=["T24"]))
    bad = observed.copy()
    bad.loc[bad.index[3], "T30"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        small_model.predict_frame(bad)


def test_loaders_read_the_published_format_and_refuse_others(tmp_path: Path, fleet: pd.DataFrame) -> None:
    path = tmp_path / "test.txt"
    write_cmapss(fleet[fleet["unit"] <= 3], path)
    loaded = load_cmapss(path)
    assert list(loaded.columns) == list(COLUMNS) and loaded["unit"].nunique() == 3
    (tmp_path / "short.txt").write_text("1 1 0 0 100 1 2 3\n")
    with pytest.raises(CmapssFormatError, match="8 columns"):
        load_cmapss(tmp_path / "short.txt")
    (tmp_path / "truth.txt").write_text("112\n98\n")
    assert load_truth(tmp_path / "truth.txt").tolist() == [112, 98]
    with pytest.raises(CmapssFormatError, match="2 RUL values for 3 test units"):
        load_truth(tmp_path / "truth.txt", 3)


def test_real_fd001_file(fd001: pd.DataFrame) -> None:
    assert len(fd001) == 20631 and fd001["unit"].nunique() == 100
    assert rul_target(fd001, cap=None).groupby(fd001["unit"]).max().min() >= 127


def test_cross_conformal_calibrates_on_every_engine_once(fleet: pd.DataFrame) -> None:
    from dataclasses import replace

    from core.ml.rul.study import fit_model_cross
    from tests.ml.rul.conftest import SMALL

    config = replace(SMALL, calibration="cross", calibration_folds=3, calibration_cuts=4, n_estimators=20)
    model = fit_model_cross(fleet, list(range(1, 25)), config, seed=0)
    assert sum(model.calibrator.counts) == 24 * 4  # every engine's cuts, each scored by a model without it
    observed, truth = truncate(fleet[fleet["unit"] > 30], 2)
    out = predict_last(model, observed)
    assert (out["rul_lower"] <= out["rul"]).all() and (out["rul"] <= out["rul_upper"]).all()


async def test_rul_due_dates_answer_repeat_alerts_from_the_cache_without_a_query() -> None:
    """The scheduling agent's hot path: an asset without C-MAPSS-channel sensors costs one query per TTL, not one
    per alert, and never touches the model server."""
    from core.ml.rul.due import RulDueDates

    class Session:
        queries = 0

        async def scalar(self, query: object) -> int:
            self.queries += 1
            return 0

    def no_server() -> object:
        raise AssertionError("no model server for an asset without RUL channels")

    now = [0.0]
    source = RulDueDates(no_server, ttl_s=30.0, clock=lambda: now[0])  # type: ignore[arg-type]
    session = Session()
    for _ in range(3):
        assert await source.lower_bound_at(session, 7) is None  # type: ignore[arg-type]
    assert session.queries == 1
    now[0] = 31.0
    assert await source.lower_bound_at(session, 7) is None  # type: ignore[arg-type]
    assert session.queries == 2
    assert await source.lower_bound_at(session, None) is None  # type: ignore[arg-type]
    assert session.queries == 2


def test_model_of_tells_other_models_apart_without_hiding_errors() -> None:
    from mlflow.exceptions import MlflowException

    from core.ml.rul.model import model_of

    class Pyfunc:
        def __init__(self, error: Exception) -> None:
            self.error = error

        def unwrap_python_model(self) -> object:
            raise self.error

    assert model_of(object()) is None  # not a pyfunc
    assert model_of(Pyfunc(MlflowException("no python model"))) is None  # a pyfunc of another flavour
    with pytest.raises(RuntimeError, match="broken"):
        model_of(Pyfunc(RuntimeError("broken")))
