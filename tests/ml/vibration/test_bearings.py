"""Defect frequency formulas against published values."""

from __future__ import annotations

import pytest

from core.ml.vibration.bearings import REXNORD_ZA_2115, SKF_6205, get_bearing


def test_skf_6205_orders_match_the_published_multiples_of_shaft_speed() -> None:
    orders = SKF_6205.orders()
    assert orders["bpfo"] == pytest.approx(3.585, abs=0.002)
    assert orders["bpfi"] == pytest.approx(5.415, abs=0.002)
    assert orders["bsf"] == pytest.approx(2.357, abs=0.002)
    assert orders["ftf"] == pytest.approx(0.398, abs=0.001)


def test_defect_frequencies_scale_with_rpm() -> None:
    f = SKF_6205.frequencies(1797)
    assert f["bpfo"] == pytest.approx(3.585 * 1797 / 60, rel=1e-3)  # 107.4 Hz
    assert f["bpfi"] == pytest.approx(162.2, abs=0.1)
    assert SKF_6205.frequencies(3594)["bpfo"] == pytest.approx(2 * f["bpfo"])


def test_ims_rexnord_za_2115_at_2000_rpm() -> None:
    f = REXNORD_ZA_2115.frequencies(2000)
    assert f["bpfo"] == pytest.approx(236.4, abs=0.1)
    assert f["bpfi"] == pytest.approx(296.9, abs=0.1)
    assert f["bsf"] == pytest.approx(139.9, abs=0.1)
    assert f["ftf"] == pytest.approx(14.8, abs=0.05)
    # BPFO + BPFI = n · fr for any geometry
    assert f["bpfo"] + f["bpfi"] == pytest.approx(16 * 2000 / 60)


def test_get_bearing_by_name_and_errors() -> None:
    assert get_bearing("6205") is SKF_6205
    assert get_bearing("ZA-2115") is REXNORD_ZA_2115
    assert get_bearing(" IMS ") is REXNORD_ZA_2115
    with pytest.raises(ValueError, match="unknown bearing"):
        get_bearing("6206")
    with pytest.raises(ValueError, match="rpm"):
        SKF_6205.frequencies(0)
