"""Readers of the two vibration dataset formats.

* NASA/IMS bearing run-to-failure: one ASCII file per recording, no header, tab-separated, 20,480 rows sampled at
  20 kHz; 8 columns in test 1 (two accelerometers per bearing: bearing b on columns 2b−2 and 2b−1) and 4 in
  tests 2 and 3 (one per bearing). The file name is the recording time (``2004.02.12.10.32.39``); the files of
  one directory, in time order, are one run to failure.
* CWRU bearing data: MATLAB ``.mat`` files with variables ``X<nnn>_DE_time`` (drive end), ``X<nnn>_FE_time``
  (fan end), ``X<nnn>_BA_time`` (base) and ``X<nnn>RPM``; the sampling rate (12 kHz or 48 kHz) is not in the
  file and is given by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

IMS_FS = 20_000.0
IMS_ROWS = 20_480
IMS_FILE_MINUTES = 10.0  # nominal spacing of the recordings (test 1 used 5 min for its first 43 files)
_IMS_NAME = re.compile(r"^\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}$")
_CWRU_SIGNAL = re.compile(r"^X(\d+)_(DE|FE|BA)_time$")
_CWRU_RPM = re.compile(r"^X(\d+)RPM$")
CWRU_SAMPLING_RATES = (12_000.0, 48_000.0)


def parse_ims_timestamp(name: str) -> pd.Timestamp:
    """``2004.02.12.10.32.39`` → Timestamp('2004-02-12 10:32:39'); ValueError for any other name."""
    if not _IMS_NAME.match(name):
        raise ValueError(f"{name!r} is not an IMS file name (YYYY.MM.DD.hh.mm.ss)")
    return pd.Timestamp(datetime.strptime(name, "%Y.%m.%d.%H.%M.%S"))


def read_ims_file(path: str | PathLike[str], *, expected_rows: int | None = IMS_ROWS) -> np.ndarray:
    """One IMS recording as a float array (rows, channels) with 4 or 8 channels.

    ``expected_rows`` (default 20,480) is checked unless None. Raises ValueError on a header, a wrong column
    count or a non-numeric value."""
    frame = pd.read_csv(path, sep="\t", header=None, dtype=np.float64, engine="c")
    data: NDArray[np.float64] = frame.to_numpy()
    if data.ndim != 2 or data.shape[1] not in (4, 8):
        raise ValueError(f"{path}: expected 4 or 8 tab-separated channels, found {data.shape[1]}")
    if expected_rows is not None and data.shape[0] != expected_rows:
        raise ValueError(f"{path}: expected {expected_rows} rows, found {data.shape[0]}")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: non-finite values")
    return data


def ims_bearing_channels(n_channels: int) -> dict[int, list[int]]:
    """Bearing number (1-based) → its column indices: 8 columns → two per bearing, 4 → one per bearing."""
    if n_channels == 8:
        return {b: [2 * (b - 1), 2 * (b - 1) + 1] for b in range(1, 5)}
    if n_channels == 4:
        return {b: [b - 1] for b in range(1, 5)}
    raise ValueError(f"IMS files have 4 or 8 channels, not {n_channels}")


def list_ims_run(directory: str | PathLike[str], max_files: int | None = None) -> pd.DataFrame:
    """The recordings of one run (a directory of IMS files) in time order.

    Columns: ``file_index`` (0-based position in the run), ``file`` (name), ``path``, ``timestamp``,
    ``hours_from_start`` and ``hours_to_end`` (to the last recording of the directory). Names that are not
    timestamps are ignored. ``max_files`` keeps an evenly spaced subset that always includes the first and the
    last file (the indices stay those of the full run)."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    rows = [(p.name, str(p), parse_ims_timestamp(p.name)) for p in root.iterdir() if _IMS_NAME.match(p.name)]
    if not rows:
        raise ValueError(f"{root}: no IMS recordings (files named YYYY.MM.DD.hh.mm.ss)")
    run = pd.DataFrame(rows, columns=["file", "path", "timestamp"]).sort_values(
        "timestamp", ignore_index=True
    )
    run.insert(0, "file_index", np.arange(len(run)))
    start, end = run["timestamp"].iloc[0], run["timestamp"].iloc[-1]
    run["hours_from_start"] = (run["timestamp"] - start).dt.total_seconds() / 3600.0
    run["hours_to_end"] = (end - run["timestamp"]).dt.total_seconds() / 3600.0
    if max_files is not None and len(run) > max_files:
        if max_files < 2:
            raise ValueError("max_files must be at least 2")
        keep = np.unique(np.round(np.linspace(0, len(run) - 1, max_files)).astype(int))
        run = run.iloc[keep].reset_index(drop=True)
    return run


