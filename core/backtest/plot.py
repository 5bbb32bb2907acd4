"""The back-test's picture: every replayed signal over time with what the platform made of it.

One row per sensor (grouped by asset, in column order): the signal, its anomalies (dots, coloured by method),
its alerts (shaded from their event-time opening to their resolution, or to the end while unresolved) and the
work orders that rest on it (vertical lines at their event-time opening). Pure: it gets the replayed frame and
the API's results and writes a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.backtest.frame import ReplayFrame
from core.backtest.report import parse_time, work_order_sensors

METHOD_COLOURS = {"robust_z": "tab:red", "model": "tab:purple", "trend_ewma": "tab:orange"}
SEVERITY_COLOURS = {"critical": "tab:red", "high": "tab:orange", "medium": "gold", "low": "tab:olive"}


def plot_backtest(
    frame: ReplayFrame,
    anomalies: Mapping[str, Sequence[Mapping[str, Any]]],
    alerts: Sequence[Mapping[str, Any]],
    work_orders: Sequence[Mapping[str, Any]],
    path: Path,
    *,
    title: str = "Back-test",
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sensors = [p.sensor_id for p in sorted(frame.sensors, key=lambda p: (p.asset, frame.sensors.index(p)))]
    column = {p.sensor_id: i for i, p in enumerate(frame.sensors)}
    times = np.array(frame.times, dtype="datetime64[us]") if frame.times else np.array([], dtype="datetime64[us]")
    height = max(2.0, 1.1 * len(sensors))
    fig, axes = plt.subplots(len(sensors), 1, figsize=(14, height), sharex=True, squeeze=False)
    by_sensor: dict[str, list[Mapping[str, Any]]] = {}
    for alert in alerts:
        by_sensor.setdefault(str(alert["sensor_id"]), []).append(alert)
    for row, sensor_id in enumerate(sensors):
        ax = axes[row][0]
        values = frame.values[:, column[sensor_id]]
        ok = np.isfinite(values)
        ax.plot(times[ok], values[ok], lw=0.6, color="tab:blue")
        for alert in by_sensor.get(sensor_id, []):
            start = parse_time(alert.get("event_opened_at"))
            stop = parse_time(alert.get("event_resolved_at")) or frame.end
            if start is not None:
                ax.axvspan(
                    _num(start), _num(stop), color=SEVERITY_COLOURS.get(str(alert.get("severity")), "grey"), alpha=0.2
                )
        points = anomalies.get(sensor_id, [])
        for method, colour in METHOD_COLOURS.items():
            mine = [a for a in points if a.get("method") == method]
            if mine:
                ax.scatter(
                    [_num(parse_time(a["timestamp"])) for a in mine],
                    [float(a["value"]) for a in mine],
                    s=6,
                    color=colour,
                    label=method,
                    zorder=3,
                )
        for order in work_orders:
            opened = parse_time(order.get("event_opened_at"))
            if opened is not None and sensor_id in work_order_sensors(order):
                ax.axvline(_num(opened), color="black", lw=1.2, ls="--")
        ax.set_ylabel(sensor_id, rotation=0, ha="right", fontsize=7)
        ax.tick_params(labelsize=7)
        if points:
            ax.legend(loc="upper left", fontsize=6)
    axes[0][0].set_title(
        f"{title}: anomalies (dots), alerts (shaded by severity), work orders (dashed)", fontsize=9
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _num(when: datetime | None) -> Any:
    import matplotlib.dates as mdates

    if when is None:
        return np.nan
    return mdates.date2num(when)  # type: ignore[no-untyped-call]  # matplotlib leaves date2num unannotated


__all__ = ["plot_backtest"]
