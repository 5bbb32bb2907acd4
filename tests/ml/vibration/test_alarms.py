"""The alarm stage: baseline k-sigma threshold with n-of-m confirmation, on hand-made indicator tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ml.vibration.alarms import AlarmConfig, alarm_stage, detection_report, episode_starts, n_of_m


def test_n_of_m() -> None:
    e = np.array([1, 0, 1, 0, 0, 1, 1, 1, 0, 0], dtype=bool)
    assert n_of_m(e, 2, 3).tolist() == [False, False, True, False, False, False, True, True, True, False]
    assert n_of_m(e, 1, 1).tolist() == e.tolist()
    assert episode_starts(n_of_m(e, 2, 3)).tolist() == [2, 6]


def _table() -> pd.DataFrame:
    base = np.tile([1.0, 1.1, 0.9, 1.0], 5)  # 20 baseline files: mean 1.0, sd ≈ 0.0725
    monitored = [1.0, 1.5, 1.0, 1.0, 1.5, 1.6, 1.0, 1.7, 2.0, 2.5]  # isolated spikes, then a trend
    return pd.DataFrame({"b1_rms": np.r_[base, monitored], "b2_rms": np.r_[base, np.ones(10)]},
                        index=pd.RangeIndex(100, 130, name="file_index"))  # fmt: skip


def test_k_sigma_threshold_and_n_of_m_confirmation() -> None:
    result = alarm_stage(_table(), 20, AlarmConfig(k=3, n=3, m=4))
    s = result.summary.loc["b1_rms"]
    assert s["mean"] == pytest.approx(1.0)
    assert s["sd"] == pytest.approx(np.std(np.tile([1.0, 1.1, 0.9, 1.0], 5), ddof=1))
    assert s["threshold"] == pytest.approx(s["mean"] + 3 * s["sd"])
    assert s["first_exceedance"] == 121  # first spike
    assert s["first_alarm"] == 127  # 124, 125, 127 exceed within the 4 files 124..127
    assert s["alarm_starts"] == [127] and s["exceedances"] == 6
    assert result.summary.loc["b2_rms", "first_alarm"] is None
    assert not result.exceed.iloc[:20].any().any()  # baseline rows are not monitored
    one_of_one = alarm_stage(_table(), 20, AlarmConfig(k=3, n=1, m=1))
    assert one_of_one.summary.loc["b1_rms", "alarm_starts"] == [121, 124, 127]


def test_invalid_rows_are_skipped_and_direction_down() -> None:
    table = _table()
    valid = np.ones(len(table), dtype=bool)
    valid[27] = False  # e.g. a recording without signal
    result = alarm_stage(table, 20, AlarmConfig(k=3, n=3, m=4), valid=valid)
    assert result.summary.loc["b1_rms", "first_alarm"] == 128  # 124, 125, 128 within 4 valid files
    down = pd.DataFrame({"x": np.r_[np.tile([1.0, 1.1, 0.9], 4), [0.2, 0.2, 0.2]]})
    res = alarm_stage(down, 12, AlarmConfig(k=3, n=2, m=3, direction="down"))
    assert res.summary.loc["x", "first_alarm"] == 13
    assert alarm_stage(down, 12, AlarmConfig(k=3, n=2, m=3)).summary.loc["x", "first_alarm"] is None


def test_boolean_baseline_mask_and_errors() -> None:
    table = _table()
    mask = np.zeros(len(table), dtype=bool)
    mask[:20] = True
    assert alarm_stage(table, mask).summary.loc["b1_rms", "baseline_rows"] == 20
    with pytest.raises(ValueError, match="2 rows"):
        alarm_stage(table, 1)
    with pytest.raises(ValueError):
        AlarmConfig(n=4, m=3)


def test_detection_report() -> None:
    assert detection_report([3, 12, 30], onset=10) == {"detected_at": 12, "delay": 2, "false_alarms": 1}
    assert detection_report([3], onset=10) == {"detected_at": None, "delay": None, "false_alarms": 1}
    assert detection_report([3, 40], onset=None)["false_alarms"] == 2
