"""The demo-fleet generator: shape, physics, reproducibility and fault ground truth."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.simulation import DEMO_SENSORS, FAULT_KINDS, PROFILES, floor_time, generate_demo_fleet
from core.simulation.generator import READING_COLUMNS, DemoFleet

END = datetime(2026, 11, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


@pytest.fixture(scope="module")
def fleet() -> DemoFleet:
    return generate_demo_fleet(END, seed=42)


def _series(fleet: DemoFleet, sensor_id: str) -> pd.DataFrame:
    return fleet.readings[fleet.readings["sensor_id"] == sensor_id].reset_index(drop=True)


def _fault_mask(fleet: DemoFleet, frame: pd.DataFrame, sensor_id: str) -> np.ndarray:
    mask = np.zeros(len(frame), dtype=bool)
    for fault in fleet.faults:
        if fault.sensor_id == sensor_id:
            ts = frame["timestamp"]
            mask |= ((ts >= fault.started_at) & (ts <= fault.ended_at)).to_numpy()
    return mask


def _hours(frame: pd.DataFrame) -> np.ndarray:
    ts = frame["timestamp"].dt
    return (ts.hour + ts.minute / 60).to_numpy(dtype=float)


def _residual(fleet: DemoFleet, sensor_id: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Values minus a daily sinusoid fitted on the healthy readings; also the healthy mask."""
    frame = _series(fleet, sensor_id)
    healthy = ~_fault_mask(fleet, frame, sensor_id)
    angle = 2 * np.pi * _hours(frame) / 24
    design = np.column_stack([np.ones(len(frame)), np.cos(angle), np.sin(angle)])
    values = frame["value"].to_numpy()
    coef, *_ = np.linalg.lstsq(design[healthy], values[healthy], rcond=None)
    return frame, values - design @ coef, healthy


def _fault(fleet: DemoFleet, kind: str):
    return next(f for f in fleet.faults if f.kind == kind)


# --- shape ------------------------------------------------------------------------------------------------


def test_catalogue_has_15_sensors_of_5_types_on_5_assets(fleet: DemoFleet) -> None:
    assert [s.sensor_id for s in fleet.sensors] == [f"sensor-{i:03d}" for i in range(1, 16)]
    assert Counter(s.type for s in fleet.sensors) == dict.fromkeys(PROFILES, 3)
    assert len(fleet.assets) == 5 and len({a.site for a in fleet.assets}) == 2
    assert {a.kind for a in fleet.assets} == {"pump", "compressor", "motor"}
    by_asset: dict[str, set[str]] = {}
    for s in fleet.sensors:
        assert s.unit == PROFILES[s.type].unit
        by_asset.setdefault(s.asset_name, set()).add(s.type)
    assert set(by_asset) == {a.name for a in fleet.assets}
    assert all(len(types) >= 2 for types in by_asset.values())


def test_600_readings_per_sensor_at_5_minute_spacing(fleet: DemoFleet) -> None:
    readings = fleet.readings
    assert list(readings.columns) == list(READING_COLUMNS)
    assert str(readings["timestamp"].dt.tz) == "UTC"
    assert len(readings) == 600 * 15
    assert readings.groupby("sensor_id").size().to_dict() == {s.sensor_id: 600 for s in DEMO_SENSORS}
    dropouts = {f.sensor_id: f for f in fleet.faults if f.kind == "dropout"}
    assert set(dropouts) == {"sensor-011"} and dropouts["sensor-011"].magnitude == 36
    # the timeline spans the longest series: the dropout sensor starts 36 slots earlier
    assert len(fleet.timeline) == 636 and fleet.timeline[-1] == END
    assert fleet.timeline[0] == END - 635 * STEP
    assert list(fleet.timeline) == [END - (635 - i) * STEP for i in range(636)]
    for sensor in fleet.sensors:
        frame = _series(fleet, sensor.sensor_id)
        gaps = frame["timestamp"].diff().dropna()
        assert len(frame) == 600
        if sensor.sensor_id in dropouts:
            missing = int(dropouts[sensor.sensor_id].magnitude)
            assert Counter(gaps) == {STEP: 600 - 2, STEP * (missing + 1): 1}
            assert frame["timestamp"].iloc[0] == END - (599 + missing) * STEP
        else:
            assert (gaps == STEP).all()
            assert frame["timestamp"].iloc[0] == END - 599 * STEP
        assert frame["timestamp"].iloc[-1] == END
    assert readings.equals(readings.sort_values(["sensor_id", "timestamp"], ignore_index=True))
    assert not readings.duplicated(["timestamp", "sensor_id"]).any()


