"""Fixtures of the RUL tests: a synthetic fleet and a small model fitted on it (seconds), FD001 when present."""

from __future__ import annotations

import pandas as pd
import pytest

from core.ml.rul.data import default_train_path, load_cmapss
from core.ml.rul.model import RulModel
from core.ml.rul.study import RulConfig, fit_model
from tests.ml.rul.support import synthetic_fleet

SMALL = RulConfig(n_estimators=60, calibration_cuts=10, folds=3, repeats=1, n_jobs=1)


@pytest.fixture(scope="session")
def fleet() -> pd.DataFrame:
    return synthetic_fleet(40, seed=3)


@pytest.fixture(scope="session")
def small_model(fleet: pd.DataFrame) -> RulModel:
    return fit_model(fleet, list(range(1, 26)), list(range(26, 36)), SMALL, seed=0)


@pytest.fixture(scope="session")
def fd001() -> pd.DataFrame:
    path = default_train_path()
    if not path.is_file():
        pytest.skip(f"C-MAPSS FD001 absent: {path}")
    return load_cmapss(path)
