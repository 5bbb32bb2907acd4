"""core/units.py: the vocabulary's spellings, exact conversions (offset units too), what never converts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import units
from core.fleet.types import SENSOR_TYPES
from core.units import (
    IDENTITY,
    IncompatibleUnits,
    UnknownUnit,
    compatible,
    convert,
    convert_array,
    converter,
    hint,
    is_known,
    normalize,
)


def conv(value: float, a: str | None, b: str | None) -> float:
    c = converter(a, b)
    assert c is not None, f"{a!r} → {b!r} should convert"
    return float(c(value))


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        (None, None),
        ("", ""),
        ("   ", ""),
        (" °C ", "°C"),
        ("degC", "°C"),
        ("celsius", "°C"),
        ("℃", "°C"),
        ("degF", "°F"),
        ("kelvin", "K"),
        ("mm/sec", "mm/s"),
        ("ips", "in/s"),
        ("m/s^2", "m/s²"),
        ("m/s**2", "m/s²"),
        ("g0", "g"),
        ("percent", "%"),
        ("%rh", "%RH"),
        ("RPM", "rpm"),
        ("volts", "V"),
        ("amps", "A"),
        ("furlong/fortnight", "furlong/fortnight"),  # not in the vocabulary: kept as sent
        ("C", "C"),  # the coulomb: never aliased to °C
    ],
)
def test_normalize(spelling: str | None, canonical: str | None) -> None:
    assert normalize(spelling) == canonical


def test_every_catalogue_unit_is_understood_and_canonical() -> None:
    for sensor_type in SENSOR_TYPES.values():
        assert is_known(sensor_type.unit), sensor_type.name
        assert normalize(sensor_type.unit) == sensor_type.unit, sensor_type.name
        assert converter(sensor_type.unit, sensor_type.unit) is IDENTITY
    assert {t.unit for t in SENSOR_TYPES.values()} >= {"°C", "mm/s", "g", "", "bar", "%RH", "V", "A"}


def test_g_is_standard_gravity_not_gram() -> None:
    assert conv(1.0, "g", "m/s^2") == 9.80665
    assert conv(1.0, "g", "m/s²") == 9.80665
    assert conv(9.80665, "m/s²", "g") == pytest.approx(1.0, rel=1e-15)
    assert conv(1000.0, "mg0", "g") == pytest.approx(1.0, rel=1e-15)  # milli-g
    assert conv(1.0, "g^2/Hz", "m^2/s^4/Hz") == pytest.approx(9.80665**2, rel=1e-12)  # vibration PSD
    for mass in ("kg", "mg", "gram", "lb"):
        assert converter("g", mass) is None and converter(mass, "g") is None
    assert conv(1.0, "kg", "mg") == pytest.approx(1e6, rel=1e-12)  # kg and mg stay masses


def test_velocity() -> None:
    assert conv(10.0, "mm/s", "in/s") == pytest.approx(0.3937007874015748, rel=1e-15)
    assert conv(1.0, "in/s", "mm/s") == pytest.approx(25.4, rel=1e-15)
    assert conv(1.0, "ips", "mm/s") == pytest.approx(25.4, rel=1e-15)
    assert conv(1.0, "m/s", "mm/s") == pytest.approx(1000.0, rel=1e-15)


def test_temperature_offsets() -> None:
    assert conv(212.0, "°F", "°C") == pytest.approx(100.0, abs=1e-12)
    assert conv(32.0, "degF", "°C") == pytest.approx(0.0, abs=1e-12)
    assert conv(300.0, "K", "°C") == pytest.approx(26.85, abs=1e-12)
    assert conv(0.0, "°C", "K") == pytest.approx(273.15, abs=1e-12)
    assert conv(-40.0, "°C", "°F") == pytest.approx(-40.0, abs=1e-12)
    assert conv(100.0, "°C", "°F") == pytest.approx(212.0, abs=1e-12)
    c = converter("K", "°C")
    assert c is not None and (c.scale, c.offset) == (1.0, -273.15)


def test_humidity_percent_and_dimensionless() -> None:
    assert converter("%", "%RH") is IDENTITY
    assert converter("percent", "%RH") is IDENTITY
    assert conv(45.0, "%RH", "") == pytest.approx(0.45, rel=1e-15)
    assert conv(0.45, "", "%RH") == pytest.approx(45.0, rel=1e-15)
    assert converter("", "") is IDENTITY
    assert converter("dimensionless", "") is IDENTITY
    assert conv(2.5, "ppm", "%") == pytest.approx(2.5e-4, rel=1e-12)


def test_pressure_electrical_rotation() -> None:
    assert conv(1.0, "psi", "bar") == pytest.approx(0.0689475729316836, rel=1e-12)
    assert conv(250.0, "kPa", "bar") == pytest.approx(2.5, rel=1e-15)
    assert conv(1500.0, "mV", "V") == pytest.approx(1.5, rel=1e-15)
    assert conv(250.0, "mA", "A") == pytest.approx(0.25, rel=1e-15)
    assert conv(1800.0, "rpm", "Hz") == pytest.approx(30.0, rel=1e-15)  # cycles, not radians


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("g", "mm/s"),  # acceleration vs velocity
        ("mm/s", "g"),
        ("°C", "bar"),
        ("V", "A"),
        ("", "°C"),
        ("mm/s", ""),
        ("%RH", "°C"),
        ("C", "°C"),  # coulomb
        ("F", "°F"),  # farad
        ("rad/s", "rpm"),  # angular speed is not cycles
        ("deg", ""),  # an angle is not a number
        ("dB", ""),  # logarithmic: not affine
        ("dBm", "W"),
        ("furlongz", "mm/s"),  # unknown
        ("mm/s", "furlongz"),
        ("xyz", "abc"),
        (None, "mm/s"),  # no unit is not a unit
        ("mm/s", None),
        ("m/s)", "m/s"),  # syntax error
        ("x" * 100, "mm/s"),
    ],
)
def test_no_conversion(a: str | None, b: str | None) -> None:
    assert converter(a, b) is None
    assert not compatible(a, b)


def test_equal_spellings_are_the_identity_even_unknown() -> None:
    assert converter("xyz", " xyz ") is IDENTITY
    assert converter(None, None) is IDENTITY
    assert converter("degC", "°C") is IDENTITY
    assert compatible("mm/s", "in/s")


def test_known_and_hints() -> None:
    assert is_known("mm/s") and is_known("") and is_known("kPa")
    assert not is_known(None) and not is_known("furlongz") and not is_known("m/s)")
    assert "°C" in (hint("C") or "")
    assert hint("mm/s") is None


def test_convert_raises_the_reason() -> None:
    assert convert(1.0, "in/s", "mm/s") == pytest.approx(25.4)
    with pytest.raises(UnknownUnit):
        convert(1.0, "furlongz", "mm/s")
    with pytest.raises(IncompatibleUnits):
        convert(1.0, "g", "mm/s")
    assert issubclass(UnknownUnit, ValueError) and issubclass(IncompatibleUnits, ValueError)


def test_vectorised() -> None:
    values = np.array([32.0, 212.0, -40.0])
    np.testing.assert_allclose(convert_array(values, "°F", "°C"), [0.0, 100.0, -40.0], atol=1e-12)
    np.testing.assert_allclose(convert_array([1, 2], "g", "m/s²"), [9.80665, 19.6133], rtol=1e-15)
    same = convert_array(values, "°C", "°C")
    assert same is not values and same.dtype == np.float64 and np.array_equal(same, values)
    c = converter("mm/s", "in/s")
    assert c is not None
    np.testing.assert_allclose(c(np.array([10.0, 25.4])), [0.3937007874015748, 1.0], rtol=1e-15)
    with pytest.raises(IncompatibleUnits):
        convert_array(values, "°C", "bar")


def test_cached_and_one_registry() -> None:
    assert converter("mm/s", "in/s") is converter("mm/s", "in/s")
    assert units.registry() is units.registry()
    c = converter("°F", "K")
    assert c is not None and math.isclose(c(32.0), 273.15, abs_tol=1e-12)
