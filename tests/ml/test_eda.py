"""core.ml.eda (analysis, plots, tracking): summary numbers against independent pandas/numpy computations on the
committed demo data, gap detection against the injected dropout, figures and the one MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from core.ml import datasets
from core.ml.eda import analysis as eda
from core.ml.eda import plots as eda_plots
from core.ml.eda import tracking as eda_tracking

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 100_000


@pytest.fixture(scope="module")
def readings() -> pd.DataFrame:
    return datasets.load_sensor_csv()


@pytest.fixture(scope="module")
def faults() -> pd.DataFrame:
    return datasets.load_fault_labels()


@pytest.fixture(scope="module")
def summary(readings: pd.DataFrame, faults: pd.DataFrame) -> eda.EdaSummary:
    return eda.summarize(readings, faults)


@pytest.fixture(scope="module")
def figures(readings: pd.DataFrame, faults: pd.DataFrame, summary: eda.EdaSummary) -> dict[str, Figure]:
    return eda_plots.build_figures(readings, faults, summary.daily_profile)


def _stats(values: np.ndarray, quality: np.ndarray) -> dict[str, float]:
    return {
        "count": len(values),
        "mean": values.sum() / len(values),
        "std": np.std(values, ddof=1),
        "min": values.min(),
        "max": values.max(),
        "p01": np.percentile(values, 1),
        "p99": np.percentile(values, 99),
        "mean_quality": quality.mean(),
        "low_quality_share": np.count_nonzero(quality < 1.0) / len(quality),
    }


# --- tables ---------------------------------------------------------------------------------------------------


def test_sensor_summary_matches_independent_numbers(readings: pd.DataFrame, summary: eda.EdaSummary) -> None:
    table = summary.sensors
    assert list(table.index) == [f"sensor-{i:03d}" for i in range(1, 16)]
    # every sensor has 600 readings; sensor-011 starts 36 slots earlier because of its dropout gap
    first = {s: pd.Timestamp("2026-10-29T22:05:00Z") for s in table.index}
    first["sensor-011"] = pd.Timestamp("2026-10-29T19:05:00Z")
    for sensor_id, row in table.iterrows():
        own = readings[readings["sensor_id"] == sensor_id]
        expected = _stats(own["value"].to_numpy(), own["quality"].to_numpy())
        for column, value in expected.items():
            assert row[column] == pytest.approx(value, rel=1e-9), (sensor_id, column)
        assert row["sensor_type"] == own["sensor_type"].iloc[0]
        assert row["unit"] == own["unit"].iloc[0]
        assert row["count"] == 600
        grid = pd.date_range(first[sensor_id], "2026-11-01T00:00:00Z", freq="5min")
        assert row["expected"] == len(grid) == (636 if sensor_id == "sensor-011" else 600)
        assert row["missing"] == len(set(grid) - set(own["timestamp"]))
        assert row["first"] == own["timestamp"].min()
        assert row["last"] == own["timestamp"].max()
    assert table.loc["sensor-011", "missing"] == 36
    assert table.loc["sensor-011", "gaps"] == 1
    assert table.drop(index="sensor-011")[["missing", "gaps"]].eq(0).all().all()


def test_type_summary_matches_independent_numbers(readings: pd.DataFrame, summary: eda.EdaSummary) -> None:
    table = summary.types
    assert list(table.index) == ["humidity", "pressure", "temperature", "vibration", "voltage"]
    for sensor_type, row in table.iterrows():
        own = readings[readings["sensor_type"] == sensor_type]
        expected = _stats(own["value"].to_numpy(), own["quality"].to_numpy())
        for column, value in expected.items():
            assert row[column] == pytest.approx(value, rel=1e-9), (sensor_type, column)
        assert row["sensors"] == 3
        assert row["count"] == 1800
        assert row["expected"] == (1836 if sensor_type == "vibration" else 1800)
    assert table["missing"].to_dict() == {
        "humidity": 0,
        "pressure": 0,
        "temperature": 0,
        "vibration": 36,
        "voltage": 0,
    }
    assert table.loc["vibration", "gaps"] == 1


def test_gap_detection_finds_the_injected_dropout(summary: eda.EdaSummary, faults: pd.DataFrame) -> None:
    dropout = faults[faults["kind"] == "dropout"].iloc[0]
    gaps = summary.gaps
    assert len(gaps) == 1
    gap = gaps.iloc[0]
    assert gap["sensor_id"] == dropout["sensor_id"] == "sensor-011"
    assert gap["sensor_type"] == "vibration"
    assert gap["gap_start"] == dropout["started_at"]
    assert gap["gap_end"] == dropout["ended_at"]
    assert gap["missing"] == dropout["magnitude"] == 36

    matched = summary.dropouts
    assert len(matched) == 1
    assert bool(matched.iloc[0]["recovered"])


def test_find_gaps_edges_jitter_and_cadence() -> None:
    grid = pd.date_range("2026-01-01T00:00:00Z", periods=12, freq="5min")
    rows = [("a", "voltage", t) for t in grid]  # complete: sets the expected range
    kept_b = [t for i, t in enumerate(grid) if i not in {0, 1, 5, 11}]  # edges and one inner slot missing
    rows += [("b", "voltage", t) for t in kept_b]
    # sensor c: readings up to two minutes off their slot (jitter, not a gap); the last slot is missing
    rows += [("c", "pressure", t + pd.Timedelta(minutes=(-2, 1, 2)[i % 3])) for i, t in enumerate(grid[:-1])]
    frame = pd.DataFrame(rows, columns=["sensor_id", "sensor_type", "timestamp"]).assign(
        value=1.0, unit="V", quality=1.0
    )[list(datasets.READINGS_COLUMNS)]

    gaps = eda.find_gaps(frame)

    found = [(r.sensor_id, r.gap_start, r.gap_end, r.missing) for r in gaps.itertuples()]
    assert found == [
        ("b", grid[0], grid[1], 2),
        ("b", grid[5], grid[5], 1),
        ("b", grid[11], grid[11], 1),
        ("c", grid[-1], grid[-1], 1),
    ]
    # counted from each sensor's first reading, b's late start is not a gap; its inner and last slots still are
    since_first = eda.find_gaps(frame, since_first=True)
    found = [(r.sensor_id, r.gap_start, r.gap_end, r.missing) for r in since_first.itertuples()]
    assert found == [
        ("b", grid[5], grid[5], 1),
        ("b", grid[11], grid[11], 1),
        ("c", grid[-1], grid[-1], 1),
    ]
    expected = eda.sensor_summary(frame, gaps=since_first, since_first=True)["expected"].to_dict()
    assert expected == {"a": 12, "b": 10, "c": 12}
    assert eda.sensor_summary(frame)["expected"].to_dict() == {"a": 12, "b": 12, "c": 12}
    # a coarser cadence sees no gaps in a complete sensor
    coarse = eda.find_gaps(frame[frame["sensor_id"] == "a"], "10min")
    assert coarse.empty
    assert list(coarse.columns) == ["sensor_id", "sensor_type", "gap_start", "gap_end", "missing"]


def test_daily_profile_matches_independent_groupby(
    readings: pd.DataFrame, faults: pd.DataFrame, summary: eda.EdaSummary
) -> None:
    merged = readings.reset_index().merge(faults[["sensor_id", "started_at", "ended_at"]], on="sensor_id")
    inside = merged[
        (merged["timestamp"] >= merged["started_at"]) & (merged["timestamp"] <= merged["ended_at"])
    ]
    healthy = readings.drop(index=inside["index"].unique())
    assert len(healthy) == len(readings) - 441

    profile = summary.daily_profile
    assert list(profile.index) == list(range(24))
    assert list(profile.columns) == ["humidity", "pressure", "temperature", "vibration", "voltage"]
    for sensor_type in profile.columns:
        own = healthy[healthy["sensor_type"] == sensor_type]
        for hour in (0, 4, 14, 23):
            values = own.loc[own["timestamp"].dt.hour == hour, "value"].to_numpy()
            assert profile.loc[hour, sensor_type] == pytest.approx(values.mean(), rel=1e-9)
    # without faults every reading counts
    everything = eda.daily_profile(readings)
    values = readings.loc[
        (readings["sensor_type"] == "temperature") & (readings["timestamp"].dt.hour == 20), "value"
    ].to_numpy()
    assert everything.loc[20, "temperature"] == pytest.approx(values.mean(), rel=1e-9)
    # the demo fleet's documented peaks: temperature in the afternoon, pressure at night
    assert 12 <= profile["temperature"].idxmax() <= 17
    assert 0 <= profile["pressure"].idxmax() <= 6


def test_overview(readings: pd.DataFrame, summary: eda.EdaSummary) -> None:
    overview = summary.overview
    assert overview["rows"] == len(readings) == 9000
    assert overview["sensors"] == 15
    assert overview["sensor_types"] == 5
    assert overview["expected_readings"] == 9036  # sensor-011 spans 636 slots, the others 600
    assert overview["missing_readings"] == 36
    assert overview["gap_count"] == 1
    assert overview["duplicate_readings"] == 0
    assert overview["null_values"] == 0
    assert overview["mean_quality"] == pytest.approx(readings["quality"].to_numpy().mean())
    assert overview["low_quality_share"] == pytest.approx((readings["quality"].to_numpy() < 1).mean())
    assert overview["fault_windows"] == 8
    assert overview["fault_readings"] == 441
    assert overview["dropout_faults"] == overview["dropout_faults_recovered"] == 1
    metrics = summary.metrics()
    assert "start" not in metrics
    assert metrics["gap_count"] == 1.0
    assert json.loads(json.dumps(summary.to_dict()))["overview"]["start"] == "2026-10-29T19:05:00Z"


def test_summaries_reject_frames_without_the_reading_columns(readings: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"missing columns \['quality'\]"):
        eda.summarize(readings.drop(columns=["quality"]))
    naive = readings.assign(timestamp=readings["timestamp"].dt.tz_localize(None))
    with pytest.raises(TypeError, match="timezone-aware"):
        eda.find_gaps(naive)


# --- figures --------------------------------------------------------------------------------------------------


def test_build_figures(figures: dict[str, Figure], faults: pd.DataFrame) -> None:
    assert list(figures) == [
        "timeseries_humidity",
        "timeseries_pressure",
        "timeseries_temperature",
        "timeseries_vibration",
        "timeseries_voltage",
        "daily_profiles",
        "value_distributions",
    ]
    assert all(isinstance(fig, Figure) for fig in figures.values())
    vibration = figures["timeseries_vibration"].axes
    assert [ax.get_ylabel().split("\n")[0] for ax in vibration] == ["sensor-002", "sensor-008", "sensor-011"]
    # one shaded span per injected fault of the panel's sensor
    for fig in [f for name, f in figures.items() if name.startswith("timeseries_")]:
        for ax in fig.axes:
            sensor_id = ax.get_ylabel().split("\n")[0]
            assert len(ax.patches) == int((faults["sensor_id"] == sensor_id).sum()), sensor_id
    # the dropout breaks sensor-011's line: 36 NaN slots
    line = vibration[2].lines[0]
    assert int(np.isnan(np.asarray(line.get_ydata(), dtype=float)).sum()) == 36
    assert len(figures["daily_profiles"].get_axes()) >= 5


def test_plot_sensor_type_rejects_an_unknown_type(readings: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no readings"):
        eda_plots.plot_sensor_type(readings, "flow")


def test_save_figures_writes_small_pngs(figures: dict[str, Figure], tmp_path: Path) -> None:
    paths = eda_plots.save_figures(figures, tmp_path / "nested" / "eda")
    assert [p.name for p in paths] == [f"{name}.png" for name in figures]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) < MAX_PNG_BYTES, (path.name, len(data))
        width = int.from_bytes(data[16:20], "big")
        assert width == 1000  # 10 in at 100 dpi


def test_committed_figures_are_small_pngs() -> None:
    folder = datasets.DEFAULT_READINGS_PATH.parent.parent / "docs" / "ml" / "eda"
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == sorted(
        [f"timeseries_{t}.png" for t in ("humidity", "pressure", "temperature", "vibration", "voltage")]
        + ["daily_profiles.png", "value_distributions.png"]
    )
    for path in folder.glob("*.png"):
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        assert path.stat().st_size < MAX_PNG_BYTES


# --- MLflow ---------------------------------------------------------------------------------------------------


def test_default_artifact_location() -> None:
    assert eda_tracking.default_artifact_location("sqlite:////tmp/x/mlflow.db") == "file:///tmp/x/mlartifacts"
    assert eda_tracking.default_artifact_location("http://127.0.0.1:5000") is None
    assert eda_tracking.default_artifact_location("sqlite:///:memory:") is None


@pytest.mark.slow
def test_log_eda_run_logs_one_finished_run(
    summary: eda.EdaSummary, figures: dict[str, Figure], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = eda_tracking.dataset_params(datasets.DEFAULT_READINGS_PATH, datasets.DEFAULT_FAULTS_PATH)

    run_id = eda_tracking.log_eda_run(summary, figures, params, uri, experiment="eda-test")

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("eda-test")
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "eda-sensor_data"
    assert run.data.params["rows"] == "9000"
    assert run.data.params["sensors"] == "15"
    assert run.data.params["data_path"] == str(datasets.DEFAULT_READINGS_PATH)
    assert len(run.data.params["data_sha256"]) == 64
    assert run.data.metrics["gap_count"] == 1.0
    assert run.data.metrics["missing_readings"] == 36.0
    assert run.data.metrics["mean_quality"] == pytest.approx(summary.overview["mean_quality"])
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert plots == {f"plots/{name}.png" for name in figures}
    tables = {a.path for a in client.list_artifacts(run_id, "summary")}
    assert {"summary/sensors.csv", "summary/types.csv", "summary/gaps.csv", "summary/summary.json"} <= tables
    local = Path(client.download_artifacts(run_id, "summary/summary.json", str(tmp_path / "dl")))
    logged = json.loads(local.read_text(encoding="utf-8"))
    assert logged["overview"]["rows"] == 9000
    assert logged["gaps"][0]["gap_start"] == "2026-10-30T13:05:00Z"

    # a run whose logging fails ends FAILED and is not reported as finished
    with pytest.raises(FileNotFoundError):
        eda_tracking.log_eda_run(summary, [tmp_path / "missing.png"], params, uri, experiment="eda-test")
    statuses = sorted(r.info.status for r in client.search_runs([experiment.experiment_id]))
    assert statuses == ["FAILED", "FINISHED"]
