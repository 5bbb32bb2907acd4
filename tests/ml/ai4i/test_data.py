"""core.ml.ai4i.data: the UCI format (BOM, CRLF, exact header) on a small file and on the real one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ml.ai4i.data import COLUMNS, MODES, TARGET, Ai4iFormatError, describe, load_ai4i

HEADER = ",".join(COLUMNS)
ROWS = [
    "1,M14860,M,298.1,308.6,1551,42.8,0,0,0,0,0,0,0",
    "2,L47181,L,298.2,308.7,1408,46.3,3,0,0,0,0,0,0",
    "3,H29999,H,298.1,308.5,1282,70.0,219,1,0,1,1,1,0",
]


def _write(path: Path, header: str = HEADER, rows: list[str] = ROWS) -> Path:
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([header, *rows, ""]).encode("utf-8"))
    return path


def test_loads_a_bom_crlf_file(tmp_path: Path) -> None:
    frame = load_ai4i(_write(tmp_path / "ai4i.csv"))
    assert list(frame.columns) == list(COLUMNS)  # the BOM is not glued to "UDI"
    assert len(frame) == 3
    assert frame["Product ID"].tolist() == ["M14860", "L47181", "H29999"]
    assert frame["Type"].tolist() == ["M", "L", "H"]
    assert frame["Torque [Nm]"].tolist() == [42.8, 46.3, 70.0]  # no stray \r in the last fields
    assert frame["Air temperature [K]"].dtype == np.float64
    assert frame["Rotational speed [rpm]"].dtype == np.int64
    assert frame["Tool wear [min]"].tolist() == [0, 3, 219]
    assert frame[TARGET].tolist() == [0, 0, 1]
    assert frame["RNF"].tolist() == [0, 0, 0]
    assert frame.loc[2, ["HDF", "PWF", "OSF"]].tolist() == [1, 1, 1]


def test_path_is_configurable_and_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_ai4i(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (HEADER.replace("Torque [Nm]", "Torque"), ROWS, "unexpected AI4I header"),
        (HEADER, [ROWS[0].replace(",M,", ",X,")], "Type must be one of"),
        (HEADER, [ROWS[0][:-1] + "2"], "RNF must be 0/1"),
        (HEADER, [ROWS[0].replace("298.1", "")], "missing values"),
        (HEADER, [ROWS[0].replace(",1551,", ",1551.5,")], "must hold integers"),
    ],
)
def test_rejects_malformed_files(tmp_path: Path, header: str, rows: list[str], message: str) -> None:
    with pytest.raises(Ai4iFormatError, match=message):
        load_ai4i(_write(tmp_path / "bad.csv", header, rows))


def test_real_file_has_the_documented_content(real_ai4i: pd.DataFrame) -> None:
    frame = real_ai4i
    assert len(frame) == 10_000
    assert frame["UDI"].tolist() == list(range(1, 10_001))
    assert int(frame[TARGET].sum()) == 339
    no_mode = (frame[TARGET] == 1) & (frame[list(MODES)].sum(axis=1) == 0)
    assert int(no_mode.sum()) == 9
    assert int(((frame["RNF"] == 1) & (frame[TARGET] == 0)).sum()) == 18
    assert frame[list(MODES)].sum().to_dict() == {"TWF": 46, "HDF": 115, "PWF": 95, "OSF": 98, "RNF": 19}
    stats = describe(frame)
    assert stats["share_L"] == pytest.approx(0.6, abs=0.001)
    assert stats["air_mean"] == pytest.approx(300.0, abs=0.01)
