"""The pipeline end to end: a small simulated run to failure (known onset) and the real IMS excerpt."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import PROJECT_ROOT
from core.ml.vibration.alarms import AlarmConfig, alarm_stage
from core.ml.vibration.gauntlet import ims_study, run_coverage, simulation_study, split_healthy
from core.ml.vibration.indicators import wide_indicators

IMS_TEST2 = PROJECT_ROOT / ".." / "shared" / "datasets" / "ims" / "raw" / "2nd_test"


def test_split_healthy() -> None:
    assert split_healthy(list(range(40)), 0.25) == (list(range(10)), list(range(5)), list(range(5, 10)))
    assert split_healthy([0, 1], 0.2) == ([0, 1], [0], [1])
    with pytest.raises(ValueError):
        split_healthy([0], 0.2)


@pytest.mark.heavy_ml
def test_simulated_run_is_detected_after_the_onset_without_false_alarms() -> None:
    study, run = simulation_study(
        40, 24, n_samples=8192, seed=7, healthy_fraction=0.3, config=AlarmConfig(3, 3, 5)
    )
    assert study.baseline_files == list(range(12)) and study.train_files == list(range(6))
    table = study.per_bearing.set_index("indicator")
    for indicator in ("env_bpfo", "isolation_forest"):
        row = table.loc[indicator]
        assert row["detected_at_file"] is not None and row["detected_at_file"] >= 24
        assert 0 <= row["delay_files"] <= 12
        assert row["false_alarms_faulty_bearing"] == 0
    assert table["false_alarms_healthy_bearings"].sum() <= 1
    # the per-file table feeds the alarm stage directly: same result when run on it from outside
    wide = wide_indicators(study.long, ["env_bpfo"])
    again = alarm_stage(wide, wide.index.isin(study.baseline_files), study.config)
    assert again.summary.loc["b1_env_bpfo", "first_alarm"] == table.loc["env_bpfo", "detected_at_file"]
    assert run.severities[24] > 0 and run.severities[23] == 0


@pytest.mark.skipif(not IMS_TEST2.is_dir(), reason="IMS excerpt not present")
def test_ims_excerpt_pipeline_flags_the_stopped_rig_file_and_raises_no_alarm() -> None:
    study = ims_study(str(IMS_TEST2))
    assert study.metrics["files"] == 3 and study.metrics["valid_files"] == 2
    assert study.baseline_files == [0, 1] and study.train_files == [0] and study.heldout_files == [1]
    last = study.long[study.long["file_index"] == 2]
    assert not last["signal_present"].any()  # recorded after the rig stopped
    assert (last["rms"] < 0.01).all()
    assert study.per_bearing["alarm_file"].isna().all()  # nothing monitored: no confirmed alarm
    assert (study.per_bearing["monitored_files"] == 0).all()
    rate = study.metrics["isolation_forest_heldout_exceed_rate"]
    assert 0 <= rate <= 1 and not math.isnan(rate)
    coverage = run_coverage(str(IMS_TEST2))
    assert coverage["files_present"] == 3 and coverage["nominal_files_over_span"] == 984


def test_ims_study_on_a_synthetic_directory(ims_run_dir: Path) -> None:
    study = ims_study(str(ims_run_dir), healthy_fraction=0.5, config=AlarmConfig(3, 1, 1))
    assert isinstance(study.wide, pd.DataFrame) and list(study.wide.index) == [0, 1, 2]
    assert study.metrics["valid_files"] == 3 and study.baseline_files == [0, 1]
    assert set(study.per_bearing["bearing"]) == {1, 2, 3, 4}
    assert np.isfinite(study.wide.to_numpy()).all()