def test_reproducible_with_the_seed() -> None:
    a = generate_demo_fleet(END, seed=7)
    b = generate_demo_fleet(END, seed=7)
    c = generate_demo_fleet(END, seed=8)
    pd.testing.assert_frame_equal(a.readings, b.readings)
    assert a.faults == b.faults
    assert not np.allclose(a.readings["value"], c.readings["value"])


def test_default_end_is_now_rounded_down_to_the_interval() -> None:
    before = floor_time(datetime.now(UTC))
    fleet = generate_demo_fleet(readings_per_sensor=60)
    after = floor_time(datetime.now(UTC))
    assert before <= fleet.end <= after
    assert fleet.end.minute % 5 == 0 and fleet.end.second == 0 and fleet.end.microsecond == 0
    assert floor_time(datetime(2026, 1, 1, 10, 14, 59, tzinfo=UTC)) == datetime(
        2026, 1, 1, 10, 10, tzinfo=UTC
    )


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        generate_demo_fleet(datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError):
        generate_demo_fleet(END, readings_per_sensor=10)


# --- physics ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [42, 1, 2024])
def test_healthy_values_stay_inside_the_documented_ranges(seed: int) -> None:
    fleet = generate_demo_fleet(END, seed=seed)
    for sensor in fleet.sensors:
        profile = PROFILES[sensor.type]
        frame = _series(fleet, sensor.sensor_id)
        healthy = frame["value"][~_fault_mask(fleet, frame, sensor.sensor_id)]
        assert healthy.min() >= profile.low, sensor
        assert healthy.max() <= profile.high, sensor
        assert abs(healthy.mean() - profile.baseline) <= profile.baseline_spread + 3 * profile.noise_sd, (
            sensor
        )
        assert (frame["unit"] == profile.unit).all()


def test_daily_cycle_is_present(fleet: DemoFleet) -> None:
    for sensor in fleet.sensors:
        profile = PROFILES[sensor.type]
        frame = _series(fleet, sensor.sensor_id)
        healthy = ~_fault_mask(fleet, frame, sensor.sensor_id)
        cycle = np.cos(2 * np.pi * (_hours(frame) - profile.peak_hour) / 24)
        corr = np.corrcoef(frame["value"][healthy], cycle[healthy])[0, 1]
        assert corr > 0.6, (sensor.sensor_id, corr)


def test_noise_is_autocorrelated(fleet: DemoFleet) -> None:
    for sensor in fleet.sensors:
        _, residual, healthy = _residual(fleet, sensor.sensor_id)
        r = residual[healthy]
        lag1 = np.corrcoef(r[:-1], r[1:])[0, 1]
        assert lag1 > 0.25, (sensor.sensor_id, lag1)


def test_some_readings_are_noisy_with_quality_below_one(fleet: DemoFleet) -> None:
    quality = fleet.readings["quality"]
    noisy = quality[quality < 1.0]
    assert 0.005 <= len(noisy) / len(quality) <= 0.05
    assert noisy.between(0.55, 0.9).all()
    assert (quality[quality >= 1.0] == 1.0).all()


# --- faults -----------------------------------------------------------------------------------------------


def test_every_fault_kind_and_every_sensor_type_has_a_fault(fleet: DemoFleet) -> None:
    assert {f.kind for f in fleet.faults} == set(FAULT_KINDS)
    types = {s.sensor_id: s.type for s in DEMO_SENSORS}
    assert {types[f.sensor_id] for f in fleet.faults} == set(PROFILES)
    timeline = set(fleet.timeline)
    for fault in fleet.faults:
        assert fault.started_at in timeline and fault.ended_at in timeline
        assert fault.started_at <= fault.ended_at
        assert fault.description


