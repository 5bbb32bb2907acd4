"""IMS and CWRU readers on small synthetic files in both formats, and the real IMS excerpt's shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from core.config import PROJECT_ROOT
from core.ml.vibration.readers import (
    ims_bearing_channels,
    list_ims_run,
    list_ims_tests,
    parse_ims_timestamp,
    read_cwru_mat,
    read_ims_file,
    read_signal_file,
)
from tests.ml.vibration.conftest import write_ims_file

IMS_RAW = PROJECT_ROOT / ".." / "shared" / "datasets" / "ims" / "raw"


def test_parse_ims_timestamp() -> None:
    assert parse_ims_timestamp("2004.02.12.10.32.39") == pd.Timestamp("2004-02-12 10:32:39")
    with pytest.raises(ValueError):
        parse_ims_timestamp("2004-02-12 10:32:39")


def test_read_ims_file_8_and_4_channels(tmp_path: Path) -> None:
    data8 = np.round(np.random.default_rng(1).normal(0, 0.1, (20_480, 8)), 3)
    got = read_ims_file(write_ims_file(tmp_path / "2003.10.22.12.06.24", data8))
    assert got.shape == (20_480, 8)
    np.testing.assert_allclose(got, data8, atol=5e-4)
    got4 = read_ims_file(write_ims_file(tmp_path / "2004.02.12.10.32.39", data8[:, :4]))
    assert got4.shape == (20_480, 4)


def test_read_ims_file_rejects_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="4 or 8"):
        read_ims_file(write_ims_file(tmp_path / "a", np.zeros((20_480, 3))))
    with pytest.raises(ValueError, match="rows"):
        read_ims_file(write_ims_file(tmp_path / "b", np.zeros((100, 4))))
    assert read_ims_file(tmp_path / "b", expected_rows=None).shape == (100, 4)


def test_bearing_channel_layout() -> None:
    assert ims_bearing_channels(8) == {1: [0, 1], 2: [2, 3], 3: [4, 5], 4: [6, 7]}
    assert ims_bearing_channels(4) == {1: [0], 2: [1], 3: [2], 4: [3]}
    with pytest.raises(ValueError):
        ims_bearing_channels(6)


def test_list_ims_run_orders_by_time_and_ignores_other_files(ims_run_dir: Path) -> None:
    run = list_ims_run(ims_run_dir)
    assert run["file"].tolist() == ["2004.02.12.10.32.39", "2004.02.12.10.42.39", "2004.02.12.10.52.39"]
    assert run["file_index"].tolist() == [0, 1, 2]
    assert run["hours_from_start"].tolist() == pytest.approx([0, 1 / 6, 2 / 6])
    assert run["hours_to_end"].tolist() == pytest.approx([2 / 6, 1 / 6, 0])
    subset = list_ims_run(ims_run_dir, max_files=2)
    assert subset["file_index"].tolist() == [0, 2]  # first and last kept, original indices
    assert list(list_ims_tests(ims_run_dir.parent)) == ["2nd_test"]


def test_read_cwru_mat_picks_the_fault_record_and_rpm(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    de, fe = rng.normal(size=(4000, 1)), rng.normal(size=(4000, 1))
    path = tmp_path / "IR007_0.mat"
    savemat(path, {"X105_DE_time": de, "X105_FE_time": fe, "X105_BA_time": fe, "X105RPM": np.array([[1797]]),
                   "X097_DE_time": rng.normal(size=(100, 1))})  # fmt: skip
    rec = read_cwru_mat(path, 12_000)
    assert rec.record == "105" and rec.rpm == 1797.0 and rec.fs == 12_000.0
    assert set(rec.signals) == {"DE", "FE", "BA"}
    np.testing.assert_allclose(rec.signals["DE"], de.ravel())
    other = read_cwru_mat(path, 48_000, record="097")
    assert set(other.signals) == {"DE"} and other.rpm is None
    with pytest.raises(ValueError, match="12000 or 48000"):
        read_cwru_mat(path, 20_000)
    with pytest.raises(ValueError, match="no record"):
        read_cwru_mat(path, 12_000, record="200")
    signal, rpm = read_signal_file(path, fs=12_000, channel="FE")
    np.testing.assert_allclose(signal, fe.ravel())
    assert rpm == 1797.0
    savemat(tmp_path / "empty.mat", {"foo": np.zeros(3)})
    with pytest.raises(ValueError, match="_DE_time"):
        read_cwru_mat(tmp_path / "empty.mat", 12_000)


@pytest.mark.skipif(not IMS_RAW.is_dir(), reason="IMS excerpt not present")
def test_real_ims_excerpt_reads_with_the_documented_layout() -> None:
    test1 = list_ims_run(IMS_RAW / "1st_test")
    assert read_ims_file(test1["path"].iloc[0]).shape == (20_480, 8)
    test2 = list_ims_run(IMS_RAW / "2nd_test")
    assert test2["file"].iloc[0] == "2004.02.12.10.32.39"
    assert read_ims_file(test2["path"].iloc[0]).shape == (20_480, 4)
    # test 2 spans 163.8 h: 984 recordings at the nominal 10-minute cadence
    assert test2["hours_to_end"].iloc[0] == pytest.approx(163.833, abs=0.01)
