"""Training-free diagnosis names simulated outer-race, inner-race and ball defects and says none when healthy."""

from __future__ import annotations

import numpy as np
import pytest

from core.ml.vibration.diagnosis import diagnose, surrogate_rates
from core.ml.vibration.simulator import FAULT_NAMES, simulate_signal

FS, RPM = 12_000.0, 1797.0


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("fault", ["outer", "inner", "ball", "none"])
def test_simulated_defects_are_named(fault: str, seed: int) -> None:
    x = simulate_signal(fault, fs=FS, rpm=RPM, n_samples=24_000, severity=0.2, rng=seed)
    result = diagnose(x, FS, RPM, "6205")
    assert result.fault == FAULT_NAMES[fault]
    if fault != "none":
        name = FAULT_NAMES[fault]
        assert result.scores_db[name] >= result.threshold_db
        assert result.scores_db[name] == max(result.scores_db.values())
    else:
        assert max(result.scores_db.values()) < result.threshold_db


def test_ims_geometry_at_20_khz() -> None:
    x = simulate_signal("inner", fs=20_000, rpm=2000, geometry=None, n_samples=20_480, severity=0.3, rng=5)
    # geometry None means the 6205; diagnosing with the IMS bearing must not name an inner-race fault
    assert diagnose(x, 20_000, 2000, "6205").fault == "inner race"
    assert diagnose(x, 20_000, 2000, "ZA-2115").fault != "inner race"


def test_surrogates_avoid_the_candidate_rates() -> None:
    rates = [107.4, 162.2, 141.2]
    grid = surrogate_rates(rates, count=40)
    assert len(grid) == 40
    assert all(abs(g / r - 1) > 0.03 for g in grid for r in rates)


def test_rejects_short_signals() -> None:
    with pytest.raises(ValueError):
        diagnose(np.zeros(1000), FS, RPM)
