"""Small synthetic files in the IMS and CWRU formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_ims_file(path: Path, data: np.ndarray) -> Path:
    np.savetxt(path, data, fmt="%.3f", delimiter="\t")
    return path


@pytest.fixture
def ims_run_dir(tmp_path: Path) -> Path:
    """A 4-channel IMS-format run of three files (names out of order on purpose)."""
    run = tmp_path / "2nd_test"
    run.mkdir()
    rng = np.random.default_rng(0)
    for name in ("2004.02.12.10.42.39", "2004.02.12.10.32.39", "2004.02.12.10.52.39"):
        write_ims_file(run / name, rng.normal(0, 0.1, (20_480, 4)))
    (run / "README.txt").write_text("not a recording")
    return run
