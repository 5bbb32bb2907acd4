"""Shared fixtures of the AI4I tests: the real file when present (skip otherwise) and a seeded generated table."""

from __future__ import annotations

import pandas as pd
import pytest

from core.ml.ai4i.data import default_path, load_ai4i
from core.ml.ai4i.generator import generate_ai4i


@pytest.fixture(scope="session")
def real_ai4i() -> pd.DataFrame:
    if not default_path().is_file():
        pytest.skip(f"real AI4I file absent: {default_path()}")
    return load_ai4i(default_path())


@pytest.fixture(scope="session")
def generated_ai4i() -> pd.DataFrame:
    return generate_ai4i(3000, seed=7)
