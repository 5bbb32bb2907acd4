"""Alarm stage over a per-file table of health indicators (computed here or anywhere else).

Input: a DataFrame with one row per recording in time order and one numeric column per indicator (e.g.
``b1_rms``, ``b1_isolation_forest``). The baseline rows (the healthy start of the run) give each column's mean μ
and standard deviation σ (ddof=1); a monitored row *exceeds* when its value is above μ + k·σ (``direction="up"``;
below μ − k·σ for "down", |z| > k for "both"). An alarm is *confirmed* at the first row where at least n of the
last m monitored rows exceed; it stays raised while that holds, and a new alarm episode starts only after it
cleared. Rows marked invalid (``valid`` False, e.g. a recording taken after the rig stopped) are skipped: they
neither exceed nor count in the m-window. Baseline rows are not monitored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from numpy.typing import NDArray


@dataclass(frozen=True)
class AlarmConfig:
    k: float = 3.0
    n: int = 3
    m: int = 5
    direction: str = "up"  # "up" | "down" | "both"

    def __post_init__(self) -> None:
        if not 1 <= self.n <= self.m:
            raise ValueError(f"need 1 <= n <= m, got n={self.n}, m={self.m}")
        if self.direction not in ("up", "down", "both"):
            raise ValueError(f"direction must be up, down or both, not {self.direction!r}")
        if self.k <= 0:
            raise ValueError("k must be positive")


@dataclass
class AlarmResult:
    summary: pd.DataFrame  # one row per indicator: mean, sd, threshold, first_alarm, alarm_starts, ...
    exceed: pd.DataFrame  # bool per row and indicator (False on baseline / invalid rows)
    confirmed: pd.DataFrame  # bool: n-of-m condition holds at that row
    zscores: pd.DataFrame


def n_of_m(exceed: np.ndarray, n: int, m: int) -> NDArray[np.bool_]:
    """confirmed[i] = at least n of exceed[i−m+1 … i] are True (fewer than m rows so far count as they are)."""
    e = np.asarray(exceed, dtype=int)
    csum = np.concatenate([[0], np.cumsum(e)])
    idx = np.arange(1, len(e) + 1)
    confirmed: NDArray[np.bool_] = (csum[idx] - csum[np.maximum(idx - m, 0)]) >= n
    return confirmed


def episode_starts(confirmed: np.ndarray) -> np.ndarray:
    """Positions where ``confirmed`` turns True."""
    c = np.asarray(confirmed, dtype=bool)
    prev = np.concatenate([[False], c[:-1]])
    return np.flatnonzero(c & ~prev)


def _as_mask(baseline: int | np.ndarray | pd.Series, n_rows: int) -> np.ndarray:
    if isinstance(baseline, (int, np.integer)):
        if not 2 <= int(baseline) <= n_rows:
            raise ValueError(f"baseline needs at least 2 rows (got {baseline} of {n_rows})")
        mask = np.zeros(n_rows, dtype=bool)
        mask[: int(baseline)] = True
        return mask
    mask = np.asarray(baseline, dtype=bool)
    if mask.shape != (n_rows,):
        raise ValueError("baseline mask must have one entry per row")
    return mask


def alarm_stage(
    indicators: pd.DataFrame,
    baseline: int | np.ndarray | pd.Series,
    config: AlarmConfig | None = None,
    *,
    valid: np.ndarray | pd.Series | None = None,
) -> AlarmResult:
    """Run the alarm stage on every column of ``indicators`` (see the module doc). ``baseline``: the number of
    first rows, or a boolean mask. The summary's ``first_alarm`` / ``alarm_starts`` are index labels of
    ``indicators`` (None / empty when no alarm)."""
    cfg = config or AlarmConfig()
    n_rows = len(indicators)
    base = _as_mask(baseline, n_rows)
    ok = np.ones(n_rows, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    base_ok = base & ok
    if base_ok.sum() < 2:
        raise ValueError("fewer than 2 valid baseline rows: the baseline SD is undefined")
    monitored = ~base & ok
    labels = indicators.index
    rows, exceed_cols, conf_cols, z_cols = [], {}, {}, {}
    for col in indicators.columns:
        values = indicators[col].to_numpy(dtype=float)
        mu = float(np.nanmean(values[base_ok]))
        sd = float(np.nanstd(values[base_ok], ddof=1))
        sd_eff = sd if sd > 0 else max(abs(mu) * 1e-9, 1e-12)
        z = (values - mu) / sd_eff
        if cfg.direction == "up":
            hit = z > cfg.k
        elif cfg.direction == "down":
            hit = z < -cfg.k
        else:
            hit = np.abs(z) > cfg.k
        hit = hit & monitored & np.isfinite(values)
        conf = np.zeros(n_rows, dtype=bool)
        pos = np.flatnonzero(monitored)
        conf[pos] = n_of_m(hit[pos], cfg.n, cfg.m)
        starts = pos[episode_starts(conf[pos])]
        first_exceed = np.flatnonzero(hit)
        rows.append(
            {
                "indicator": col,
                "baseline_rows": int(base_ok.sum()),
                "mean": mu,
                "sd": sd,
                "threshold": mu + cfg.k * sd if cfg.direction != "down" else mu - cfg.k * sd,
                "monitored_rows": int(monitored.sum()),
                "exceedances": int(hit.sum()),
                "first_exceedance": labels[first_exceed[0]] if len(first_exceed) else None,
                "first_alarm": labels[starts[0]] if len(starts) else None,
                "alarm_starts": [labels[s] for s in starts],
                "alarm_episodes": len(starts),
            }
        )
        exceed_cols[col], conf_cols[col], z_cols[col] = hit, conf, z
    summary = pd.DataFrame(rows)
    for col in ("first_exceedance", "first_alarm"):  # keep None (not NaN) and the labels' own type
        summary[col] = pd.Series([_plain(r[col]) for r in rows], dtype=object)
    summary["alarm_starts"] = pd.Series([[_plain(v) for v in r["alarm_starts"]] for r in rows], dtype=object)
    return AlarmResult(
        summary.set_index("indicator"),
        pd.DataFrame(exceed_cols, index=labels),
        pd.DataFrame(conf_cols, index=labels),
        pd.DataFrame(z_cols, index=labels),
    )


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; any other label unchanged."""
    return value.item() if isinstance(value, np.generic) else value


class DetectionReport(TypedDict):
    detected_at: int | None
    delay: int | None
    false_alarms: int


def detection_report(alarm_starts: Sequence[int], onset: int | None) -> DetectionReport:
    """Against a known fault onset (row label, e.g. file index): ``delay`` = first alarm at/after the onset
    minus the onset (None if never), ``false_alarms`` = alarm episodes starting before the onset (all of them
    when ``onset`` is None, i.e. a healthy bearing)."""
    starts = sorted(alarm_starts)
    if onset is None:
        return {"detected_at": None, "delay": None, "false_alarms": len(starts)}
    after = [s for s in starts if s >= onset]
    return {
        "detected_at": after[0] if after else None,
        "delay": (after[0] - onset) if after else None,
        "false_alarms": sum(1 for s in starts if s < onset),
    }
