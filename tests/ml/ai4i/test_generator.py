"""The generator follows the published rules and reproduces the real file's statistics within tolerances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ml.ai4i.data import AIR, COLUMNS, MODES, PROCESS, TARGET, TYPE, WEAR, describe, validate_ai4i
from core.ml.ai4i.features import failure_rules
from core.ml.ai4i.generator import WEAR_STEP_MIN, generate_ai4i

SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def generated_stats() -> pd.DataFrame:
    return pd.DataFrame([describe(generate_ai4i(10_000, seed=s)) for s in SEEDS]).mean()


def test_output_is_a_valid_ai4i_table_and_reproducible() -> None:
    a, b = generate_ai4i(500, seed=3), generate_ai4i(500, seed=3)
    assert list(a.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(validate_ai4i(a), a)
    pd.testing.assert_frame_equal(a, b)
    assert not generate_ai4i(500, seed=4).equals(a)


def test_failure_flags_follow_the_published_rules(generated_ai4i: pd.DataFrame) -> None:
    frame = generated_ai4i
    rules = failure_rules(frame)
    for mode in ("HDF", "PWF", "OSF"):
        assert (frame[mode] == rules[mode].astype(int)).all(), mode
    assert (frame[TARGET] == (frame[list(MODES)].sum(axis=1) > 0).astype(int)).all()
    assert (frame["Torque [Nm]"] >= 0).all()


def test_tool_wear_steps_by_type_and_tools_are_replaced_in_the_window(generated_ai4i: pd.DataFrame) -> None:
    frame = generated_ai4i
    wear = frame[WEAR].to_numpy()
    step = np.diff(wear)
    previous_type = frame[TYPE].to_numpy()[:-1]
    growing = step > 0
    expected = np.array([WEAR_STEP_MIN[t] for t in previous_type])
    assert (step[growing] == expected[growing]).all()
    resets = np.flatnonzero(step < 0)
    assert len(resets) > 0
    assert (wear[resets] >= 200).all() and (wear[resets] <= 240 + 5).all()
    twf_rows = np.flatnonzero(frame["TWF"].to_numpy() == 1)
    assert set(twf_rows) <= set(resets)  # a tool fails only when it is replaced


def test_statistics_match_the_real_file(real_ai4i: pd.DataFrame, generated_stats: pd.Series) -> None:
    real = pd.Series(describe(real_ai4i))
    gen = generated_stats
    for t in ("L", "M", "H"):
        assert gen[f"share_{t}"] == pytest.approx(real[f"share_{t}"], abs=0.015)
    for key, tol in {"air_mean": 0.1, "process_mean": 0.1, "delta_t_mean": 0.05, "torque_mean": 0.5}.items():
        assert gen[key] == pytest.approx(real[key], abs=tol), key
    for key, rel in {
        "air_sd": 0.02,
        "delta_t_sd": 0.02,
        "torque_sd": 0.05,
        "speed_mean": 0.02,
        "speed_sd": 0.1,
        "wear_mean": 0.05,
        "wear_sd": 0.05,
    }.items():
        assert gen[key] == pytest.approx(real[key], rel=rel), key
    # process SD depends on the chance correlation of two random walks (real file 1.48 K; sqrt(5) K if independent)
    assert 1.2 < gen["process_sd"] < 3.0
    assert gen["speed_torque_corr"] == pytest.approx(real["speed_torque_corr"], abs=0.04)
    assert gen["rate_failure"] == pytest.approx(real["rate_failure"], rel=0.35)
    for mode in ("TWF", "PWF", "OSF"):
        assert gen[f"rate_{mode}"] == pytest.approx(real[f"rate_{mode}"], rel=0.35), mode
    assert gen["rate_HDF"] == pytest.approx(
        real["rate_HDF"], rel=0.6
    )  # random-walk temperatures: wide spread
    assert 0.0002 <= gen["rate_RNF"] <= 0.003


def test_temperatures_are_random_walks_with_the_published_spread() -> None:
    frame = generate_ai4i(10_000, seed=5)
    air, delta = frame[AIR], frame[PROCESS] - frame[AIR]
    assert air.std() == pytest.approx(2.0, abs=0.01) and air.mean() == pytest.approx(300.0, abs=0.01)
    assert delta.std() == pytest.approx(1.0, abs=0.01) and delta.mean() == pytest.approx(10.0, abs=0.01)
    assert air.autocorr(1) > 0.99  # a walk, not white noise
