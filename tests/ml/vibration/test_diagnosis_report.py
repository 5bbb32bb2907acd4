"""The diagnosis report: CWRU labels, outcome classes, confusion tables, files written, results section filled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from core.ml.vibration.diagnosis_grid import cwru_label, development_cases, heldout_cases
from core.ml.vibration.diagnosis_report import MARK_END, MARK_START, build_report, confusion, outcome, summarise
from core.ml.vibration.simulator import simulate_signal


def test_cwru_labels() -> None:
    assert cwru_label("97") is not None and cwru_label("97").fs == 48_000.0  # type: ignore[union-attr]
    label = cwru_label(131)
    assert label is not None and (label.family, label.size_in, label.load_hp, label.position, label.fs) == (
        "outer race", 0.007, 1, "6:00", 12_000.0
    )
    assert cwru_label("X3007") is not None and cwru_label("3007").family == "ball"  # type: ignore[union-attr]
    assert cwru_label("212").family == "inner race" and cwru_label("260").position == "12:00"  # type: ignore[union-attr]
    assert cwru_label("101") is None and cwru_label("104") is None


def test_outcomes_and_confusion() -> None:
    assert outcome("ball", "ball") == "correct" and outcome("ball", "unknown") == "unknown"
    assert outcome("ball", "none") == "missed" and outcome("none", "ball") == "false alarm"
    assert outcome("ball", "inner race") == "wrong family" and outcome("none", "none") == "correct"
    table = pd.DataFrame(
        {"truth": ["ball", "ball", "none", "inner race"], "answer": ["ball", "unknown", "none", "ball"]}
    )
    table["outcome"] = [outcome(t, a) for t, a in zip(table["truth"], table["answer"], strict=True)]
    matrix = confusion(table)
    assert list(matrix.index) == ["inner race", "ball", "none"]
    assert list(matrix.columns) == ["outer race", "inner race", "ball", "none", "unknown"]
    assert matrix.loc["ball", "unknown"] == 1 and matrix.loc["inner race", "ball"] == 1 and matrix.to_numpy().sum() == 4
    s = summarise(table)
    assert s["all"] == {"records": 4, "correct": 2, "unknown": 1, "missed": 0, "false_alarm": 0, "wrong_family": 1,
                        "unknown_rate": 0.25, "none_on_defect_rate": 0.0}  # fmt: skip


def test_grids_are_disjoint_and_deterministic() -> None:
    dev = development_cases()
    held = heldout_cases(40)
    assert len(dev) == 384 and {c.truth for c in dev} == {"outer race", "inner race", "ball", "none"}
    assert {c.seed for c in dev}.isdisjoint({c.seed for c in held})
    np.testing.assert_array_equal(held[3].signal(), heldout_cases(40)[3].signal())
    assert {c.fs for c in held} - {12_000.0, 48_000.0}  # sampling rates the development grid never had
    assert any(c.geometry.name == "ZA-2115" for c in held)
    first = heldout_cases(40, first_seed=10_000)  # the first held-out grid, seen during development
    assert min(c.seed for c in held) == 30_000 and {c.seed for c in held}.isdisjoint({c.seed for c in first})
    with pytest.raises(ValueError):
        heldout_cases(4, first_seed=383)  # a development seed


def test_build_report_writes_figures_tables_and_the_results_section(tmp_path: Path) -> None:
    cwru = tmp_path / "cwru"
    cwru.mkdir()
    x = simulate_signal("outer", fs=12_000, rpm=1797, n_samples=24_000, severity=0.3, rng=1)
    savemat(cwru / "130.mat", {"X130_DE_time": x[:, None], "X130RPM": np.array([[1797]])})
    savemat(cwru / "999.mat", {"X999_DE_time": x[:, None], "X999RPM": np.array([[1797]])})
    doc = tmp_path / "diagnosis.md"
    doc.write_text(f"# Report\n\nintro\n\n{MARK_START}\nold\n{MARK_END}\n\nafter\n", encoding="utf-8")
    report = build_report(cwru, tmp_path / "out", doc=doc, heldout=4, development=False, progress=False)
    assert list(report.cwru["file"]) == ["130.mat"] and report.cwru["answer"].iloc[0] == "outer race"
    assert report.skipped and "999.mat" in report.skipped[0]
    assert len(report.heldout) == 4 and report.development.empty
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"confusion.png", "detection_heldout.png", "results.json", "cwru.csv", "held-out.csv"} <= names
    assert any(n.startswith("kurtogram_ses_outer_race_130") for n in names)
    assert "seconds" not in pd.read_csv(tmp_path / "out" / "held-out.csv").columns  # no churn on re-runs
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert 0.0 <= results["held-out"]["all"]["none_on_defect_rate"] <= 1.0
    assert results["cwru"]["all"]["correct"] == 1 and results["held-out"]["all"]["records"] == 4
    text = doc.read_text(encoding="utf-8")
    assert "old" not in text and text.startswith("# Report\n\nintro") and text.rstrip().endswith("after")
    assert "| 130.mat |" in text and "### Simulator, held-out (4 records)" in text
    with pytest.raises(ValueError):
        build_report(None, tmp_path / "out2", doc=tmp_path / "out" / "cwru.csv", heldout=4, development=False,
                     progress=False)  # fmt: skip


def test_gauntlet_cwru_section_takes_each_files_rate_from_its_record_number(tmp_path: Path) -> None:
    from core.ml.vibration.report import _cwru_section

    normal = simulate_signal("none", fs=48_000, rpm=1797, n_samples=48_000, rng=2)
    outer = simulate_signal("outer", fs=12_000, rpm=1797, n_samples=24_000, severity=0.3, rng=1)
    savemat(tmp_path / "97.mat", {"X097_DE_time": normal[:, None], "X097RPM": np.array([[1797]])})
    savemat(tmp_path / "OR007@6_0.mat", {"X130_DE_time": outer[:, None], "X130RPM": np.array([[1797]])})
    savemat(tmp_path / "mystery.mat", {"X999_DE_time": outer[:, None], "X999RPM": np.array([[1797]])})
    rows, _ = _cwru_section(tmp_path, 12_000.0, None)
    got = {r["file"]: (r["fs"], r["fs_source"], r["fault"]) for r in rows}
    assert got["97.mat"] == (48_000.0, "CWRU record number", "none")  # read at 12 kHz it would be mis-scaled
    assert got["OR007@6_0.mat"] == (12_000.0, "CWRU record number", "outer race")  # number from X130 inside
    assert got["mystery.mat"][:2] == (12_000.0, "cwru_fs parameter")
