"""The platform's unit vocabulary and conversions, backed by one pint ``UnitRegistry``.

* ``normalize(unit)`` gives the canonical spelling used for comparison and storage: surrounding whitespace is
  stripped and the known spellings of the vocabulary map to one each (``degC`` → ``°C``, ``m/s^2`` → ``m/s²``,
  ``percent`` → ``%``, ``RPM`` → ``rpm``…). Other strings are kept as they are (stripped); ``None`` and ``''``
  stay what they are (``''`` is the dimensionless unit, ``None`` means "no unit given").
* ``converter(a, b)`` returns a function converting values from ``a`` into ``b`` — the identity when both
  normalise to the same spelling (also for strings pint does not know), an affine map when pint defines the
  conversion (offset units too: °C ↔ K ↔ °F) — or ``None`` when the dimensions differ or either unit is unknown.
  The functions accept floats and numpy arrays alike; ``convert`` / ``convert_array`` are the raising forms.

Project spellings that pint reads differently (documented in the README, "How sensors are registered, and units"):

* ``g`` is **standard gravity** (9.806 65 m/s², acceleration), not the gram. This applies to ``g`` as a whole
  symbol, also inside an expression (``g^2/Hz``); ``kg`` and ``mg`` stay the kilogram and the milligram (milli-g
  is ``mg0``).
* ``%RH`` is relative humidity in percent (pint would read ``RH`` as the ronnahenry); ``%`` is the percent.
* ``rpm`` is revolutions (cycles) per minute, so 60 rpm = 1 Hz. Angular units (rad, rad/s, °) never convert to
  cycles or to dimensionless units: pint counts a revolution as 2π and would make 1 rpm = 0.105 Hz.
* ``C`` and ``F`` stay pint's coulomb and farad (degrees are ``°C``/``degC`` and ``°F``/``degF``); a reading in
  ``C`` for a ``°C`` sensor is therefore refused, with a hint, rather than taken as a temperature.
* Logarithmic units (dB, …) are not converted: only affine conversions are.

The registry is created on first use (importing pint and building it takes ~0.5 s); ``warm_up()`` does it ahead.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, SupportsFloat

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from pint import UnitRegistry

Converter = Callable[[float], float]

#: Longest unit string looked up in pint (longer ones are unknown; the API accepts 32 characters).
MAX_UNIT_CHARS = 64

#: Canonical spelling → the pint expression it means.
_CANONICAL: dict[str, str] = {
    "": "dimensionless",
    "%": "percent",
    "%RH": "percent",
    "ppm": "ppm",
    "°C": "degree_Celsius",
    "°F": "degree_Fahrenheit",
    "K": "kelvin",
    "mm/s": "millimeter / second",
    "in/s": "inch / second",
    "m/s": "meter / second",
    "m/s²": "meter / second ** 2",
    "g": "standard_gravity",
    "bar": "bar",
    "mbar": "millibar",
    "Pa": "pascal",
    "kPa": "kilopascal",
    "MPa": "megapascal",
    "psi": "psi",
    "V": "volt",
    "mV": "millivolt",
    "kV": "kilovolt",
    "A": "ampere",
    "mA": "milliampere",
    "W": "watt",
    "kW": "kilowatt",
    "Hz": "hertz",
    "rpm": "1 / minute",
}

#: Other spellings of the canonical ones (exact, after stripping).
_ALIASES: dict[str, str] = {
    "dimensionless": "",
    "percent": "%",
    "pct": "%",
    "%rh": "%RH",
    "% RH": "%RH",
    "RH%": "%RH",
    "℃": "°C",
    "° C": "°C",
    "degC": "°C",
    "deg_C": "°C",
    "degreeC": "°C",
    "celsius": "°C",
    "Celsius": "°C",
    "degree_Celsius": "°C",
    "degrees_Celsius": "°C",
    "℉": "°F",
    "° F": "°F",
    "degF": "°F",
    "deg_F": "°F",
    "degreeF": "°F",
    "fahrenheit": "°F",
    "Fahrenheit": "°F",
    "degree_Fahrenheit": "°F",
    "degrees_Fahrenheit": "°F",
    "kelvin": "K",
    "degK": "K",
    "mm/sec": "mm/s",
    "mm s^-1": "mm/s",
    "in/sec": "in/s",
    "inch/s": "in/s",
    "ips": "in/s",
    "m/sec": "m/s",
    "m/s^2": "m/s²",
    "m/s**2": "m/s²",
    "m s^-2": "m/s²",
    "m/s/s": "m/s²",
    "g0": "g",
    "g_n": "g",
    "standard_gravity": "g",
    "volt": "V",
    "volts": "V",
    "ampere": "A",
    "amp": "A",
    "amps": "A",
    "RPM": "rpm",
    "r/min": "rpm",
    "rev/min": "rpm",
    "hertz": "Hz",
    "hz": "Hz",
}

#: Spellings that are someone else's unit in pint, with what the sender probably meant.
_HINTS: dict[str, str] = {
    "C": "'C' is the coulomb; degrees Celsius are '°C' or 'degC'",
    "F": "'F' is the farad; degrees Fahrenheit are '°F' or 'degF'",
    "G": "'G' is the gauss; standard gravity is 'g'",
}

#: ``g`` as a whole symbol (not the g of kg, mg, deg or g0).
_G_SYMBOL = re.compile(r"(?<![\w.])g(?![\w])")
#: Base units of angle: a quantity with them converts only to quantities with the same angle exponent.
_ANGLE_UNITS = ("radian", "steradian")


class UnknownUnit(ValueError):
    """A unit string the platform (pint with the project's spellings) does not understand."""


class IncompatibleUnits(ValueError):
    """Both units are known but measure different things (or only a non-affine conversion exists)."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """``value * scale + offset``: works on floats and numpy arrays."""

    scale: float
    offset: float = 0.0

    def __call__(self, value: Any) -> Any:
        if self.offset == 0.0:
            return value if self.scale == 1.0 else value * self.scale
        return value * self.scale + self.offset

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0


IDENTITY = Conversion(1.0, 0.0)


_registry: list[UnitRegistry[Any]] = []
_registry_lock = threading.Lock()


def registry() -> UnitRegistry[Any]:
    """The platform's one pint registry (created on first use, once even across threads; pint is imported then).

    Units of two registries cannot be combined, so there must never be a second one.
    """
    if not _registry:
        with _registry_lock:
            if not _registry:
                import pint

                _registry.append(pint.UnitRegistry(cache_folder=None))
    return _registry[0]


def warm_up() -> None:
    """Build the registry and parse the catalogue's units now rather than during the first conversion."""
    for unit in _CANONICAL:
        _parse(unit)


def normalize(unit: str | None) -> str | None:
    """Canonical spelling of ``unit`` (stripped; vocabulary aliases mapped); ``None`` stays ``None``."""
    if unit is None:
        return None
    stripped = unit.strip()
    return _ALIASES.get(stripped, stripped)


@dataclass(frozen=True, slots=True)
class _Parsed:
    unit: Any  # pint.Unit
    dimension: tuple[Any, ...]
    """Physical dimensionality plus the angle exponents (a revolution is not a cycle)."""
    factor: float
    """Multiplicative factor to the base units."""
    offset: float
    """Offset to the base units (non-zero only for °C, °F and the like)."""


@lru_cache(maxsize=2048)
def _parse(unit: str) -> _Parsed | None:
    """pint's reading of a normalised unit string, or None when it is unknown."""
    expression = _CANONICAL.get(unit)
    if expression is None:
        if len(unit) > MAX_UNIT_CHARS:
            return None
        expression = _G_SYMBOL.sub("standard_gravity", unit)
    ureg = registry()
    try:
        parsed = ureg.parse_units(expression)
        raw_factor, base = ureg.get_base_units(parsed)
        offset = float(ureg.Quantity(0.0, parsed).to(base).magnitude)
    except Exception:  # noqa: BLE001 - pint's parser raises many kinds (syntax, undefined, offset calculus)
        return None
    exponents = dict(base._units)  # UnitsContainer: base unit name → exponent
    dimension = (parsed.dimensionality, tuple(_real(exponents.get(a, 0)) for a in _ANGLE_UNITS))
    factor = _real(raw_factor)
    if not (math.isfinite(factor) and factor != 0.0 and math.isfinite(offset)):
        return None
    return _Parsed(parsed, dimension, factor, offset)


def _real(value: object) -> float:
    """``float(value)`` for pint's factors and exponents, which it types as any number (complex included)."""
    if not isinstance(value, SupportsFloat):
        raise TypeError(f"not a real number: {value!r}")
    return float(value)


def _verified(src: _Parsed, dst: _Parsed, conversion: Conversion) -> bool:
    """pint agrees with the affine map at two points (it does not for logarithmic units)."""
    ureg = registry()
    for x in (2.0, 1000.0):
        try:
            expected = float(ureg.Quantity(x, src.unit).to(dst.unit).magnitude)
        except Exception:  # noqa: BLE001 - no conversion pint can carry out is no conversion
            return False
        got = conversion(x)
        if not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9):
            return False
    return True


