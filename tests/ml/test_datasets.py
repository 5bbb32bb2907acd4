"""core.ml.datasets: the CSV loaders on the committed demo files and on broken copies of them; and core.datasets:
the gauntlets' datasets folder (SM_DATASETS_DIR), the one clear error a missing dataset raises, and the
catalogue's checksums against the real published files in ../shared/datasets."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from core.config import PROJECT_ROOT
from core.ml import datasets

READINGS = PROJECT_ROOT / "data" / "sensor_data.csv"
FAULTS = PROJECT_ROOT / "data" / "sensor_data_faults.csv"


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture(scope="module")
def readings() -> pd.DataFrame:
    return datasets.load_sensor_csv()


@pytest.fixture(scope="module")
def faults() -> pd.DataFrame:
    return datasets.load_fault_labels()


def test_headers_match_the_exporter() -> None:
    from core.simulation.export import FAULTS_HEADER, READINGS_HEADER

    assert datasets.READINGS_COLUMNS == READINGS_HEADER
    assert datasets.FAULTS_COLUMNS == FAULTS_HEADER


def test_default_paths_are_the_committed_files() -> None:
    assert datasets.DEFAULT_READINGS_PATH == READINGS
    assert datasets.DEFAULT_FAULTS_PATH == FAULTS


def test_load_sensor_csv_reads_every_row_with_typed_columns(readings: pd.DataFrame) -> None:
    raw = _raw_rows(READINGS)
    assert list(readings.columns) == list(datasets.READINGS_COLUMNS)
    assert len(readings) == len(raw) == 9000
    assert readings["value"].dtype == "float64"
    assert readings["quality"].dtype == "float64"
    assert isinstance(readings["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(readings["timestamp"].dt.tz) == "UTC"
    assert readings["sensor_id"].nunique() == 15
    assert readings["sensor_type"].value_counts().to_dict() == {
        "humidity": 1800,
        "pressure": 1800,
        "temperature": 1800,
        "voltage": 1800,
        "vibration": 1800,
    }
    assert set(readings.groupby("sensor_id").size()) == {600}
    # sensor-011 starts 36 slots before the others: its dropout leaves 36 of its slots empty
    assert readings["timestamp"].min() == pd.Timestamp("2026-10-29T19:05:00Z")
    firsts = readings.groupby("sensor_id")["timestamp"].min()
    assert firsts.drop("sensor-011").eq(pd.Timestamp("2026-10-29T22:05:00Z")).all()
    assert readings["timestamp"].max() == pd.Timestamp("2026-11-01T00:00:00Z")
    # the same numbers as a plain csv parse of the file
    assert readings["value"].sum() == pytest.approx(sum(float(r["value"]) for r in raw), rel=1e-12)
    assert readings["quality"].sum() == pytest.approx(sum(float(r["quality"]) for r in raw), rel=1e-12)
    first = raw[0]
    row = readings.iloc[0]
    assert (row["sensor_id"], row["sensor_type"], row["unit"]) == (
        first["sensor_id"],
        first["sensor_type"],
        first["unit"],
    )
    assert row["timestamp"].to_pydatetime() == _utc(first["timestamp"])
    assert row["value"] == float(first["value"])


def test_load_sensor_csv_sorts_by_sensor_then_time(readings: pd.DataFrame, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled.csv"
    lines = READINGS.read_text(encoding="utf-8").splitlines(keepends=True)
    body = lines[1:]
    body = body[::7] + body[1::7] + body[2::7] + body[3::7] + body[4::7] + body[5::7] + body[6::7]
    body.reverse()
    shuffled.write_text(lines[0] + "".join(body), encoding="utf-8")

    loaded = datasets.load_sensor_csv(shuffled)

    keys = list(zip(loaded["sensor_id"], loaded["timestamp"], strict=True))
    assert keys == sorted(keys)
    assert list(loaded.index) == list(range(len(loaded)))
    pd.testing.assert_frame_equal(loaded, readings)


def test_timestamps_with_an_offset_are_converted_to_utc(tmp_path: Path) -> None:
    path = tmp_path / "offset.csv"
    path.write_text(
        "sensor_id,sensor_type,value,unit,timestamp,quality\n"
        "s-1,voltage,230.5,V,2026-10-30T01:00:00+01:00,1.0\n"
        "s-1,voltage,231,V,2026-10-30T00:05:00Z,0.8\n",
        encoding="utf-8",
    )
    loaded = datasets.load_sensor_csv(path)
    assert list(loaded["timestamp"]) == [
        pd.Timestamp("2026-10-30T00:00:00Z"),
        pd.Timestamp("2026-10-30T00:05:00Z"),
    ]
    assert list(loaded["value"]) == [230.5, 231.0]
    assert loaded["value"].dtype == "float64"


def _with_header(tmp_path: Path, header: str) -> Path:
    lines = READINGS.read_text(encoding="utf-8").splitlines(keepends=True)[:4]
    path = tmp_path / "broken.csv"
    path.write_text(header + "\n" + "".join(lines[1:]), encoding="utf-8")
    return path


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no_quality.csv"
    frame = pd.read_csv(READINGS, nrows=5).drop(columns=["quality"])
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"missing columns \['quality'\]") as info:
        datasets.load_sensor_csv(path)
    assert str(path) in str(info.value)


def test_extra_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    frame = pd.read_csv(READINGS, nrows=5).assign(asset="P-101")
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"unexpected columns \['asset'\]"):
        datasets.load_sensor_csv(path)


def test_renamed_column_is_reported_as_missing_and_unexpected(tmp_path: Path) -> None:
    path = _with_header(tmp_path, "sensor_id,sensor_type,reading,unit,timestamp,quality")
    with pytest.raises(ValueError, match=r"missing columns \['value'\].*unexpected columns \['reading'\]"):
        datasets.load_sensor_csv(path)


def test_reordered_header_is_rejected(tmp_path: Path) -> None:
    path = _with_header(tmp_path, "sensor_id,sensor_type,unit,value,timestamp,quality")
    with pytest.raises(ValueError, match="out of order"):
        datasets.load_sensor_csv(path)


def test_bad_values_name_their_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "sensor_id,sensor_type,value,unit,timestamp,quality\ns-1,voltage,high,V,2026-10-30T00:05:00Z,1.0\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="'value'"):
        datasets.load_sensor_csv(path)
    path.write_text(
        "sensor_id,sensor_type,value,unit,timestamp,quality\ns-1,voltage,230,V,yesterday,1.0\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="'timestamp'"):
        datasets.load_sensor_csv(path)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        datasets.load_sensor_csv(tmp_path / "nope.csv")


def test_load_fault_labels(faults: pd.DataFrame) -> None:
    raw = _raw_rows(FAULTS)
    assert list(faults.columns) == list(datasets.FAULTS_COLUMNS)
    assert len(faults) == len(raw) == 8
    assert faults["kind"].value_counts().to_dict() == {
        "spike": 3,
        "drift": 1,
        "variance": 1,
        "step": 1,
        "stuck": 1,
        "dropout": 1,
    }
    assert faults["magnitude"].dtype == "float64"
    for column in ("started_at", "ended_at"):
        assert isinstance(faults[column].dtype, pd.DatetimeTZDtype)
    assert (faults["started_at"] <= faults["ended_at"]).all()
    dropout = faults.loc[faults["kind"] == "dropout"].iloc[0]
    assert dropout["sensor_id"] == "sensor-011"
    assert dropout["started_at"] == pd.Timestamp("2026-10-30T13:05:00Z")
    assert dropout["ended_at"] == pd.Timestamp("2026-10-30T16:00:00Z")
    assert dropout["magnitude"] == 36.0


def test_fault_labels_header_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "faults.csv"
    path.write_text("sensor_id,kind,started_at,ended_at,magnitude\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing columns \['description'\]"):
        datasets.load_fault_labels(path)


def test_fault_mask_matches_an_independent_labelling(readings: pd.DataFrame, faults: pd.DataFrame) -> None:
    windows = {}
    for row in _raw_rows(FAULTS):
        windows.setdefault(row["sensor_id"], []).append((_utc(row["started_at"]), _utc(row["ended_at"])))
    expected = [
        any(lo <= ts <= hi for lo, hi in windows.get(sensor, []))
        for sensor, ts in zip(readings["sensor_id"], readings["timestamp"].dt.to_pydatetime(), strict=True)
    ]
    mask = datasets.fault_mask(readings, faults)
    assert mask.tolist() == expected
    # drift 150 + variance 120 + step 96 + stuck 72 + three spikes; the dropout window has no readings
    assert int(mask.sum()) == 441
    assert not datasets.fault_mask(readings, None).any()


# --- the database: readings by sensors and time range, work-order labels -------------------------------------
async def _seed_db(settings) -> tuple[list[str], datetime]:  # type: ignore[no-untyped-def]
    from tests.support.maintenance import connect, make_alert, make_plant

    async with connect(settings) as conn:
        plant = await make_plant(conn, sensors=2)
        start = datetime(2026, 10, 30, tzinfo=UTC)
        rows = [
            (start + pd.Timedelta(minutes=5 * i).to_pytimedelta(), sensor, float(i) + 100 * k, "mm/s", 1.0)
            for k, sensor in enumerate(plant.sensor_ids)
            for i in range(12)
        ]
        await conn.executemany(
            "INSERT INTO sensor_readings (timestamp, sensor_id, value, unit, quality) VALUES ($1, $2, $3, $4, $5)",
            rows,
        )
        alert = await make_alert(conn, plant.sensor_ids[0], opened_at=start)
        for outcome, alert_id in (("fault_confirmed", alert.alert_id), ("no_fault_found", None)):
            task_id = await conn.fetchval(
                "INSERT INTO maintenance_tasks (asset_id, sensor_id, alert_id, title, status) "
                "VALUES ($1, $2, $3, 'check', 'done') RETURNING id",
                plant.asset_id,
                plant.sensor_ids[0],
                alert_id,
            )
            await conn.execute(
                "INSERT INTO maintenance_logs (task_id, completed_at, outcome, technician) VALUES ($1, $2, $3, 'ann')",
                task_id,
                start + pd.Timedelta(hours=2 if outcome == "fault_confirmed" else 3).to_pytimedelta(),
                outcome,
            )
    return plant.sensor_ids, start


def test_readings_and_labels_from_the_database(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    sensor_ids, start = asyncio.run(_seed_db(settings))

    frame = datasets.load_readings_from_db(
        sensor_ids=sensor_ids,
        start=start + pd.Timedelta(minutes=10).to_pytimedelta(),
        end=start + pd.Timedelta(minutes=30).to_pytimedelta(),
        settings=settings,
    )
    assert list(frame.columns) == list(datasets.READINGS_COLUMNS)
    assert frame["sensor_id"].tolist() == [sensor_ids[0]] * 4 + [sensor_ids[1]] * 4  # end is exclusive
    assert frame["value"].tolist() == [2.0, 3.0, 4.0, 5.0, 102.0, 103.0, 104.0, 105.0]
    assert set(frame["sensor_type"]) == {"vibration"}
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["timestamp"].iloc[0] == pd.Timestamp(start) + pd.Timedelta(minutes=10)
    only_one = datasets.load_readings_from_db(sensor_ids=sensor_ids[1:], settings=settings, limit=5)
    assert only_one["sensor_id"].eq(sensor_ids[1]).all() and len(only_one) == 5

    async def inside_a_running_loop() -> pd.DataFrame:  # as in Jupyter / papermill
        return datasets.load_readings_from_db(sensor_ids=sensor_ids[:1], settings=settings)

    assert len(asyncio.run(inside_a_running_loop())) == 12

    labels = datasets.load_work_order_labels(sensor_id=sensor_ids[0], settings=settings)
    assert labels["outcome"].tolist() == ["fault_confirmed", "no_fault_found"]  # oldest completion first
    assert labels["alert_opened_at"].iloc[0] == pd.Timestamp(start)
    assert pd.isna(labels["alert_id"].iloc[1])
    assert str(labels["completed_at"].dt.tz) == "UTC"

    # the CSV of `apps.cli export-labels` reads back to the same frame
    from core.maintenance.schemas import LABEL_CSV_COLUMNS

    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False, columns=list(LABEL_CSV_COLUMNS))
    again = datasets.load_labels_csv(path)
    assert again["outcome"].tolist() == labels["outcome"].tolist()
    assert again["completed_at"].tolist() == labels["completed_at"].tolist()


# --- core.datasets: the gauntlets' datasets folder and catalogue ----------------------------------------------

SHARED_DATASETS = (PROJECT_ROOT.parent / "shared" / "datasets").resolve()


@pytest.fixture
def empty_datasets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """SM_DATASETS_DIR pointing at an empty folder for one test (the settings cache is rebuilt around it)."""
    from core.config import get_settings

    folder = tmp_path / "datasets"
    folder.mkdir()
    monkeypatch.setenv("SM_DATASETS_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason="../shared/datasets not present")
def test_the_catalogue_checksums_are_those_of_the_published_files() -> None:
    import hashlib

    from core.datasets import DATASETS

    checked = 0
    for dataset in DATASETS.values():
        for relative, expected in dataset.verified_files().items():
            assert hashlib.sha256((SHARED_DATASETS / relative).read_bytes()).hexdigest() == expected, relative
            checked += 1
    assert checked == 1 + 6 + 10 + 2  # ai4i, IMS (5 raw + features), CWRU, C-MAPSS; MIMII has none
    assert set(DATASETS) == {"ai4i2020", "ims", "cwru", "cmapss", "mimii"}
    assert all(d.licence and d.citation and d.verification for d in DATASETS.values())


def test_the_default_folder_is_sm_datasets_dir_and_relative_values_are_under_the_project_root() -> None:
    from core.config import load_settings
    from core.datasets import dataset_path, datasets_root

    assert load_settings(datasets_dir=Path(".data/datasets")).datasets_dir == Path(".data/datasets")
    assert datasets_root(load_settings(datasets_dir=Path("x/y"))) == PROJECT_ROOT / "x" / "y"
    assert dataset_path("ai4i2020/ai4i2020.csv", load_settings(datasets_dir=Path("/srv/d"))) == Path(
        "/srv/d/ai4i2020/ai4i2020.csv"
    )


def test_a_missing_default_file_names_the_file_the_folder_and_the_command(empty_datasets_dir: Path) -> None:
    from core.datasets import DatasetMissingError
    from core.ml.ai4i.data import default_path, load_ai4i

    assert default_path() == empty_datasets_dir / "ai4i2020" / "ai4i2020.csv"
    with pytest.raises(DatasetMissingError) as raised:
        load_ai4i()
    message = str(raised.value)
    assert message == (
        f"ai4i2020 dataset missing: expected the file 'ai4i2020.csv' in the datasets folder {empty_datasets_dir} "
        f"(SM_DATASETS_DIR), at {empty_datasets_dir / 'ai4i2020' / 'ai4i2020.csv'}. Download it with "
        "`make datasets DATASETS=ai4i2020` (python -m apps.cli datasets --only ai4i2020), or set SM_DATASETS_DIR "
        "to a folder that holds it."
    )
    assert isinstance(raised.value, FileNotFoundError)


def test_an_explicit_missing_path_says_it_was_given_explicitly(
    empty_datasets_dir: Path, tmp_path: Path
) -> None:
    from core.datasets import DatasetMissingError
    from core.ml.ai4i.data import load_ai4i

    with pytest.raises(
        DatasetMissingError, match=r"in .*elsewhere \(a path given explicitly; the datasets folder"
    ):
        load_ai4i(tmp_path / "elsewhere" / "ai4i2020.csv")


def test_vibration_paths_are_checked_before_any_work(empty_datasets_dir: Path, tmp_path: Path) -> None:
    from core.datasets import DatasetMissingError
    from core.ml.vibration.report import resolve_data_paths

    with pytest.raises(
        DatasetMissingError, match=r"folder 'raw' in the datasets folder .*make datasets DATASETS=ims"
    ):
        resolve_data_paths(None, None)
    (empty_datasets_dir / "ims" / "raw").mkdir(parents=True)  # present but without recordings
    with pytest.raises(DatasetMissingError, match=r"IMS recordings .*'2nd_test'"):
        resolve_data_paths(None, None)
    assert resolve_data_paths("", None) == (None, None)  # "": no IMS section
    with pytest.raises(DatasetMissingError, match=r"CWRU \.mat file or folder .*make datasets DATASETS=cwru"):
        resolve_data_paths("", str(tmp_path / "no-cwru"))
    if SHARED_DATASETS.is_dir():
        ims, cwru = resolve_data_paths(
            str(SHARED_DATASETS / "ims" / "raw"), str(SHARED_DATASETS / "cwru" / "12k_DE_0hp")
        )
        assert ims == SHARED_DATASETS / "ims" / "raw" and cwru == SHARED_DATASETS / "cwru" / "12k_DE_0hp"


def test_audio_path_needs_clips(empty_datasets_dir: Path) -> None:
    from core.datasets import DatasetMissingError
    from core.ml.audio.gauntlet import resolve_data_path

    with pytest.raises(DatasetMissingError, match=r"folder 'mimii' in the datasets folder .*DATASETS=mimii"):
        resolve_data_path(None)
    (empty_datasets_dir / "mimii" / "id_00").mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match=r"folder of \.wav clips 'id_00'"):
        resolve_data_path(None)
    if SHARED_DATASETS.is_dir():
        assert resolve_data_path(SHARED_DATASETS / "mimii") == SHARED_DATASETS / "mimii"
