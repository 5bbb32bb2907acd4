"""robust_z baseline: median/MAD z-score against numpy, warm-up, MAD = 0, bounded per-sensor state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.anomaly.baseline import (
    ABS_SCALE_FLOOR,
    MAD_TO_SIGMA,
    REL_SCALE_FLOOR,
    BaselineConfig,
    BaselineStates,
    SensorState,
    robust_scale,
    robust_z,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def reference_z(history: np.ndarray, x: float) -> float:
    median = np.median(history)
    mad = np.median(np.abs(history - median))
    floor = max(REL_SCALE_FLOOR * abs(median), ABS_SCALE_FLOOR)
    return abs(x - median) / max(MAD_TO_SIGMA * mad, floor)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_robust_z_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    history = rng.normal(50.0, 3.0, size=288)
    for x in (50.0, 41.0, 75.5, -3.0):
        assert robust_z(history, x) == pytest.approx(reference_z(history, x), rel=1e-12)
    assert robust_z(list(history), 60.0) == pytest.approx(reference_z(history, 60.0), rel=1e-12)


def test_scale_estimates_the_standard_deviation_of_normal_data() -> None:
    values = np.random.default_rng(7).normal(0.0, 2.0, size=100_000)
    _, scale = robust_scale(values)
    assert scale == pytest.approx(2.0, rel=0.02)


def test_mad_zero_uses_a_floor_relative_to_the_median() -> None:
    flat = np.full(50, 20.0)
    median, scale = robust_scale(flat)
    assert (median, scale) == (20.0, pytest.approx(REL_SCALE_FLOOR * 20.0))
    assert np.isfinite(robust_z(flat, 20.0)) and robust_z(flat, 20.0) == 0.0
    assert robust_z(flat, 21.0) == pytest.approx(1.0 / (REL_SCALE_FLOOR * 20.0))
    zeros = np.zeros(50)
    assert robust_scale(zeros)[1] == ABS_SCALE_FLOOR
    assert np.isfinite(robust_z(zeros, 1.0))


def test_empty_history_is_an_error() -> None:
    with pytest.raises(ValueError):
        robust_z([], 1.0)


def test_streaming_state_scores_against_the_last_window_readings() -> None:
    config = BaselineConfig(window=20, warmup=5, threshold=6.0)
    rng = np.random.default_rng(3)
    values = rng.normal(10.0, 1.0, size=60)
    state = SensorState(config.window)
    for i, x in enumerate(values):
        result = state.update(float(x), T0 + timedelta(minutes=i), config)
        if i == 0:
            assert result.score == 0.0 and result.warming_up
            continue
        history = values[max(0, i - config.window) : i]
        assert result.score == pytest.approx(reference_z(history, float(x)), rel=1e-12)
        assert result.warming_up == (i < config.warmup)
    assert len(state.values) == config.window
    assert state.last_timestamp == T0 + timedelta(minutes=59)


def test_warm_up_readings_are_not_flagged_then_spikes_are() -> None:
    config = BaselineConfig(window=50, warmup=10, threshold=6.0)
    state = SensorState(config.window)
    normal = [20.0 + 0.1 * ((i % 5) - 2) for i in range(9)]
    for x in normal:
        state.update(x, None, config)
    spike = state.update(100.0, None, config)  # 9 readings of history: still warming up
    assert spike.warming_up and not spike.flagged and spike.score > config.threshold
    state = SensorState.from_history(config.window, normal + normal, T0)
    assert state.update(100.0, T0 + timedelta(minutes=1), config).flagged
    assert not state.update(20.1, T0 + timedelta(minutes=2), config).flagged


def test_stuck_signal_flags_a_departure_without_dividing_by_zero() -> None:
    config = BaselineConfig(window=40, warmup=5, threshold=6.0)
    state = SensorState.from_history(config.window, [5.0] * 40, T0)
    assert not state.update(5.0, None, config).flagged
    jump = state.update(6.0, None, config)
    assert jump.flagged and np.isfinite(jump.score)


def test_states_are_bounded_least_recently_used_first() -> None:
    config = BaselineConfig(window=10, warmup=2, max_sensors=3)
    states = BaselineStates(config)
    for sensor in ("a", "b", "c"):
        states.put(sensor, SensorState(config.window))
    assert states.get("a") is not None  # a becomes the most recently used
    states.put("d", SensorState(config.window))
    assert len(states) == 3
    assert "b" not in states
    assert states.sensor_ids() == ["c", "a", "d"]


def test_copy_is_independent() -> None:
    config = BaselineConfig(window=5, warmup=1)
    state = SensorState.from_history(5, [1.0, 2.0], T0)
    copy = state.copy()
    copy.update(3.0, T0 + timedelta(minutes=1), config)
    assert list(state.values) == [1.0, 2.0] and state.last_timestamp == T0
    assert list(copy.values) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "kwargs",
    [{"window": 1}, {"warmup": 0}, {"window": 10, "warmup": 11}, {"threshold": 0}, {"max_sensors": 0}],
)
def test_invalid_configs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BaselineConfig(**kwargs)  # type: ignore[arg-type]


# --- vectorised scoring: the same results as reading by reading ---------------------------------------------------
def _one_by_one(
    state: SensorState, values: np.ndarray, config: BaselineConfig
) -> list[tuple[float, bool, bool]]:
    out = []
    for v in values:
        s = state.update(float(v), None, config)
        out.append((s.score, s.flagged, s.warming_up))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_update_many_equals_update_reading_by_reading(seed: int) -> None:
    """Random windows, warm-ups, history lengths (empty, shorter than, equal to, longer than the window) and
    batch sizes, with spikes and stuck stretches: identical flags and warm-up marks, scores equal to 1e-12."""
    rng = np.random.default_rng(seed)
    window = int(rng.integers(2, 60))
    config = BaselineConfig(window=window, warmup=int(rng.integers(1, window + 1)), threshold=4.0)
    for _ in range(30):
        history = rng.normal(20, 1, size=int(rng.integers(0, 2 * window)))
        values = rng.normal(20, 1, size=int(rng.integers(0, 3 * window)))
        if len(values) > 4:
            values[rng.integers(0, len(values), size=3)] += rng.choice([-15.0, 15.0], size=3)  # spikes
            values[: len(values) // 4] = np.round(values[: len(values) // 4])  # quantised: MAD may be 0
        one = SensorState.from_history(window, history, T0)
        many = SensorState.from_history(window, history, T0)
        expected = _one_by_one(one, values, config)
        got = many.update_many(values, T0 + timedelta(minutes=1), config)
        assert got.flagged.tolist() == [e[1] for e in expected]
        assert got.warming_up.tolist() == [e[2] for e in expected]
        np.testing.assert_allclose(got.scores, [e[0] for e in expected], rtol=1e-12, atol=0)
        assert list(many.values) == list(one.values)
        assert many.last_timestamp == T0 + timedelta(minutes=1)


def test_update_many_of_nothing_changes_nothing() -> None:
    config = BaselineConfig(window=5, warmup=2)
    state = SensorState.from_history(5, [1.0, 2.0], T0)
    got = state.update_many(np.array([]), None, config)
    assert got.scores.size == 0 and list(state.values) == [1.0, 2.0] and state.last_timestamp == T0