def list_ims_tests(root: str | PathLike[str]) -> dict[str, Path]:
    """The run directories under an IMS root (``1st_test``, ``2nd_test``, ...) that hold recordings."""
    base = Path(root)
    return {
        p.name: p
        for p in sorted(base.iterdir())
        if p.is_dir() and any(_IMS_NAME.match(f.name) for f in p.iterdir())
    }


@dataclass
class CwruRecord:
    """The signals of one CWRU file: ``signals`` maps DE/FE/BA to 1-D arrays; ``rpm`` when the file has it."""

    path: str
    record: str  # the X<nnn> number
    fs: float
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    rpm: float | None = None


def read_cwru_mat(path: str | PathLike[str], fs: float, *, record: str | None = None) -> CwruRecord:
    """Read a CWRU ``.mat`` file. ``fs`` is the sampling rate (12,000 or 48,000 Hz, not stored in the file).

    Some files carry variables of more than one record number (e.g. a normal-baseline record beside the fault
    record); ``record`` chooses one (``"097"``), default the one with the most signal channels, then the lowest
    number."""
    from scipy.io import loadmat

    if fs not in CWRU_SAMPLING_RATES:
        raise ValueError(f"CWRU data is sampled at 12000 or 48000 Hz, not {fs}")
    content = loadmat(str(path))
    by_record: dict[str, dict[str, np.ndarray]] = {}
    rpms: dict[str, float] = {}
    for key, value in content.items():
        if match := _CWRU_SIGNAL.match(key):
            by_record.setdefault(match.group(1), {})[match.group(2)] = np.asarray(value, float).ravel()
        elif match := _CWRU_RPM.match(key):
            rpms[match.group(1)] = float(np.asarray(value, float).ravel()[0])
    if not by_record:
        raise ValueError(f"{path}: no X<nnn>_DE_time / _FE_time / _BA_time variables")
    if record is None:
        record = min(by_record, key=lambda r: (-len(by_record[r]), int(r)))
    elif record not in by_record:
        raise ValueError(f"{path}: no record X{record}; records: {sorted(by_record)}")
    return CwruRecord(str(path), record, float(fs), by_record[record], rpms.get(record))


def read_signal_file(
    path: str | PathLike[str], *, fs: float, channel: str | int = 0
) -> tuple[np.ndarray, float | None]:
    """One channel of a vibration file for diagnosis: a CWRU ``.mat`` (channel DE/FE/BA, default DE) or an IMS
    or other whitespace-separated numeric text file (channel = column index). Returns (signal, rpm in file)."""
    p = Path(path)
    if p.suffix.lower() == ".mat":
        rec = read_cwru_mat(p, fs)
        name = "DE" if isinstance(channel, int) or str(channel).isdigit() else str(channel).upper()
        if name not in rec.signals:
            raise ValueError(f"{p}: no {name} channel; channels: {sorted(rec.signals)}")
        return rec.signals[name], rec.rpm
    data = pd.read_csv(p, sep=r"\s+", header=None, dtype=np.float64).to_numpy()
    col = int(channel)
    if not 0 <= col < data.shape[1]:
        raise ValueError(f"{p}: channel {col} out of range (file has {data.shape[1]} columns)")
    return data[:, col], None
