"""core.ml.features.SensorFeatureTransformer: no leakage across time or sensors, shapes, fit/transform."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ml.features import SensorFeatureTransformer


def _series(sensor: str, n: int, *, seed: int, level: float = 50.0, start: str = "2026-10-30T00:00:00Z"):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sensor_id": sensor,
            "sensor_type": "temperature",
            "timestamp": pd.date_range(start, periods=n, freq="5min", tz="UTC"),
            "value": level + rng.normal(0, 1.0, n).cumsum() * 0.3,
        }
    )


def _interleave(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable", ignore_index=True)


def test_names_and_shape() -> None:
    data = _series("s-1", 40, seed=1)
    tr = SensorFeatureTransformer(lags=5, windows=(3, 6)).fit(data)
    names = list(tr.get_feature_names_out())
    assert names == [
        "value",
        "lag_1",
        "lag_2",
        "lag_3",
        "lag_4",
        "lag_5",
        "roll_mean_3",
        "roll_std_3",
        "roll_min_3",
        "roll_max_3",
        "dev_mean_3",
        "roll_mean_6",
        "roll_std_6",
        "roll_min_6",
        "roll_max_6",
        "dev_mean_6",
        "rate_of_change",
        "tod_sin",
        "tod_cos",
    ]
    out = tr.transform(data)
    assert out.shape == (40, len(names))
    assert np.isfinite(out).all()
    assert tr.warmup_rows == 5
    small = SensorFeatureTransformer(
        lags=2, windows=(4,), rate_of_change=False, time_of_day=False, deviation=False
    )
    assert list(small.fit(data).get_feature_names_out()) == [
        "value",
        "lag_1",
        "lag_2",
        "roll_mean_4",
        "roll_std_4",
        "roll_min_4",
        "roll_max_4",
    ]


def test_feature_values_are_the_documented_ones() -> None:
    data = pd.DataFrame(
        {
            "sensor_id": "s",
            "timestamp": pd.to_datetime(
                [
                    "2026-10-30T06:00:00Z",
                    "2026-10-30T06:05:00Z",
                    "2026-10-30T06:15:00Z",
                    "2026-10-30T06:20:00Z",
                ]
            ),
            "value": [1.0, 3.0, 6.0, 2.0],
        }
    )
    f = SensorFeatureTransformer(lags=2, windows=(2,), scaler=None).fit(data).compute(data)
    assert f["lag_1"].tolist() == [1.0, 1.0, 3.0, 6.0]
    assert f["lag_2"].tolist() == [1.0, 1.0, 1.0, 3.0]
    assert f["roll_mean_2"].tolist() == [1.0, 2.0, 4.5, 4.0]
    assert f["roll_std_2"].tolist() == [0.0, 1.0, 1.5, 2.0]
    assert f["roll_min_2"].tolist() == [1.0, 1.0, 3.0, 2.0]
    assert f["roll_max_2"].tolist() == [1.0, 3.0, 6.0, 6.0]
    assert f["dev_mean_2"].tolist() == [0.0, 1.0, 1.5, -2.0]
    assert f["rate_of_change"].tolist() == pytest.approx([0.0, 2 / 300, 3 / 600, -4 / 300])
    assert f["tod_sin"].tolist() == pytest.approx(
        [1.0, np.sin(2 * np.pi * (6 + 5 / 60) / 24), *f["tod_sin"][2:]]
    )
    assert f["tod_cos"].iloc[0] == pytest.approx(0.0, abs=1e-12)


def test_changing_a_future_value_does_not_change_earlier_rows() -> None:
    data = _series("s-1", 60, seed=2)
    tr = SensorFeatureTransformer(windows=(6, 12)).fit(data)
    before = tr.transform(data)
    changed = data.copy()
    changed.loc[40, "value"] += 1000.0
    changed.loc[55:, "value"] = -5.0
    after = tr.transform(changed)
    np.testing.assert_array_equal(before[:40], after[:40])
    assert not np.allclose(before[40], after[40])  # the changed row itself does change
    # and dropping every future row leaves the past rows' features as they were
    np.testing.assert_array_equal(tr.transform(data.iloc[:30]), before[:30])


def test_interleaved_sensors_give_the_same_features_as_each_alone() -> None:
    a = _series("s-a", 50, seed=3, level=20.0)
    b = _series("s-b", 50, seed=4, level=900.0, start="2026-10-30T00:02:30Z")
    both = _interleave(a, b)
    assert both["sensor_id"].iloc[:4].tolist() == ["s-a", "s-b", "s-a", "s-b"]
    tr = SensorFeatureTransformer(scaler=None).fit(both)
    mixed = pd.DataFrame(tr.transform(both), columns=tr.get_feature_names_out())
    alone_a = tr.transform(a)
    alone_b = tr.transform(b)
    np.testing.assert_allclose(mixed[both["sensor_id"].eq("s-a").to_numpy()].to_numpy(), alone_a, rtol=1e-12)
    np.testing.assert_allclose(mixed[both["sensor_id"].eq("s-b").to_numpy()].to_numpy(), alone_b, rtol=1e-12)
    # output rows follow the input rows, whatever their order
    shuffled = both.sample(frac=1.0, random_state=0)
    np.testing.assert_allclose(tr.transform(shuffled), mixed.loc[shuffled.index].to_numpy(), rtol=1e-12)


def test_gaps_are_filled_within_the_sensor_only() -> None:
    a = _series("s-a", 10, seed=5, level=10.0)
    b = _series("s-b", 10, seed=6, level=500.0)
    a.loc[[0, 1], "value"] = np.nan  # leading gap: backward fill from a's own first value
    a.loc[[5, 6], "value"] = np.nan  # inner gap: forward fill from a's value at row 4
    both = _interleave(a, b)
    tr = SensorFeatureTransformer(scaler=None).fit(both)
    f = pd.DataFrame(tr.transform(both), columns=tr.get_feature_names_out(), index=both.index)
    fa = f[both["sensor_id"].eq("s-a").to_numpy()]["value"].to_numpy()
    raw_a = a["value"].to_numpy()
    assert fa[0] == fa[1] == raw_a[2]
    assert fa[5] == fa[6] == raw_a[4]
    assert np.all(fa < 100)  # never a value of s-b (about 500)
    assert np.isfinite(f.to_numpy()).all()


def test_scaler_is_fitted_on_fit_data_only() -> None:
    train = _series("s-1", 80, seed=7, level=10.0)
    other = _series("s-1", 80, seed=8, level=1000.0, start="2026-11-05T00:00:00Z")
    tr = SensorFeatureTransformer(scaler="standard").fit(train)
    raw_train = tr.compute(train)
    np.testing.assert_allclose(tr.scaler_.mean_, raw_train.mean().to_numpy())
    mean_before = tr.scaler_.mean_.copy()
    scaled_other = tr.transform(other)
    np.testing.assert_array_equal(tr.scaler_.mean_, mean_before)  # transform did not refit
    # other data is scaled with the training statistics: far from 0 in the value column
    assert scaled_other[:, 0].mean() > 50
    # fit_transform on the training data is centred
    np.testing.assert_allclose(tr.transform(train).mean(axis=0)[:-2], 0.0, atol=1e-9)
    robust = SensorFeatureTransformer(scaler="robust").fit(train)
    np.testing.assert_allclose(robust.scaler_.center_, raw_train.median().to_numpy())


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        SensorFeatureTransformer().fit(pd.DataFrame({"sensor_id": ["a"], "value": [1.0]}))
    with pytest.raises(ValueError, match="scaler"):
        SensorFeatureTransformer(scaler="minmax").fit(_series("s", 5, seed=0))
    with pytest.raises(TypeError):
        SensorFeatureTransformer().fit(np.zeros((3, 3)))


def test_scikit_learn_compatibility() -> None:
    from sklearn.base import clone
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline

    data = _series("s-1", 30, seed=9)
    data.index = range(100, 130)
    tr = SensorFeatureTransformer(windows=(3,)).set_output(transform="pandas").fit(data)
    out = tr.transform(data)
    assert list(out.columns) == list(tr.get_feature_names_out())
    assert list(out.index) == list(data.index)
    assert clone(tr).get_params()["windows"] == (3,)
    pipe = make_pipeline(SensorFeatureTransformer(), IsolationForest(n_estimators=5, random_state=0)).fit(
        data
    )
    assert pipe.score_samples(data).shape == (30,)
