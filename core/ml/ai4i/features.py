"""Leak-free features of one AI4I row and the published physical failure limits.

Inputs are only the six process variables (:data:`core.ml.ai4i.data.INPUT_COLUMNS`). ``Machine failure``, the five
failure-mode flags (TWF, HDF, PWF, OSF, RNF), ``UDI`` and ``Product ID`` are never features:
:func:`build_features` selects the inputs explicitly and :func:`assert_no_label_columns` refuses any matrix that
carries one of those names. Every feature is a function of its own row only (no rolling windows, no ranks, no
statistics over the table), so predictions do not depend on the other rows of a batch.

Feature sets:

* ``raw`` — the five numeric process variables and the Type one-hot (``type_L``, ``type_M``, ``type_H``);
* ``engineered`` — ``raw`` plus physics features: ``delta_t`` (process − air, K), ``power_w``
  (torque × speed·2π/60), ``wear_torque`` (min·Nm) and ``wear_torque_ratio`` (relative to the type's OSF limit),
  ``heat_dt_margin`` / ``heat_speed_margin`` (distance to 8.6 K and 1380 rpm), ``heat_dissipation_zone`` (both below),
  ``power_band_distance`` (W inside the 3500–9000 W band, negative outside), ``tool_wear_window`` (wear ≥ 200 min).

The limits are those of the dataset description (Matzka 2020); :func:`limit_margins` expresses each as a signed
fraction (negative = crossed) and :func:`closest_limit` names the smallest — the per-prediction explanation of the
registered model. :func:`failure_rules` applies the limits themselves: the reference ceiling, never a classifier.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from core.ml.ai4i.data import (
    FORBIDDEN_COLUMNS,
    NUMERIC_INPUTS,
    TYPE,
    TYPES,
)

HDF_DELTA_T_K = 8.6
HDF_SPEED_RPM = 1380.0
PWF_LOW_W = 3500.0
PWF_HIGH_W = 9000.0
OSF_LIMITS = {"L": 11_000.0, "M": 12_000.0, "H": 13_000.0}
TWF_WINDOW_MIN = (200.0, 240.0)

FeatureSet = Literal["raw", "engineered"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("raw", "engineered")
LIMITS = ("heat_dissipation", "power_band", "overstrain", "tool_wear_window")

RAW_FEATURES = (
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    *(f"type_{t}" for t in TYPES),
)
ENGINEERED_FEATURES = (
    *RAW_FEATURES,
    "delta_t",
    "power_w",
    "wear_torque",
    "wear_torque_ratio",
    "heat_dt_margin",
    "heat_speed_margin",
    "heat_dissipation_zone",
    "power_band_distance",
    "tool_wear_window",
)
_RENAME = dict(zip(NUMERIC_INPUTS, RAW_FEATURES[:5], strict=True))


class LabelLeakError(ValueError):
    """A label or identifier column reached a feature matrix."""


def mechanical_power(torque: np.ndarray | pd.Series, speed: np.ndarray | pd.Series) -> NDArray[np.float64]:
    """Power in W from torque [Nm] and speed [rpm]: P = τ · n · 2π / 60."""
    power: NDArray[np.float64] = np.asarray(torque, dtype=float) * np.asarray(speed, dtype=float) * 2.0 * np.pi / 60.0
    return power


def osf_limit(types: pd.Series) -> NDArray[np.float64]:
    limits = types.map(OSF_LIMITS)
    if limits.isna().any():
        raise ValueError(f"unknown Type values: {sorted(set(types[limits.isna()]))}")
    values: NDArray[np.float64] = limits.to_numpy(dtype=float)
    return values


def assert_no_label_columns(columns: pd.Index | list[str] | tuple[str, ...]) -> None:
    """Raise :class:`LabelLeakError` when a label/identifier column (or a one-hot of it) is among ``columns``."""
    lowered = {str(c).strip().lower() for c in columns}
    forbidden = {c.lower() for c in FORBIDDEN_COLUMNS} | {"machine_failure", "product_id", "udi"}
    leaks = sorted(
        c for c in lowered if c in forbidden or any(c.startswith((f"{f}_", f"{f}=")) for f in forbidden)
    )
    if leaks:
        raise LabelLeakError(f"label/identifier columns in the features: {leaks}")


def _inputs(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in (TYPE, *NUMERIC_INPUTS) if c not in frame.columns]
    if missing:
        raise ValueError(f"missing input columns: {missing}")
    out = frame[list(NUMERIC_INPUTS)].astype(np.float64).rename(columns=_RENAME)
    types = frame[TYPE].astype(str)
    unknown = sorted(set(types) - set(TYPES))
    if unknown:
        raise ValueError(f"unknown Type values: {unknown}")
    for t in TYPES:
        out[f"type_{t}"] = (types == t).astype(np.float64).to_numpy()
    return out


def raw_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The six process variables (Type one-hot), nothing else."""
    out = _inputs(frame)[list(RAW_FEATURES)]
    assert_no_label_columns(out.columns)
    return out


