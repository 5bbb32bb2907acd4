"""Anomaly markers sit on the plotted reading (raw points and rollup buckets), not at their own stray place."""

from __future__ import annotations

import pandas as pd

from ui.components.charts import anomaly_markers, sensor_figure

T0 = pd.Timestamp("2026-11-26T10:00:00Z")


def _series(minutes: list[float], values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": [T0 + pd.Timedelta(minutes=m) for m in minutes], "value": values})


def _anomalies(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"sensor_id": s, "timestamp": (T0 + pd.Timedelta(minutes=m)).isoformat(), "value": v, "score": 7.0}
         for s, m, v in rows]
    )  # fmt: skip


def test_a_raw_reading_anomaly_is_drawn_at_that_reading() -> None:
    series = {"s1": _series([0, 5, 10, 15], [50.0, 51.0, 70.0, 52.0])}
    placed = anomaly_markers(series, _anomalies([("s1", 10, 70.0)]))
    assert (placed["x"].iloc[0], placed["y"].iloc[0]) == (T0 + pd.Timedelta(minutes=10), 70.0)


def test_in_a_rollup_the_marker_sits_on_the_bucket_that_holds_the_anomaly() -> None:
    buckets = {"s1": _series([0, 60, 120, 180], [50.0, 55.0, 53.0, 52.0])}  # hourly averages
    placed = anomaly_markers(buckets, _anomalies([("s1", 75, 90.0), ("s1", 179, 80.0)]))
    assert list(placed["x"]) == [T0 + pd.Timedelta(minutes=60), T0 + pd.Timedelta(minutes=120)]
    assert list(placed["y"]) == [55.0, 53.0]
    assert "value 90" in placed["text"].iloc[0] and "11:15:00" in placed["text"].iloc[0]  # its own figures


def test_an_anomaly_without_a_plotted_point_keeps_its_own_place() -> None:
    series = {"s1": _series([0, 5, 10], [1.0, 2.0, 3.0])}
    placed = anomaly_markers(series, _anomalies([("s1", 40, 9.0), ("s2", 5, 4.0), ("s1", -3, 8.0)]))
    own = {(x, y) for x, y in zip(placed["x"], placed["y"], strict=True)}
    assert own == {(T0 + pd.Timedelta(minutes=40), 9.0), (T0 + pd.Timedelta(minutes=5), 4.0),
                   (T0 + pd.Timedelta(minutes=-3), 8.0)}  # fmt: skip


def test_the_figure_plots_the_markers_on_the_line() -> None:
    series = {"s1": _series([0, 60, 120], [50.0, 55.0, 53.0])}
    figure = sensor_figure(series, anomalies=_anomalies([("s1", 61, 99.0)]))
    trace = next(t for t in figure.data if t.name == "anomaly")
    line = next(t for t in figure.data if t.name == "s1")
    assert list(trace.y) == [55.0] == [line.y[1]]
    assert pd.Timestamp(trace.x[0]) == pd.Timestamp(line.x[1])  # the same point of the same axis
