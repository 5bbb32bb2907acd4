"""Loader of the AI4I 2020 Predictive Maintenance Dataset in its original UCI format.

The file (S. Matzka, AI4I 2020; UCI Machine Learning Repository, CC BY 4.0) is read from
``ai4i2020/ai4i2020.csv`` in the datasets folder (``SM_DATASETS_DIR``, filled by ``make datasets``) by default: a
missing file raises :class:`core.datasets.DatasetMissingError` naming the file, the folder and the command.
10,000 rows, UTF-8 with a byte-order mark, CRLF line ends, 14 columns in this order::

    UDI, Product ID, Type, Air temperature [K], Process temperature [K], Rotational speed [rpm], Torque [Nm],
    Tool wear [min], Machine failure, TWF, HDF, PWF, OSF, RNF

:func:`load_ai4i` checks the header exactly (after removing the BOM), the types (L/M/H), that no value is missing
and that the six 0/1 label columns are binary. ``Machine failure`` is the target; ``TWF``…``RNF`` are the failure
modes (labels too: a model that sees them reads the answer); ``UDI`` and ``Product ID`` are identifiers.
Known quirks of the real file, kept as they are: 9 failures carry no mode flag, 18 RNF rows have
``Machine failure`` = 0.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from core.datasets import DatasetMissingError, dataset_path, missing_message

TYPE = "Type"
AIR = "Air temperature [K]"
PROCESS = "Process temperature [K]"
SPEED = "Rotational speed [rpm]"
TORQUE = "Torque [Nm]"
WEAR = "Tool wear [min]"
TARGET = "Machine failure"
MODES = ("TWF", "HDF", "PWF", "OSF", "RNF")
IDS = ("UDI", "Product ID")
#: the six process variables: the only input of every model (and of the registered pyfunc)
INPUT_COLUMNS = (TYPE, AIR, PROCESS, SPEED, TORQUE, WEAR)
NUMERIC_INPUTS = (AIR, PROCESS, SPEED, TORQUE, WEAR)
#: integers in the file (and long in the registered model's signature)
INTEGER_INPUTS = (SPEED, WEAR)
#: columns that must never reach a feature matrix (target, failure modes, identifiers)
LABEL_COLUMNS = (TARGET, *MODES)
FORBIDDEN_COLUMNS = (*LABEL_COLUMNS, *IDS)
COLUMNS = (IDS[0], IDS[1], *INPUT_COLUMNS, TARGET, *MODES)
TYPES = ("L", "M", "H")

DATASET = "ai4i2020"
#: the file under the datasets folder (SM_DATASETS_DIR)
DEFAULT_RELATIVE_PATH = "ai4i2020/ai4i2020.csv"


def default_path() -> Path:
    """``ai4i2020/ai4i2020.csv`` in the datasets folder (``SM_DATASETS_DIR``)."""
    return dataset_path(DEFAULT_RELATIVE_PATH)


class Ai4iFormatError(ValueError):
    """The file is not in the AI4I 2020 format."""


def resolve_path(path: str | PathLike[str] | None = None) -> Path:
    """``path`` (relative paths are relative to the working directory), or :func:`default_path` when None."""
    return default_path() if path is None else Path(path)


def validate_ai4i(frame: pd.DataFrame) -> pd.DataFrame:
    """Check an AI4I table (header, types, binary labels, no missing values) and return it with clean dtypes."""
    header = [str(c) for c in frame.columns]
    if header != list(COLUMNS):
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        raise Ai4iFormatError(f"unexpected AI4I header: missing {missing}, unexpected {extra}, got {header}")
    if frame.empty:
        raise Ai4iFormatError("AI4I file has no rows")
    nulls = frame.isna().sum()
    if nulls.any():
        raise Ai4iFormatError(f"missing values: {nulls[nulls > 0].to_dict()}")
    out = frame.copy()
    out[TYPE] = out[TYPE].astype(str).str.strip()
    bad_types = sorted(set(out[TYPE]) - set(TYPES))
    if bad_types:
        raise Ai4iFormatError(f"Type must be one of {TYPES}, got {bad_types}")
    for column in NUMERIC_INPUTS:
        values = pd.to_numeric(out[column], errors="raise").astype(np.float64)
        if column in INTEGER_INPUTS:
            if not np.allclose(values, np.round(values)):
                raise Ai4iFormatError(f"{column} must hold integers")
            values = np.round(values).astype(np.int64)
        out[column] = values
    for column in LABEL_COLUMNS:
        values = pd.to_numeric(out[column], errors="raise")
        if not values.isin([0, 1]).all():
            raise Ai4iFormatError(f"{column} must be 0/1")
        out[column] = values.astype(np.int64)
    out["UDI"] = pd.to_numeric(out["UDI"], errors="raise").astype(np.int64)
    out["Product ID"] = out["Product ID"].astype(str)
    return out.reset_index(drop=True)


def load_ai4i(path: str | PathLike[str] | None = None) -> pd.DataFrame:
    """Read the UCI file (BOM and CRLF handled by ``utf-8-sig`` and the CSV parser) and validate it."""
    source = resolve_path(path)
    if not source.is_file():
        raise DatasetMissingError(missing_message(source, DATASET))
    frame = pd.read_csv(source, encoding="utf-8-sig", dtype={"Product ID": str, "Type": str})
    return validate_ai4i(frame)


def describe(frame: pd.DataFrame) -> dict[str, float]:
    """Statistics that characterise a file (used to compare the generator with the real file)."""
    stats: dict[str, float] = {"rows": float(len(frame))}
    for t in TYPES:
        stats[f"share_{t}"] = float((frame[TYPE] == t).mean())
    for column, key in (
        (AIR, "air"),
        (PROCESS, "process"),
        (SPEED, "speed"),
        (TORQUE, "torque"),
        (WEAR, "wear"),
    ):
        stats[f"{key}_mean"] = float(frame[column].mean())
        stats[f"{key}_sd"] = float(frame[column].std())
    stats["delta_t_mean"] = float((frame[PROCESS] - frame[AIR]).mean())
    stats["delta_t_sd"] = float((frame[PROCESS] - frame[AIR]).std())
    stats["speed_torque_corr"] = float(np.corrcoef(frame[SPEED], frame[TORQUE])[0, 1])
    for column in LABEL_COLUMNS:
        key = "failure" if column == TARGET else column
        stats[f"rate_{key}"] = float(frame[column].mean())
    return stats