def engineered_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Raw features plus the physics features of the module docstring (row-wise only)."""
    out = _inputs(frame)
    delta_t = out["process_temperature_k"] - out["air_temperature_k"]
    speed = out["rotational_speed_rpm"]
    power = mechanical_power(out["torque_nm"], speed)
    wear_torque = out["tool_wear_min"] * out["torque_nm"]
    out["delta_t"] = delta_t
    out["power_w"] = power
    out["wear_torque"] = wear_torque
    out["wear_torque_ratio"] = wear_torque / osf_limit(frame[TYPE].astype(str))
    out["heat_dt_margin"] = delta_t - HDF_DELTA_T_K
    out["heat_speed_margin"] = speed - HDF_SPEED_RPM
    out["heat_dissipation_zone"] = ((delta_t < HDF_DELTA_T_K) & (speed < HDF_SPEED_RPM)).astype(np.float64)
    out["power_band_distance"] = np.minimum(power - PWF_LOW_W, PWF_HIGH_W - power)
    out["tool_wear_window"] = (out["tool_wear_min"] >= TWF_WINDOW_MIN[0]).astype(np.float64)
    out = out[list(ENGINEERED_FEATURES)]
    assert_no_label_columns(out.columns)
    return out


def build_features(frame: pd.DataFrame, feature_set: FeatureSet) -> pd.DataFrame:
    if feature_set == "raw":
        return raw_features(frame)
    if feature_set == "engineered":
        return engineered_features(frame)
    raise ValueError(f"unknown feature set {feature_set!r}; choose from {FEATURE_SETS}")


def limit_margins(frame: pd.DataFrame) -> pd.DataFrame:
    """Signed distance to each published limit as a fraction of the limit (≤ 0 means crossed).

    * heat_dissipation: max((ΔT − 8.6)/8.6, (speed − 1380)/1380) — crossed only when both are below;
    * power_band: min((P − 3500)/3500, (9000 − P)/9000);
    * overstrain: (limit(Type) − wear × torque) / limit(Type);
    * tool_wear_window: (200 − wear)/200 (tools are replaced, or fail, from 200 min on).
    """
    x = _inputs(frame)
    delta_t = x["process_temperature_k"] - x["air_temperature_k"]
    speed = x["rotational_speed_rpm"]
    power = mechanical_power(x["torque_nm"], speed)
    limit = osf_limit(frame[TYPE].astype(str))
    margins = pd.DataFrame(
        {
            "heat_dissipation": np.maximum(
                (delta_t - HDF_DELTA_T_K) / HDF_DELTA_T_K, (speed - HDF_SPEED_RPM) / HDF_SPEED_RPM
            ),
            "power_band": np.minimum((power - PWF_LOW_W) / PWF_LOW_W, (PWF_HIGH_W - power) / PWF_HIGH_W),
            "overstrain": (limit - x["tool_wear_min"] * x["torque_nm"]) / limit,
            "tool_wear_window": (TWF_WINDOW_MIN[0] - x["tool_wear_min"]) / TWF_WINDOW_MIN[0],
        },
        index=frame.index,
    )
    return margins[list(LIMITS)]


def closest_limit(frame: pd.DataFrame) -> pd.DataFrame:
    """Per row: the limit with the smallest margin (``closest_limit``) and that margin (``closest_limit_margin``)."""
    margins = limit_margins(frame)
    return pd.DataFrame(
        {
            "closest_limit": margins.idxmin(axis=1).astype(str),
            "closest_limit_margin": margins.min(axis=1).astype(np.float64),
        },
        index=frame.index,
    )


def failure_rules(frame: pd.DataFrame) -> pd.DataFrame:
    """The deterministic published rules (HDF, PWF, OSF) per row, plus ``any``: the reference ceiling.

    TWF (a random point in the 200–240 min window) and RNF (random) cannot be decided from one row, so they are
    not predicted; that is why the ceiling stays below 1.
    """
    margins = limit_margins(frame)
    rules = pd.DataFrame(
        {
            "HDF": margins["heat_dissipation"] < 0,
            "PWF": margins["power_band"] < 0,
            "OSF": margins["overstrain"] < 0,
        },
        index=frame.index,
    )
    rules["any"] = rules.any(axis=1)
    return rules
