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
    cadence_s,
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


def test_cadence_is_numpys_median_of_the_positive_intervals() -> None:
    """Computed in Python (no numpy call per scoring run), it must be exactly what ``np.median`` gave."""
    rng = np.random.default_rng(11)
    for n in [*range(10), 31, 64, 65, 1000]:
        for _ in range(20):
            intervals = rng.choice([0.0, -1.0, 1.0, 60.0, 0.5], size=n) * rng.uniform(0.5, 2.0, size=n)
            known = [i for i in intervals.tolist() if i > 0]
            expected = float(np.median(known)) if len(known) >= 3 else None
            assert cadence_s(intervals.tolist()) == expected


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


# --- type floors and regime gaps ----------------------------------------------------------------------------------
def test_type_floors_bound_the_scale_from_below() -> None:
    from core.anomaly.baseline import Floors, floors_for

    steady = np.full(50, 0.150) + np.tile([-0.0005, 0.0005], 25)  # RMS of a healthy bearing: ±0.3 %
    assert robust_scale(steady)[1] == pytest.approx(MAD_TO_SIGMA * 0.0005)
    # acceleration: relative floor 1 % of the level; a 3 % rise is no longer a 9-sigma outlier
    assert floors_for("acceleration") == Floors(0.0, 0.01)
    assert robust_scale(steady, floors_for("acceleration"))[1] == pytest.approx(0.0015)
    assert robust_z(steady, 0.1545, floors_for("acceleration")) == pytest.approx(3.0)
    # kurtosis: an absolute floor (dimensionless, near 0: a relative floor would do nothing)
    assert robust_scale(np.full(40, 0.4), floors_for("kurtosis"))[1] == 0.2
    assert floors_for("no-such-type") == floors_for(None)


def _series(n: int, start: datetime, step: timedelta, level: float, rng: np.random.Generator):
    stamps = [start + i * step for i in range(n)]
    return stamps, level + rng.normal(0.0, 0.01, n)


def test_a_regime_gap_restarts_the_window_and_is_reported() -> None:
    """Ten-minute data, a 6-day stop, then every level 20 % higher: without the restart every reading after the
    stop is a >10-sigma outlier; with it the detector warms up again and flags nothing."""
    from core.anomaly.baseline import score_series

    rng = np.random.default_rng(5)
    config = BaselineConfig(window=288, warmup=30, threshold=6.0)
    before_t, before_v = _series(150, T0, timedelta(minutes=10), 1.0, rng)
    restart = before_t[-1] + timedelta(days=6)
    after_t, after_v = _series(150, restart, timedelta(minutes=10), 1.2, rng)
    result = score_series(before_t + after_t, np.concatenate([before_v, after_v]), config)
    assert result.restarts == ((150, pytest.approx(6 * 86400.0)),)
    assert not result.flagged.any()
    assert result.warming_up[150:180].all() and not result.warming_up[180:].any()
    no_restart = BaselineConfig(window=288, warmup=30, threshold=6.0, regime_gap_min_s=1e9)
    assert score_series(before_t + after_t, np.concatenate([before_v, after_v]), no_restart).flagged[150:].sum() > 50


def test_regime_gap_needs_both_many_intervals_and_the_minimum_duration() -> None:
    config = BaselineConfig(window=50, warmup=5, regime_gap_intervals=20.0, regime_gap_min_s=3600.0)
    assert config.regime_gap_s(None) is None  # cadence unknown: no restart
    assert config.regime_gap_s(1.0) == 3600.0  # 1 Hz: 20 s is no regime change, an hour is
    assert config.regime_gap_s(600.0) == 12000.0  # 10-minute data: 3 h 20 min
    state = SensorState(config.window)
    t = T0
    for i in range(10):
        state.update(1.0 + 0.01 * (i % 3), t, config)
        t += timedelta(seconds=1)
    state.update(1.0, t + timedelta(minutes=30), config)  # 30 min at 1 Hz: long, but under an hour
    assert len(state.values) == 11
    state.update(1.0, t + timedelta(hours=2), config)
    assert list(state.values) == [1.0]


