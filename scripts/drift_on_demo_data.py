"""Drift checks (core.ml.drift.detect_drift, default thresholds) replayed on the committed demo data.

For every sensor of ``data/sensor_data.csv``: recent 6-hour windows ending at the end of the data and every 6 h
before it, each against the same hours 24 h earlier (the drift agent's windows), skipped when a window has fewer
than 30 readings. A window pair "has a fault" when a non-spike fault of ``data/sensor_data_faults.csv`` overlaps
it. Prints every check and, per rule, how many pairs with and without a fault were flagged.

    .venv/bin/python scripts/drift_on_demo_data.py
"""

from __future__ import annotations

import pandas as pd

from core.config import PROJECT_ROOT
from core.ml.drift import DriftThresholds, DriftWindows, detect_drift

WINDOWS = 5
RECENT_H, OFFSET_H = 6.0, 24.0


def main() -> None:
    data = pd.read_csv(PROJECT_ROOT / "data" / "sensor_data.csv", parse_dates=["timestamp"])
    faults = pd.read_csv(
        PROJECT_ROOT / "data" / "sensor_data_faults.csv", parse_dates=["started_at", "ended_at"]
    )
    faults = faults[faults["kind"] != "spike"]
    thresholds = DriftThresholds()
    last = data["timestamp"].max()
    rows = []
    for sensor_id, group in data.groupby("sensor_id"):
        values = group.set_index("timestamp").sort_index()["value"]
        for k in range(WINDOWS):
            w = DriftWindows.ending_at(last - pd.Timedelta(hours=RECENT_H * k), RECENT_H, OFFSET_H)
            reference = values[(values.index > w.reference_start) & (values.index <= w.reference_end)]
            recent = values[(values.index > w.recent_start) & (values.index <= w.recent_end)]
            if min(len(reference), len(recent)) < thresholds.min_samples:
                continue
            result = detect_drift(reference.to_numpy(), recent.to_numpy(), thresholds)
            overlapping = faults[
                (faults["sensor_id"] == sensor_id)
                & (faults["started_at"] <= w.recent_end)
                & (faults["ended_at"] >= w.reference_start)
            ]
            rows.append(
                {
                    "sensor": sensor_id,
                    "recent_end": w.recent_end.strftime("%Y-%m-%d %H:%M"),
                    "ks_p": result.ks_pvalue,
                    "psi": result.psi,
                    "drifted": result.drifted,
                    "fault": ",".join(overlapping["kind"]),
                }
            )
    table = pd.DataFrame(rows)
    print(table.to_string(float_format=lambda v: f"{v:.3g}"))
    has_fault = table["fault"] != ""
    rules = {
        "KS p<0.01 OR PSI>=0.2 (settings default)": table["drifted"],
        "KS p<0.01 only": table["ks_p"] < 0.01,
        "PSI>=0.2 only": table["psi"] >= 0.2,
        "KS p<1e-4 OR PSI>=0.5": (table["ks_p"] < 1e-4) | (table["psi"] >= 0.5),
    }
    print(
        f"\n{len(table)} window pairs: {int(has_fault.sum())} with a fault, {int((~has_fault).sum())} without"
    )
    for name, flagged in rules.items():
        print(
            f"{name:42s} flagged with fault {int((flagged & has_fault).sum())}/{int(has_fault.sum())}, "
            f"without fault {int((flagged & ~has_fault).sum())}/{int((~has_fault).sum())}"
        )


if __name__ == "__main__":
    main()