@lru_cache(maxsize=4096)
def converter(from_unit: str | None, to_unit: str | None) -> Conversion | None:
    """A function converting values in ``from_unit`` into ``to_unit``, or None when there is none.

    The identity when both normalise to the same spelling (even one pint does not know); ``None`` when either is
    unknown (``None`` — no unit — converts only to ``None``), when the dimensions differ, or when the conversion
    is not affine. The returned ``Conversion`` also applies to numpy arrays.
    """
    src, dst = normalize(from_unit), normalize(to_unit)
    if src == dst:
        return IDENTITY
    if src is None or dst is None:
        return None
    a, b = _parse(src), _parse(dst)
    if a is None or b is None or a.dimension != b.dimension:
        return None
    scale = a.factor / b.factor
    offset = (a.offset - b.offset) / b.factor
    conversion = IDENTITY if scale == 1.0 and offset == 0.0 else Conversion(scale, offset)
    if not _verified(a, b, conversion):
        return None
    return conversion


def compatible(a: str | None, b: str | None) -> bool:
    """True when values in ``a`` can be converted into ``b``."""
    return converter(a, b) is not None


def is_known(unit: str | None) -> bool:
    """True when the platform understands ``unit`` (``None`` — no unit — is not a unit)."""
    normal = normalize(unit)
    return normal is not None and _parse(normal) is not None


