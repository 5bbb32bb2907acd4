"""core/ingest/sensors.apply_units: per-reading conversion, rejection reasons, adoption, and what it costs next to
parsing (10,000 readings)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core import units
from core.ingest.schemas import ValidReading, parse_readings
from core.ingest.sensors import MAX_UNITS_PER_BATCH, apply_units, registration_unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def vr(
    index: int, sensor_id: str, value: float, unit: str | None, sensor_type: str | None = None
) -> ValidReading:
    return ValidReading(index, sensor_id, value, T0 + timedelta(seconds=index), unit, 1.0, sensor_type)


def test_same_or_absent_units_return_the_batch_untouched() -> None:
    readings = [vr(0, "a", 1.0, "mm/s"), vr(1, "a", 2.0, None), vr(2, "b", 3.0, None)]
    plan = apply_units(readings, {"a": "mm/s", "b": None})
    assert plan.readings is readings and plan.rejected == [] and plan.adopted == {}


def test_converted_into_the_sensor_unit_or_rejected_with_reason() -> None:
    readings = [
        vr(0, "sensor-002", 1.0, "in/s"),
        vr(1, "sensor-002", 2.0, "g"),
        vr(2, "sensor-002", 3.0, "mm/s"),
        vr(3, "sensor-002", 4.0, "furlongz"),
        vr(4, "sensor-001", 212.0, "°F"),
        vr(5, "sensor-001", 20.0, "degC"),
        vr(6, "sensor-001", 20.0, "C"),
        vr(7, "sensor-002", 5.0, ""),
        vr(8, "sensor-002", 1e308, "in/s"),
        vr(9, "sensor-003", 1.0, "mm/s"),
    ]
    plan = apply_units(readings, {"sensor-001": "°C", "sensor-002": "mm/s", "sensor-003": "blips"})
    kept = {r.index: (r.value, r.unit) for r in plan.readings}
    assert kept[0] == (pytest.approx(25.4, rel=1e-15), "mm/s")
    assert kept[2] == (3.0, "mm/s")
    assert kept[4] == (pytest.approx(100.0, abs=1e-12), "°C")
    assert kept[5] == (20.0, "°C")  # another spelling of the same unit: stored with the registered spelling
    assert kept[7] == (5.0, None)  # "" is no unit: the sensor's
    assert set(kept) == {0, 2, 4, 5, 7}
    assert [r.index for r in plan.readings] == [0, 2, 4, 5, 7]  # order kept
    reasons = {r.index: r.reason for r in plan.rejected}
    assert reasons == {
        1: "unit: 'g' cannot be converted to sensor-002's unit 'mm/s'",
        3: "unit: 'furlongz' is not a unit the platform knows (sensor-002's unit is 'mm/s')",
        6: "unit: 'C' cannot be converted to sensor-001's unit '°C' ('C' is the coulomb; degrees Celsius are "
        "'°C' or 'degC')",
        8: "value: 1e+308 in/s is not finite in sensor-002's unit 'mm/s'",
        9: "unit: 'mm/s' cannot be converted to sensor-003's unit 'blips', which is not a unit the platform knows",
    }
    assert plan.adopted == {}


def test_sensor_without_unit_adopts_the_first_one() -> None:
    readings = [
        vr(0, "n", 1.0, None),
        vr(1, "n", 2.0, " in/s "),
        vr(2, "n", 3.0, "mm/s"),
        vr(3, "n", 4.0, "V"),
    ]
    plan = apply_units(readings, {"n": None})
    assert plan.adopted == {"n": "in/s"}
    assert [(r.index, r.unit) for r in plan.readings] == [(0, None), (1, "in/s"), (2, "in/s")]
    assert plan.readings[1].value == 2.0
    assert plan.readings[2].value == pytest.approx(3.0 / 25.4, rel=1e-15)
    assert [r.index for r in plan.rejected] == [3]


def test_a_batch_looks_up_a_bounded_number_of_units() -> None:
    """Each new unit string costs a pint lookup: one request cannot make the API parse thousands."""
    n = MAX_UNITS_PER_BATCH
    readings = [vr(i, "a", 1.0, f"m/s*{'m/m*' * (i % 3)}s**{i}/s**{i}") for i in range(n + 20)]
    readings += [vr(n + 20, "a", 1.0, "m/s*s**0/s**0"), vr(n + 21, "a", 1.0, "in/s")]
    plan = apply_units(readings, {"a": "mm/s"})
    assert len(plan.readings) == n + 1  # the first n units, and a repeat of one of them
    assert {r.unit for r in plan.readings} == {"mm/s"}
    assert all(r.value == pytest.approx(1000.0) for r in plan.readings)
    too_many = f"unit: more than {n} different units in one request"
    assert {r.index for r in plan.rejected} == set(range(n, n + 20)) | {n + 21}
    assert {r.reason for r in plan.rejected} == {too_many}


def test_registration_unit() -> None:
    assert registration_unit(vr(0, "x", 1.0, "degC", "vibration")) == "°C"  # the reading's unit first
    assert registration_unit(vr(0, "x", 1.0, None, "vibration")) == "mm/s"  # then the catalogue's
    assert registration_unit(vr(0, "x", 1.0, "", "acceleration")) == "g"
    assert registration_unit(vr(0, "x", 1.0, None, "kurtosis")) == ""  # dimensionless
    assert registration_unit(vr(0, "x", 1.0, None, "flow")) is None  # not in the catalogue
    assert registration_unit(vr(0, "x", 1.0, None, None)) is None


def _body(n: int, unit: str) -> bytes:
    now = datetime.now(UTC)
    return orjson.dumps(
        [
            {
                "sensor_id": f"s-{i % 15}",
                "value": float(i),
                "timestamp": (now - timedelta(seconds=i)).isoformat(),
                "unit": unit,
                "quality": 1.0,
            }
            for i in range(n)
        ]
    )


def _best(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_unit_step_is_a_pass_through_when_units_agree_and_converts_a_full_batch() -> None:
    """The common case (every unit equals the sensor's) hands the parsed list through untouched: no copy, no
    conversion, one comparison per reading; a batch in another unit is converted in full. The costs are printed for
    information (speed is measured by `make bench-ingest`, never asserted on this noisy machine)."""
    units.warm_up()
    registered = {f"s-{i}": "mm/s" for i in range(15)}
    same, other = _body(10_000, "mm/s"), _body(10_000, "in/s")
    parsed_same = parse_readings(same, retention_days=180).readings
    parsed_other = parse_readings(other, retention_days=180).readings
    assert len(parsed_same) == len(parsed_other) == 10_000

    assert apply_units(parsed_same, registered).readings is parsed_same
    converted = apply_units(parsed_other, registered)
    assert len(converted.readings) == 10_000 and converted.readings[1].value == pytest.approx(25.4)
    assert all(r.unit == "mm/s" for r in converted.readings)

    parse_s = _best(lambda: parse_readings(same, retention_days=180))
    fast_s = _best(lambda: apply_units(parsed_same, registered))
    convert_s = _best(lambda: apply_units(parsed_other, registered))
    print(f"10,000 readings: parse {parse_s * 1e3:.1f} ms, unit step {fast_s * 1e3:.2f} ms (same units), "
          f"{convert_s * 1e3:.1f} ms (converted)")  # fmt: skip
