"""Samples of a snapshot: decoding (JSON numbers or base64 float32), the compact stored form, scalar features.

The stored form is little-endian IEEE-754 float32 (4 bytes a sample: a 12 kHz, 2 s snapshot is 96 KB), which
keeps 24 bits of mantissa — far below an accelerometer's own noise floor. Features are computed on the float32
values, so the stored snapshot reproduces them exactly.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FLOAT32_LE = np.dtype("<f4")


class SamplesInvalid(ValueError):
    """The samples cannot be decoded or are not finite; the message says why."""


def from_base64(text: str) -> NDArray[np.float32]:
    """Little-endian float32 samples from base64 (standard alphabet, padding required)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SamplesInvalid("samples_base64 is not valid base64") from None
    if len(raw) % FLOAT32_LE.itemsize:
        raise SamplesInvalid(f"samples_base64 decodes to {len(raw)} bytes, not a whole number of float32 samples")
    return from_bytes(raw)


def from_numbers(values: list[float]) -> NDArray[np.float32]:
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float32)


def check_finite(samples: NDArray[np.float32]) -> None:
    bad = np.flatnonzero(~np.isfinite(samples))
    if bad.size:
        raise SamplesInvalid(f"{bad.size} sample(s) are not finite float32 numbers (first at index {int(bad[0])})")


def to_bytes(samples: NDArray[np.float32]) -> bytes:
    return samples.astype(FLOAT32_LE).tobytes()


def from_bytes(raw: bytes) -> NDArray[np.float32]:
    return np.frombuffer(raw, dtype=FLOAT32_LE).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Features:
    rms: float
    """Root mean square of the samples (the sensor's unit, e.g. g)."""
    kurtosis: float
    """Excess (Fisher) kurtosis: 0 for Gaussian vibration, raised by bearing impacts; 0 for a constant signal."""
    peak: float
    """Largest absolute sample."""


def features(samples: NDArray[np.float32]) -> Features:
    x = samples.astype(np.float64)
    rms = float(np.sqrt(np.mean(x * x)))
    centred = x - x.mean()
    var = float(np.mean(centred * centred))
    kurt = float(np.mean(centred**4) / (var * var) - 3.0) if var > 0 else 0.0
    return Features(rms=rms, kurtosis=kurt, peak=float(np.max(np.abs(x))))


__all__ = [
    "Features",
    "SamplesInvalid",
    "check_finite",
    "features",
    "from_base64",
    "from_bytes",
    "from_numbers",
    "to_bytes",
]
