"""NASA C-MAPSS files: the training trajectories, a test file and its RUL truth file (the published formats).

Every file is space-separated text without a header: ``unit``, ``cycle``, three operational settings and 21 sensors
(26 columns; the published files end each row with spaces). The sensors carry the mnemonics of Saxena et al.
(PHM 2008, table 2) — :data:`CHANNELS` — which are also the sensor types an asset's sensors must have to be read
by a ``rul_<name>`` model (:mod:`core.ml.rul.serving`). A truth file holds one integer per line: the remaining
cycles after the last cycle of the test file's units, in ascending unit order.

In a training file the last cycle of each unit is its failure: RUL at cycle c = last cycle − c. The usual target
is that value capped (piecewise linear: constant early in life, then falling to 0) — :func:`rul_target`.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from core.ml.rul.channels import CHANNELS

SETTINGS: tuple[str, ...] = ("setting1", "setting2", "setting3")
COLUMNS: tuple[str, ...] = ("unit", "cycle", *SETTINGS, *CHANNELS)
#: the sensors that change over an FD001 engine's life (the other seven are constant or nearly so in FD001)
INFORMATIVE: tuple[str, ...] = (
    "T24", "T30", "T50", "P30", "Nf", "Nc", "Ps30", "phi", "NRf", "NRc", "BPR", "htBleed", "W31", "W32",
)  # fmt: skip
DEFAULT_CAP = 125
DEFAULT_TRAIN_FILE = "cmapss/train_FD001.txt"


class CmapssFormatError(ValueError):
    """A file that is not in the C-MAPSS format (the message names the file and what is wrong)."""


def load_cmapss(path: str | PathLike[str]) -> pd.DataFrame:
    """A C-MAPSS trajectory file → DataFrame[:data:`COLUMNS`] (``unit``/``cycle`` int, the rest float), sorted by
    unit then cycle. Raises :class:`CmapssFormatError` for a wrong column count, a non-number, a duplicated or
    non-positive cycle."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, engine="c", dtype=float)
    except (ValueError, pd.errors.ParserError) as exc:
        raise CmapssFormatError(f"{path}: not a C-MAPSS file ({str(exc).splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise CmapssFormatError(f"{path}: empty file") from None
    if frame.shape[1] != len(COLUMNS):
        raise CmapssFormatError(f"{path}: {frame.shape[1]} columns, a C-MAPSS file has {len(COLUMNS)}")
    frame.columns = list(COLUMNS)
    if frame.isna().any().any():
        raise CmapssFormatError(f"{path}: missing values")
    for column in ("unit", "cycle"):
        values = frame[column].to_numpy()
        if (values != np.round(values)).any() or (values < 1).any():
            raise CmapssFormatError(f"{path}: column {column} must hold positive integers")
        frame[column] = values.astype("int64")
    if frame.duplicated(["unit", "cycle"]).any():
        raise CmapssFormatError(f"{path}: a unit has the same cycle twice")
    return frame.sort_values(["unit", "cycle"], kind="stable").reset_index(drop=True)


def load_truth(path: str | PathLike[str], units: int | None = None) -> pd.Series:
    """A RUL truth file → Series of int (index 0..n-1 = the test units in ascending order). ``units``: the number of
    test units it must match (:class:`CmapssFormatError` otherwise)."""
    path = Path(path)
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:
        values = [float(line.split()[0]) for line in lines]
    except ValueError:
        raise CmapssFormatError(f"{path}: a truth file holds one number per line") from None
    if any(v < 0 or v != round(v) for v in values):
        raise CmapssFormatError(f"{path}: RUL values must be non-negative integers")
    if units is not None and len(values) != units:
        raise CmapssFormatError(f"{path}: {len(values)} RUL values for {units} test units")
    return pd.Series([int(v) for v in values], dtype="int64", name="rul")


def rul_target(frame: pd.DataFrame, cap: float | None = DEFAULT_CAP) -> pd.Series:
    """RUL at each row of run-to-failure trajectories: last cycle of the unit − cycle, capped at ``cap`` (None:
    uncapped). Only for training files (a test file does not end at failure)."""
    last = frame.groupby("unit")["cycle"].transform("max")
    rul = (last - frame["cycle"]).astype(float)
    return rul.clip(upper=cap) if cap is not None else rul


def default_train_path() -> Path:
    """``cmapss/train_FD001.txt`` in the datasets folder (``SM_DATASETS_DIR``)."""
    from core.datasets import dataset_path

    return dataset_path(DEFAULT_TRAIN_FILE)


def write_cmapss(frame: pd.DataFrame, path: str | PathLike[str]) -> None:
    """Write trajectories in the C-MAPSS format (space-separated, no header)."""
    out = frame.loc[:, list(COLUMNS)]
    with Path(path).open("w") as handle:
        for row in out.itertuples(index=False):
            handle.write(f"{int(row[0])} {int(row[1])} " + " ".join(f"{v:.6g}" for v in row[2:]) + "\n")


def write_truth(values: pd.Series | list[int], path: str | PathLike[str]) -> None:
    Path(path).write_text("".join(f"{int(v)}\n" for v in values))


__all__ = [
    "CHANNELS",
    "COLUMNS",
    "DEFAULT_CAP",
    "INFORMATIVE",
    "SETTINGS",
    "CmapssFormatError",
    "default_train_path",
    "load_cmapss",
    "load_truth",
    "rul_target",
    "write_cmapss",
    "write_truth",
]
