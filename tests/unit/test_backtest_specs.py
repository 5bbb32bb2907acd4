"""Back-test specs: column selection, asset pattern, sensor-type specs (first match wins), time zones, --end."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from core.backtest.specs import (
    BacktestInputError,
    SensorPlan,
    asset_regex,
    compile_regex,
    parse_end,
    parse_timestamp,
    parse_type_spec,
    plan_sensors,
    select_columns,
    unknown_types,
    zone,
)

IMS_HEADER = ["file_index", "timestamp", "filename"] + [
    f"Bearing{b}_ch{c}_{f}" for b in (1, 2, 3, 4) for c in (1, 2) for f in ("rms", "mean", "kurt")
]


def test_ims_acceptance_specs_plan_sixteen_sensors() -> None:
    columns = select_columns(IMS_HEADER, compile_regex("_(rms|kurt)$", "--columns"), "timestamp")
    assert len(columns) == 16 and columns[:2] == ["Bearing1_ch1_rms", "Bearing1_ch1_kurt"]
    specs = [parse_type_spec("_rms$=acceleration:g"), parse_type_spec("_kurt$=kurtosis")]
    plans = plan_sensors(columns, asset_regex(r"(Bearing\d)"), specs)
    assert plans[0] == SensorPlan("Bearing1_ch1_rms", "Bearing1", "acceleration", "g")
    assert plans[1] == SensorPlan("Bearing1_ch1_kurt", "Bearing1", "kurtosis", "")  # canonical: dimensionless
    assert {p.asset for p in plans} == {"Bearing1", "Bearing2", "Bearing3", "Bearing4"}


def test_type_spec_forms() -> None:
    every = parse_type_spec("temperature")
    assert (every.pattern, every.type, every.unit) == (None, "temperature", "°C")  # canonical unit
    assert parse_type_spec("temperature:K").unit == "K"
    assert parse_type_spec("kurtosis:").unit == ""  # explicit dimensionless
    assert parse_type_spec("flow").unit is None  # unknown type, no unit given
    lookahead = parse_type_spec("^(?=T)x=pressure:bar")  # the last '=' separates
    assert lookahead.pattern is not None and lookahead.pattern.pattern == "^(?=T)x"
    assert (lookahead.type, lookahead.unit) == ("pressure", "bar")
    assert unknown_types(["temperature", "flow", "flow"]) == ["flow"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no type"),
        ("=temperature", "empty PATTERN"),
        ("_x$=", "no type"),
        ("([=temperature", "invalid regular expression"),
        ("x" * 65, "longer than 64"),
        ("t:" + "u" * 33, "longer than 32"),
    ],
)
def test_bad_type_specs(spec: str, message: str) -> None:
    with pytest.raises(BacktestInputError, match=re.escape(message)):
        parse_type_spec(spec)


def test_first_matching_spec_wins_and_a_bare_spec_is_the_default() -> None:
    specs = [parse_type_spec("_t$=temperature"), parse_type_spec("vibration")]
    plans = plan_sensors(["A_t", "A_v", "B_t"], asset_regex("^([AB])_"), specs)
    assert [(p.sensor_id, p.asset, p.type) for p in plans] == [
        ("A_t", "A", "temperature"),
        ("A_v", "A", "vibration"),
        ("B_t", "B", "temperature"),
    ]


def test_plan_errors_name_the_columns_and_specs() -> None:
    assets = asset_regex(r"(Bearing\d)")
    with pytest.raises(BacktestInputError, match=r"names no asset for 1 selected column\(s\): other_rms"):
        plan_sensors(["Bearing1_rms", "other_rms"], assets, [parse_type_spec("acceleration")])
    with pytest.raises(BacktestInputError, match=r"no spec matches 1 selected column\(s\): Bearing1_kurt"):
        plan_sensors(["Bearing1_rms", "Bearing1_kurt"], assets, [parse_type_spec("_rms$=acceleration")])
    with pytest.raises(BacktestInputError, match=r"'_std\$=acceleration' matches no selected column"):
        plan_sensors(
            ["Bearing1_rms"], assets, [parse_type_spec("acceleration"), parse_type_spec("_std$=acceleration")]
        )
    with pytest.raises(BacktestInputError, match="first match wins"):
        plan_sensors(
            ["Bearing1_rms"], assets, [parse_type_spec("acceleration"), parse_type_spec("_rms$=kurtosis")]
        )
    with pytest.raises(BacktestInputError, match="--sensor-type is required"):
        plan_sensors(["Bearing1_rms"], assets, [])
    with pytest.raises(BacktestInputError, match="without whitespace: 'Bearing1 rms'"):
        plan_sensors(["Bearing1 rms"], assets, [parse_type_spec("acceleration")])


def test_column_selection() -> None:
    header = ["timestamp", "a_rms", "b_rms", "rms_count"]
    assert select_columns(header, re.compile("_rms$"), "timestamp") == ["a_rms", "b_rms"]
    assert select_columns(header, re.compile("."), "timestamp") == ["a_rms", "b_rms", "rms_count"]
    with pytest.raises(BacktestInputError, match="--time-column 'time' is not a column"):
        select_columns(header, re.compile("_rms$"), "time")
    with pytest.raises(BacktestInputError, match=r"--columns '_kurt\$' matches no column \(columns: a_rms"):
        select_columns(header, re.compile("_kurt$"), "timestamp")


def test_regex_errors() -> None:
    with pytest.raises(BacktestInputError, match=r"--columns: invalid regular expression '\(rms'"):
        compile_regex("(rms", "--columns")
    with pytest.raises(BacktestInputError, match="has no group"):
        asset_regex(r"Bearing\d")


def test_time_zones_and_timestamps() -> None:
    berlin = zone("Europe/Berlin")
    assert parse_timestamp("2003-10-22 12:06:24", berlin) == datetime(2003, 10, 22, 10, 6, 24, tzinfo=UTC)
    assert parse_timestamp("2003-10-22T12:06:24Z", berlin) == datetime(2003, 10, 22, 12, 6, 24, tzinfo=UTC)
    assert parse_timestamp("2003-10-22 12:06:24-05:00", berlin) == datetime(
        2003, 10, 22, 17, 6, 24, tzinfo=UTC
    )
    assert parse_end("2003-11-01", zone("UTC")) == datetime(2003, 11, 1, tzinfo=UTC)
    with pytest.raises(BacktestInputError, match="--timezone 'Mars/Olympus': unknown time zone"):
        zone("Mars/Olympus")
    with pytest.raises(BacktestInputError, match="--end 'yesterday': not an ISO 8601 timestamp"):
        parse_end("yesterday", berlin)