def test_state_rebuilt_from_readings_starts_after_the_last_regime_gap() -> None:
    config = BaselineConfig(window=100, warmup=5)
    stamps = [T0 + timedelta(minutes=10 * i) for i in range(40)]
    stamps += [stamps[-1] + timedelta(days=2) + timedelta(minutes=10 * i) for i in range(12)]
    values = [1.0] * 40 + [2.0] * 12
    state = SensorState.from_readings(config.window, stamps, values, config)
    assert list(state.values) == [2.0] * 12 and state.last_timestamp == stamps[-1]
    assert state.cadence_s() == 600.0


def test_vectorised_update_with_a_gap_equals_reading_by_reading() -> None:
    from core.anomaly.baseline import Floors, Run, update_all

    rng = np.random.default_rng(9)
    config = BaselineConfig(window=30, warmup=5, threshold=4.0)
    stamps = [T0 + timedelta(minutes=i) for i in range(60)]
    stamps += [stamps[-1] + timedelta(hours=3) + timedelta(minutes=i) for i in range(60)]
    values = np.concatenate([rng.normal(5, 1, 60), rng.normal(9, 1, 60)])
    values[[20, 90]] += 12.0
    floors = Floors(0.1, 0.0)
    one = SensorState.from_readings(config.window, stamps[:10], list(values[:10]), config)
    many = one.copy()
    expected = [one.update(float(v), t, config, floors) for t, v in zip(stamps[10:], values[10:], strict=True)]
    [got] = update_all([Run(many, values[10:], stamps[10:], floors)], config)
    assert got.flagged.tolist() == [e.flagged for e in expected]
    assert got.warming_up.tolist() == [e.warming_up for e in expected]
    np.testing.assert_allclose(got.scores, [e.score for e in expected], rtol=1e-12)
    assert got.restarts == ((50, 3 * 3600.0),)
    assert list(many.values) == list(one.values) and many.last_timestamp == one.last_timestamp


def test_the_end_of_a_stuck_stretch_restarts_the_window() -> None:
    """Regression (bench-alerts): a humidity sensor stuck for 180 readings left a window of one value (MAD 0);
    the healthy signal afterwards scored |z| >= 6 for half an hour and opened a false work order."""
    from core.anomaly.baseline import Floors, Run, update_all

    rng = np.random.default_rng(2)
    config = BaselineConfig(window=288, warmup=30, threshold=6.0, flat_restart_readings=30)
    floors = Floors(0.1, 0.0)
    healthy = np.round(50 + rng.normal(0, 1.2, 200), 1)
    stuck = np.full(180, healthy[-1])
    after = np.round(52 + rng.normal(0, 1.2, 150), 1)
    stamps = [T0 + timedelta(seconds=10 * i) for i in range(530)]
    state = SensorState(config.window)
    [first] = update_all([Run(state, np.concatenate([healthy, stuck[:100]]), stamps[:300], floors)], config)
    [second] = update_all([Run(state, np.concatenate([stuck[100:], after]), stamps[300:], floors)], config)
    assert not first.flagged.any() and not second.flagged.any()
    assert second.warming_up[80:110].all()  # the 30 readings after the stuck stretch warm up again
    assert second.restarts == ()  # not a regime change: the healthy reference is kept
    # without the restart the same readings are flagged
    never = BaselineConfig(window=288, warmup=30, threshold=6.0, flat_restart_readings=0)
    other = SensorState(never.window)
    update_all([Run(other, np.concatenate([healthy, stuck[:100]]), stamps[:300], floors)], never)
    [flagged] = update_all([Run(other, np.concatenate([stuck[100:], after]), stamps[300:], floors)], never)
    assert flagged.flagged.sum() > 10
