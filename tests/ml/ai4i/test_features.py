"""Features: only the six process variables reach a model, row by row; the limits match the published rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ml.ai4i.data import FORBIDDEN_COLUMNS, INPUT_COLUMNS, LABEL_COLUMNS
from core.ml.ai4i.features import (
    ENGINEERED_FEATURES,
    FEATURE_SETS,
    RAW_FEATURES,
    LabelLeakError,
    assert_no_label_columns,
    build_features,
    closest_limit,
    failure_rules,
    limit_margins,
)


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_no_label_or_identifier_column_reaches_the_features(
    generated_ai4i: pd.DataFrame, feature_set: str
) -> None:
    features = build_features(generated_ai4i, feature_set)
    names = {c.lower() for c in features.columns}
    for forbidden in FORBIDDEN_COLUMNS:
        assert forbidden.lower() not in names
        assert not any(forbidden.lower() in name for name in names), forbidden
    assert list(features.columns) == list(RAW_FEATURES if feature_set == "raw" else ENGINEERED_FEATURES)


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_features_do_not_change_when_the_labels_do(generated_ai4i: pd.DataFrame, feature_set: str) -> None:
    """Fails if any label/identifier column leaked into the matrix: scrambling them must not move a value."""
    scrambled = generated_ai4i.copy()
    rng = np.random.default_rng(0)
    for column in LABEL_COLUMNS:
        scrambled[column] = rng.integers(0, 2, len(scrambled))
    scrambled["UDI"] = rng.permutation(scrambled["UDI"].to_numpy())
    scrambled["Product ID"] = "X0"
    pd.testing.assert_frame_equal(
        build_features(generated_ai4i, feature_set), build_features(scrambled, feature_set)
    )
    only_inputs = generated_ai4i[list(INPUT_COLUMNS)]  # and they are computable without any label column
    pd.testing.assert_frame_equal(
        build_features(only_inputs, feature_set), build_features(generated_ai4i, feature_set)
    )


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_no_feature_looks_at_other_rows(generated_ai4i: pd.DataFrame, feature_set: str) -> None:
    full = build_features(generated_ai4i, feature_set)
    subset = generated_ai4i.sample(50, random_state=1).iloc[::-1]
    pd.testing.assert_frame_equal(build_features(subset, feature_set), full.loc[subset.index])


@pytest.mark.parametrize(
    "columns",
    [
        ["torque_nm", "TWF"],
        ["Machine failure"],
        ["machine_failure"],
        ["hdf"],
        ["Product ID"],
        ["udi"],
        ["OSF_1"],
    ],
)
def test_the_guard_refuses_label_columns(columns: list[str]) -> None:
    with pytest.raises(LabelLeakError):
        assert_no_label_columns(columns)
    assert_no_label_columns(list(ENGINEERED_FEATURES))  # our own names pass


def test_limits_reproduce_the_real_failure_flags(real_ai4i: pd.DataFrame) -> None:
    rules = failure_rules(real_ai4i)
    for mode in ("HDF", "PWF", "OSF"):
        assert (rules[mode].astype(int) == real_ai4i[mode]).all(), mode


def test_closest_limit_names_the_limit_and_its_signed_margin() -> None:
    rows = pd.DataFrame(
        [
            # heat dissipation crossed: ΔT 8.0 K < 8.6 and 1300 rpm < 1380
            {
                "Type": "L",
                "Air temperature [K]": 300.0,
                "Process temperature [K]": 308.0,
                "Rotational speed [rpm]": 1300,
                "Torque [Nm]": 50.0,
                "Tool wear [min]": 10,
            },
            # overstrain: 230 min × 60 Nm = 13,800 > 11,000 (L); power 60·1500·2π/60 = 9425 W is also out of band
            {
                "Type": "L",
                "Air temperature [K]": 300.0,
                "Process temperature [K]": 311.0,
                "Rotational speed [rpm]": 1400,
                "Torque [Nm]": 60.0,
                "Tool wear [min]": 230,
            },
            # nothing crossed, tool wear 190 min is the nearest (5 % below 200)
            {
                "Type": "H",
                "Air temperature [K]": 300.0,
                "Process temperature [K]": 311.5,
                "Rotational speed [rpm]": 1500,
                "Torque [Nm]": 40.0,
                "Tool wear [min]": 190,
            },
        ]
    )
    out = closest_limit(rows)
    assert out["closest_limit"].tolist() == ["heat_dissipation", "overstrain", "tool_wear_window"]
    margins = limit_margins(rows)
    assert margins.loc[0, "heat_dissipation"] == pytest.approx(max((8.0 - 8.6) / 8.6, (1300 - 1380) / 1380))
    assert margins.loc[1, "overstrain"] == pytest.approx((11_000 - 230 * 60) / 11_000)
    assert out.loc[2, "closest_limit_margin"] == pytest.approx(0.05)
    assert (out["closest_limit_margin"].iloc[:2] < 0).all() and out["closest_limit_margin"].iloc[2] > 0
