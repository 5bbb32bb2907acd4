"""Back-test CSV: time order, time zones, --end, empty and non-finite cells, errors with their line, batches of
whole rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.backtest.frame import batches, load_frame, read_header
from core.backtest.specs import BacktestInputError, SensorPlan, zone

PLANS = [SensorPlan("A_t", "A", "temperature", "°C"), SensorPlan("A_k", "A", "kurtosis", "")]


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wide.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_sorted_naive_in_timezone_aware_kept_empty_cells_counted(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "n,time,A_t,A_k\n"
        "1,2003-10-22 12:10:00,21.5,\n"  # naive: Europe/Berlin (UTC+2 in October 2003)
        "2,2003-10-22T10:00:00Z,20.0,0.5\n"
        "3,2003-10-22 12:20:00+02:00,NaN,inf\n",
    )
    assert read_header(path) == ["n", "time", "A_t", "A_k"]
    frame = load_frame(path, time_column="time", sensors=PLANS, tz=zone("Europe/Berlin"))
    assert frame.times == [
        datetime(2003, 10, 22, 10, 0, tzinfo=UTC),
        datetime(2003, 10, 22, 10, 10, tzinfo=UTC),
        datetime(2003, 10, 22, 10, 20, tzinfo=UTC),
    ]
    assert frame.values[0].tolist() == [20.0, 0.5]
    assert frame.end == frame.times[-1] and frame.start == frame.times[0]
    assert (frame.readings, frame.empty_cells, frame.nonfinite_cells) == (3, 2, 1)
    assert frame.summary() == {
        "rows_in_file": 3,
        "rows_replayed": 3,
        "rows_after_end": 0,
        "columns": 2,
        "readings": 3,
        "empty_cells": 2,
        "nonfinite_cells": 1,
    }
    readings = [r for b in batches(frame) for r in b.readings]
    assert readings == [
        {"sensor_id": "A_t", "value": 20.0, "timestamp": "2003-10-22T10:00:00+00:00", "unit": "°C"},
        {"sensor_id": "A_k", "value": 0.5, "timestamp": "2003-10-22T10:00:00+00:00", "unit": ""},
        {"sensor_id": "A_t", "value": 21.5, "timestamp": "2003-10-22T10:10:00+00:00", "unit": "°C"},
    ]


def test_end_truncates(tmp_path: Path) -> None:
    rows = "".join(f"2003-01-01 00:{m:02d}:00,{m},{m}\n" for m in range(10))
    path = _csv(tmp_path, "time,A_t,A_k\n" + rows)
    end = datetime(2003, 1, 1, 0, 4, tzinfo=UTC)
    frame = load_frame(path, time_column="time", sensors=PLANS, tz=UTC, end=end)
    assert (frame.rows, frame.rows_after_end, frame.end) == (5, 5, end)
    with pytest.raises(BacktestInputError, match="is before the file's first timestamp"):
        load_frame(path, time_column="time", sensors=PLANS, tz=UTC, end=datetime(2002, 1, 1, tzinfo=UTC))


def test_units_omitted_when_unknown(tmp_path: Path) -> None:
    path = _csv(tmp_path, "time,flow\n2003-01-01 00:00:00,1.5\n")
    frame = load_frame(path, time_column="time", sensors=[SensorPlan("flow", "P", "flow", None)], tz=UTC)
    assert next(batches(frame)).readings == [
        {"sensor_id": "flow", "value": 1.5, "timestamp": "2003-01-01T00:00:00+00:00"}
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "2003-01-01 00:00:00,1,2\nnot a time,1,2\n",
            "line 3: cannot parse timestamp 'not a time' in column 'time'",
        ),
        ("2003-01-01 00:00:00,1,2\n,1,2\n", "line 3: empty timestamp in column 'time'"),
        (
            "2003-01-01 00:00:00,1,2\n2003-01-01 00:01:00,1,abc\n",
            "line 3, column 'A_k': not a number ('abc')",
        ),
        ("", "no data rows"),
    ],
)
def test_errors_name_their_line(tmp_path: Path, body: str, message: str) -> None:
    path = _csv(tmp_path, "time,A_t,A_k\n" + body)
    with pytest.raises(BacktestInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_frame(path, time_column="time", sensors=PLANS, tz=UTC)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(BacktestInputError, match="no such file"):
        read_header(tmp_path / "absent.csv")
    with pytest.raises(BacktestInputError, match="empty file"):
        read_header(_csv(tmp_path, ""))


def test_batches_hold_whole_rows_within_the_limit(tmp_path: Path) -> None:
    rows = "".join(f"2003-01-01 00:{m:02d}:00,{m},{'' if m % 3 == 0 else m}\n" for m in range(10))
    path = _csv(tmp_path, "time,A_t,A_k\n" + rows)
    frame = load_frame(path, time_column="time", sensors=PLANS, tz=UTC)
    assert frame.readings == 16
    cut = list(batches(frame, max_readings=5))
    # rows hold 1, 2, 2, 1, 2, 2, 1, 2, 2, 1 readings: never split, filled up to the limit
    assert [len(b.readings) for b in cut] == [5, 5, 5, 1]
    assert [(b.index, b.first_row, b.last_row) for b in cut] == [(0, 0, 2), (1, 3, 5), (2, 6, 8), (3, 9, 9)]
    flat = [(r["sensor_id"], r["timestamp"]) for b in cut for r in b.readings]
    assert flat == sorted(flat, key=lambda x: x[1]) and len(set(flat)) == 16
    assert all(math.isfinite(r["value"]) for b in cut for r in b.readings)
    with pytest.raises(BacktestInputError, match="smaller than a row"):
        list(batches(frame, max_readings=1))
    with pytest.raises(BacktestInputError, match="between 1 and 10000"):
        list(batches(frame, max_readings=10_001))