def test_drift_raises_the_level_towards_its_magnitude(fleet: DemoFleet) -> None:
    fault = _fault(fleet, "drift")
    frame, residual, _ = _residual(fleet, fault.sensor_id)
    ts = frame["timestamp"]
    window = (ts >= fault.started_at).to_numpy() & (ts <= fault.ended_at).to_numpy()
    n = window.sum()
    before = residual[(ts < fault.started_at).to_numpy()][-n:]
    tail = residual[window][-n // 5 :]
    assert tail.mean() - before.mean() > 0.7 * fault.magnitude
    assert np.polyfit(np.arange(n), residual[window], 1)[0] > 0
    assert fault.ended_at == fleet.end


def test_step_shifts_the_level_by_its_magnitude(fleet: DemoFleet) -> None:
    fault = _fault(fleet, "step")
    frame, residual, healthy = _residual(fleet, fault.sensor_id)
    ts = frame["timestamp"]
    window = ((ts >= fault.started_at) & (ts <= fault.ended_at)).to_numpy()
    assert residual[window].mean() - residual[healthy].mean() == pytest.approx(fault.magnitude, abs=0.25)
    after = residual[(ts > fault.ended_at).to_numpy()]
    assert abs(after.mean()) < 0.25


def test_variance_fault_multiplies_the_noise(fleet: DemoFleet) -> None:
    fault = _fault(fleet, "variance")
    frame, residual, healthy = _residual(fleet, fault.sensor_id)
    ts = frame["timestamp"]
    window = ((ts >= fault.started_at) & (ts <= fault.ended_at)).to_numpy()
    ratio = residual[window].std() / residual[healthy].std()
    assert ratio > 0.6 * fault.magnitude


def test_stuck_sensor_is_flat_at_the_recorded_value(fleet: DemoFleet) -> None:
    fault = _fault(fleet, "stuck")
    frame = _series(fleet, fault.sensor_id)
    ts = frame["timestamp"]
    window = frame[(ts >= fault.started_at) & (ts <= fault.ended_at)]
    assert len(window) == (fault.ended_at - fault.started_at) / STEP + 1
    assert window["value"].std() == pytest.approx(0.0, abs=1e-12)
    assert (window["value"] == fault.magnitude).all()
    before = frame[ts < fault.started_at]["value"].iloc[-1]
    assert before == fault.magnitude  # held at the last good value
    after = frame[ts > fault.ended_at]["value"].iloc[:12]
    assert after.std() > 0


def test_spikes_are_large_single_point_outliers(fleet: DemoFleet) -> None:
    spikes = [f for f in fleet.faults if f.kind == "spike"]
    assert len(spikes) >= 2
    for fault in spikes:
        frame, residual, healthy = _residual(fleet, fault.sensor_id)
        assert fault.started_at == fault.ended_at
        idx = int(np.flatnonzero((frame["timestamp"] == fault.started_at).to_numpy())[0])
        z = (residual[idx] - residual[healthy].mean()) / residual[healthy].std()
        assert abs(z) > 8 and np.sign(z) == np.sign(fault.magnitude)
        assert residual[idx] == pytest.approx(fault.magnitude, abs=4 * residual[healthy].std())
        neighbours = residual[[idx - 1, idx + 1]]
        assert (abs(neighbours) < abs(fault.magnitude) / 3).all()


def test_dropout_leaves_a_gap_of_the_recorded_length(fleet: DemoFleet) -> None:
    fault = _fault(fleet, "dropout")
    frame = _series(fleet, fault.sensor_id)
    ts = set(frame["timestamp"])
    missing = [t for t in fleet.timeline if fault.started_at <= t <= fault.ended_at]
    assert len(missing) == fault.magnitude
    # placed at slots 180-215 of the nominal 600-slot series, whatever the earlier start of this sensor
    assert (fault.started_at, fault.ended_at) == (END - (599 - 180) * STEP, END - (599 - 215) * STEP)
    assert not ts.intersection(missing)
    assert fault.started_at - STEP in ts and fault.ended_at + STEP in ts


def test_faults_scale_with_the_series_length() -> None:
    fleet = generate_demo_fleet(END, readings_per_sensor=120, interval=timedelta(minutes=1))
    assert {f.kind for f in fleet.faults} == set(FAULT_KINDS)
    gap = int(_fault(fleet, "dropout").magnitude)
    assert gap == round(0.06 * 120)
    assert fleet.timeline[0] == END - (119 + gap) * timedelta(minutes=1)
    assert set(fleet.readings.groupby("sensor_id").size()) == {120}
    for fault in fleet.faults:
        assert fleet.timeline[0] <= fault.started_at <= fault.ended_at <= END