def hint(unit: str | None) -> str | None:
    """What the sender of a commonly confused spelling (``C``, ``F``, ``G``) probably meant."""
    normal = normalize(unit)
    return None if normal is None else _HINTS.get(normal)


def _require(from_unit: str | None, to_unit: str | None) -> Conversion:
    conversion = converter(from_unit, to_unit)
    if conversion is not None:
        return conversion
    for unit in (from_unit, to_unit):
        if not is_known(unit):
            raise UnknownUnit(f"unknown unit: {unit!r}")
    raise IncompatibleUnits(f"{from_unit!r} cannot be converted to {to_unit!r}")


def convert(value: float, from_unit: str | None, to_unit: str | None) -> float:
    """``value`` in ``to_unit``; ``UnknownUnit`` or ``IncompatibleUnits`` when there is no conversion."""
    return float(_require(from_unit, to_unit)(value))


def convert_array(
    values: npt.ArrayLike, from_unit: str | None, to_unit: str | None
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Vectorised ``convert``: a float64 array of ``values`` in ``to_unit`` (a new array)."""
    import numpy as np

    conversion = _require(from_unit, to_unit)
    array = np.array(values, dtype=np.float64)
    if conversion.is_identity:
        return array
    array *= conversion.scale
    if conversion.offset:
        array += conversion.offset
    return array


__all__ = [
    "IDENTITY",
    "MAX_UNIT_CHARS",
    "Conversion",
    "Converter",
    "IncompatibleUnits",
    "UnknownUnit",
    "compatible",
    "convert",
    "convert_array",
    "converter",
    "hint",
    "is_known",
    "normalize",
    "registry",
    "warm_up",
]
