"""The back-test's tables (rich): per asset and sensor the first anomaly / alert / work order with the hours
before the end of the replay and the counts; then the work orders."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from core.backtest.report import hours_before, parse_time


def _when(value: str | None, end_text: str) -> str:
    when = parse_time(value)
    end = parse_time(end_text)
    if when is None or end is None:
        return "-"
    hours = hours_before(end, when)
    return f"{when:%Y-%m-%d %H:%M} ({hours:,.1f} h)"


def render_report(console: Console, report: dict[str, Any]) -> None:
    end = report["end"]
    table = Table(title=f"Back-test up to {end} (hours before the end)", title_justify="left")
    for name, justify in (
        ("asset", "left"), ("sensor", "left"), ("first anomaly", "left"), ("anomalies", "right"),
        ("first alert", "left"), ("alerts", "right"), ("first work order", "left"), ("work orders", "right"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    rows = sorted(report["sensors"].items(), key=lambda item: (item[1]["asset"], item[0]))
    previous = None
    for sensor_id, s in rows:
        cells = (
            s["asset"] if s["asset"] != previous else "",
            sensor_id,
            _when(s["first_anomaly"], end),
            str(s["anomalies"]),
            _when(s["first_alert"], end),
            str(s["alerts"]),
            _when(s["first_work_order"], end),
            str(s["work_orders"]),
        )
        table.add_row(*(Text(c) for c in cells))  # plain text: ids may hold markup characters
        previous = s["asset"]
    console.print(table)
    orders = report["work_orders"]
    if not orders:
        console.print("no work order opened")
        return
    wo = Table(title=f"Work orders ({len(orders)})", title_justify="left")
    for name in ("id", "asset", "opened at", "sensors"):
        wo.add_column(name)
    for order in orders:
        order_cells = (
            str(order["id"]),
            order["asset"] or "-",
            _when(order["opened_at"], end),
            ", ".join(order["sensors"]),
        )
        wo.add_row(*(Text(c) for c in order_cells))
    console.print(wo)


__all__ = ["render_report"]
