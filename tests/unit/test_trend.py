"""Degradation detector (``core.anomaly.trend``) and reference helpers: exact EWMA, directions, detection delay."""

from __future__ import annotations

import numpy as np
import pytest

from core.anomaly import trend
from core.anomaly.references import longest_run


def _loop(z: np.ndarray, lam: float, start: float | None) -> list[float]:
    e = float(z[0]) if start is None else start
    out = []
    for x in z:
        e = lam * float(x) + (1 - lam) * e
        out.append(e)
    return out


@pytest.mark.parametrize("start", [None, 0.0, 2.5])
def test_ewma_equals_the_recursion(start: float | None) -> None:
    z = np.random.default_rng(1).normal(0, 1, 200)
    np.testing.assert_allclose(trend.ewma(z, 0.1, start), _loop(z, 0.1, start), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lam", [0.05, 0.1, 0.3, 1.0])
@pytest.mark.parametrize("start", [None, 0.0, -3.1, 2.5])
def test_ewma_is_bit_for_bit_the_first_order_lfilter_it_replaces(lam: float, start: float | None) -> None:
    """The recurrence written out gives exactly what ``scipy.signal.lfilter`` gave (the detector's scores and
    flags, stored in ``anomalies``, do not change with it)."""
    from scipy.signal import lfilter

    for n in (1, 2, 17, 3000):
        z = np.clip(np.random.default_rng(n).normal(0, 4, n), -trend.CLIP, trend.CLIP)
        initial = float(z[0]) if start is None else start
        expected, _ = lfilter([lam], [1.0, -(1.0 - lam)], z, zi=[(1.0 - lam) * initial])
        assert np.array_equal(trend.ewma(z, lam, start), expected)


def test_standardise_clips_single_spikes() -> None:
    z = trend.standardise(np.array([10.0, 1000.0, -1000.0]), median=10.0, scale=1.0)
    assert z.tolist() == [0.0, trend.CLIP, -trend.CLIP]


def test_a_step_of_five_scales_is_flagged_after_sixteen_readings_and_noise_is_not() -> None:
    values = np.concatenate([np.zeros(100), np.full(30, 5.0)])
    result = trend.score(values, median=0.0, scale=1.0, lam=0.1, threshold=4.0, direction="up", start=0.0)
    first = int(np.flatnonzero(result.flagged)[0])
    assert first - 100 == 15  # the 16th reading of the step (e = 5·(1 − 0.9^16) = 4.07)
    noise = np.random.default_rng(7).normal(0, 1, 20_000)
    quiet = trend.score(noise, median=0.0, scale=1.0, lam=0.1, threshold=4.0, direction="both", start=0.0)
    assert not quiet.flagged.any()


def test_direction_decides_which_shift_counts() -> None:
    down = np.full(50, -6.0)
    up = trend.score(down, median=0.0, scale=1.0, lam=0.1, threshold=4.0, direction="up", start=0.0)
    both = trend.score(down, median=0.0, scale=1.0, lam=0.1, threshold=4.0, direction="both", start=0.0)
    low = trend.score(down, median=0.0, scale=1.0, lam=0.1, threshold=4.0, direction="down", start=0.0)
    assert not up.flagged.any() and both.flagged.any() and low.flagged.any()


def test_score_continues_from_the_previous_ewma() -> None:
    values = np.random.default_rng(3).normal(2, 1, 60)
    whole = trend.score(values, median=0.0, scale=1.0, lam=0.1, threshold=9.0, direction="both", start=0.0)
    head = trend.score(values[:25], median=0.0, scale=1.0, lam=0.1, threshold=9.0, direction="both", start=0.0)
    tail = trend.score(values[25:], median=0.0, scale=1.0, lam=0.1, threshold=9.0, direction="both", start=head.last)
    np.testing.assert_allclose(np.concatenate([head.ewma, tail.ewma]), whole.ewma, rtol=1e-12)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], 0), ([1.0], 1), ([1.0, 2.0, 3.0], 1), ([1.0, 1.0, 2.0, 2.0, 2.0, 1.0], 3), ([5.0] * 7, 7)],
)
def test_longest_run(values: list[float], expected: int) -> None:
    assert longest_run(np.array(values)) == expected
