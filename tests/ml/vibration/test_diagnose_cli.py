"""``python -m apps.cli diagnose-bearing`` on synthetic CWRU .mat and IMS text files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat
from typer.testing import CliRunner

from apps.cli import app
from core.ml.vibration.simulator import simulate_signal
from tests.ml.vibration.conftest import write_ims_file

runner = CliRunner()


def _mat(tmp_path: Path, fault: str, seed: int, with_rpm: bool = True) -> Path:
    x = simulate_signal(fault, fs=12_000, rpm=1797, n_samples=24_000, severity=0.25, rng=seed)
    content = {"X130_DE_time": x[:, None], "X130_FE_time": np.zeros((24_000, 1))}
    if with_rpm:
        content["X130RPM"] = np.array([[1797]])
    path = tmp_path / f"{fault}.mat"
    savemat(path, content)
    return path


@pytest.mark.parametrize(("fault", "expected"), [("outer", "outer race"), ("inner", "inner race"),
                                                 ("ball", "ball"), ("none", "none")])  # fmt: skip
def test_cli_names_the_fault_of_a_cwru_file(tmp_path: Path, fault: str, expected: str) -> None:
    path = _mat(tmp_path, fault, seed=21)
    result = runner.invoke(
        app, ["diagnose-bearing", str(path), "--fs", "12000", "--rpm", "1797", "--bearing", "6205"]
    )
    assert result.exit_code == 0, result.output
    assert f"diagnosis: {expected}\n" in result.output
    assert "BPFO 107.4 Hz" in result.output


def test_cli_json_uses_the_file_rpm(tmp_path: Path) -> None:
    path = _mat(tmp_path, "outer", seed=22)
    result = runner.invoke(app, ["diagnose-bearing", str(path), "--fs", "12000", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["fault"] == "outer race" and payload["rpm"] == 1797
    assert payload["defect_frequencies"]["bpfi"] == pytest.approx(162.2, abs=0.1)


def test_cli_ims_text_file_and_errors(tmp_path: Path) -> None:
    x = simulate_signal("outer", fs=20_000, rpm=2000, n_samples=20_480, severity=0.3, rng=3, geometry=None)
    healthy = simulate_signal("none", fs=20_000, rpm=2000, n_samples=20_480, rng=6)
    from core.ml.vibration.bearings import REXNORD_ZA_2115

    y = simulate_signal("outer", fs=20_000, rpm=2000, geometry=REXNORD_ZA_2115, n_samples=20_480,
                        severity=0.3, rng=4)  # fmt: skip
    path = write_ims_file(tmp_path / "2004.02.12.10.32.39", np.column_stack([healthy, y, x, x]))
    args = ["diagnose-bearing", str(path), "--fs", "20000", "--rpm", "2000", "--bearing", "ZA-2115"]
    result = runner.invoke(app, [*args, "--channel", "1"])
    assert result.exit_code == 0, result.output
    assert "diagnosis: outer race" in result.output
    assert runner.invoke(app, [*args, "--channel", "9"]).exit_code == 2
    assert runner.invoke(app, [*args, "--channel", "FE"]).exit_code == 2
    first_column = runner.invoke(app, args)  # default channel: column 0, a healthy signal
    assert first_column.exit_code == 0 and "diagnosis: none\n" in first_column.output
    no_rpm = runner.invoke(
        app, ["diagnose-bearing", str(_mat(tmp_path, "inner", 5, with_rpm=False)), "--fs", "12000"]
    )
    assert no_rpm.exit_code == 2 and "--rpm is required" in no_rpm.output
    bad_fs = runner.invoke(app, ["diagnose-bearing", str(_mat(tmp_path, "inner", 5)), "--fs", "20000"])
    assert bad_fs.exit_code == 2
    missing = runner.invoke(app, ["diagnose-bearing", str(tmp_path / "nope.mat"), "--fs", "12000"])
    assert missing.exit_code == 2


def test_cli_shows_band_evidence_and_reason(tmp_path: Path) -> None:
    path = _mat(tmp_path, "inner", seed=23)
    result = runner.invoke(app, ["diagnose-bearing", str(path), "--fs", "12000"])
    assert result.exit_code == 0, result.output
    assert "band: " in result.output and ("pre-whitened signal" in result.output or "raw signal" in result.output)
    assert "candidate spectra" in result.output
    assert "sidebands" in result.output and "reason: inner race" in result.output
    assert result.output.rstrip().endswith("diagnosis: inner race")
    given = runner.invoke(app, ["diagnose-bearing", str(path), "--fs", "12000", "--band-low", "2000",
                                "--band-high", "4000", "--json"])  # fmt: skip
    payload = json.loads(given.output)
    assert payload["band"] == [2000.0, 4000.0] and payload["band_source"] == "given" and payload["reason"]


def test_cli_names_unknown_when_the_speed_is_wrong(tmp_path: Path) -> None:
    x = simulate_signal("outer", fs=12_000, rpm=1437.6, n_samples=24_000, severity=0.3, rng=1)  # 0.8 × 1797
    path = tmp_path / "slow.mat"
    savemat(path, {"X130_DE_time": x[:, None], "X130RPM": np.array([[1797]])})
    result = runner.invoke(app, ["diagnose-bearing", str(path), "--fs", "12000"])
    assert result.exit_code == 0 and "diagnosis: unknown\n" in result.output
    assert "no bearing family" in result.output


def test_diagnose_report_cli(tmp_path: Path) -> None:
    doc = tmp_path / "report.md"
    doc.write_text("no markers\n", encoding="utf-8")
    bad = runner.invoke(app, ["diagnose-report", "--cwru-dir", str(tmp_path / "absent")])
    assert bad.exit_code == 2 and "cwru dataset missing" in bad.output
    no_markers = runner.invoke(app, ["diagnose-report", "--no-cwru", "--doc", str(doc), "--heldout", "2"])
    assert no_markers.exit_code == 2 and "results markers" in no_markers.output
    run = runner.invoke(app, ["diagnose-report", "--no-cwru", "--doc", "", "--heldout", "2", "--no-development",
                              "--out", str(tmp_path / "out")])  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "held-out: 2 records" in run.output and (tmp_path / "out" / "results.json").is_file()
