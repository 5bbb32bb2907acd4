"""Synthetic run-to-failure fleets in the C-MAPSS layout (fast, no dataset needed) and a small fitted model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.ml.rul.data import CHANNELS, COLUMNS, INFORMATIVE, SETTINGS


def synthetic_fleet(n_units: int, seed: int, *, life: tuple[int, int] = (120, 260)) -> pd.DataFrame:
    """``n_units`` trajectories: every informative channel drifts as exp(cycle / life) towards failure (sign and
    size per channel), plus noise; the other channels are constant. Each unit ends at its failure."""
    rng = np.random.default_rng(seed)
    direction = rng.choice([-1.0, 1.0], size=len(INFORMATIVE))
    parts = []
    for unit in range(1, n_units + 1):
        n = int(rng.integers(life[0], life[1] + 1))
        t = np.arange(1, n + 1)
        wear = np.expm1(3.0 * t / n) / np.expm1(3.0)
        frame = {"unit": np.full(n, unit), "cycle": t}
        frame |= {s: rng.normal(0, 0.001, n) for s in SETTINGS}
        for j, c in enumerate(CHANNELS):
            if c in INFORMATIVE:
                k = INFORMATIVE.index(c)
                frame[c] = 100.0 + 5.0 * direction[k] * wear + rng.normal(0, 0.4, n)
            else:
                frame[c] = np.full(n, 10.0 + j)
        parts.append(pd.DataFrame(frame))
    return pd.concat(parts, ignore_index=True).loc[:, list(COLUMNS)]
