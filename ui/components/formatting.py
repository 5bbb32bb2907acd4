"""Formatting and table helpers (pure functions; no Streamlit calls)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

HEALTH_LABELS = {"ok": "● ok", "warning": "▲ warning", "alert": "■ alert"}
"""Health as text with a shape (readable without colour or emoji fonts); tables colour it with HEALTH_COLOURS."""
HEALTH_COLOURS = {"● ok": "#d7f5dd", "▲ warning": "#ffe8b3", "■ alert": "#ffc9c9"}


def health_style(value: object) -> str:
    """CSS for a health cell (pandas Styler ``map``)."""
    colour = HEALTH_COLOURS.get(str(value))
    return f"background-color: {colour}" if colour else ""


SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def parse_ts(value: str | datetime | None) -> datetime | None:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ago(value: str | datetime | None, now: datetime | None = None) -> str:
    """``"3 min ago"`` style; ``"never"`` for None."""
    moment = parse_ts(value)
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def short_ts(value: str | datetime | None) -> str:
    moment = parse_ts(value)
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def frame(items: Sequence[dict[str, Any]], columns: Iterable[str] | None = None,
          time_columns: Iterable[str] = ()) -> pd.DataFrame:  # fmt: skip
    """A DataFrame of API items (only ``columns`` when given), time columns as readable UTC text."""
    data = pd.DataFrame(list(items))
    if columns is not None:
        wanted = list(columns)
        for column in wanted:
            if column not in data.columns:
                data[column] = None
        data = data[wanted]
    for column in time_columns:
        if column in data.columns:
            data[column] = data[column].map(short_ts)
    return data


def sensor_health(
    sensor: dict[str, Any],
    alerts: Sequence[dict[str, Any]],
    now: datetime,
    stale_after: timedelta,
) -> tuple[str, str]:
    """``(health, reason)`` of one sensor.

    * ``alert``: an open (unacknowledged) alert of severity high or critical;
    * ``warning``: any other unresolved alert, no reading within ``stale_after``, or a sensor status other than
      ``active``;
    * ``ok`` otherwise.
    """
    unresolved = [a for a in alerts if a.get("status") in ("open", "acknowledged")]
    severe = [
        a
        for a in unresolved
        if a.get("status") == "open" and SEVERITY_RANK.get(a.get("severity", ""), 0) >= 3
    ]
    if severe:
        return "alert", ", ".join(sorted({f"{a['rule']} ({a['severity']})" for a in severe}))
    if unresolved:
        return "warning", ", ".join(sorted({f"{a['rule']} ({a['status']})" for a in unresolved}))
    last = parse_ts(sensor.get("last_reading_at"))
    if last is None:
        return "warning", "no reading yet"
    if now - last > stale_after:
        return "warning", f"silent since {ago(last, now)}"
    status = sensor.get("status") or "active"
    if status != "active":
        return "warning", f"status {status}"
    return "ok", ""


RAW_MAX_SPAN = timedelta(hours=2)


def choose_bucket(span: timedelta, max_points: int = 2000) -> str | None:
    """The rollup for a time range: None (raw readings) up to RAW_MAX_SPAN, else the smallest of 1m/5m/1h/1d
    that keeps a sensor's series at or under ``max_points`` buckets."""
    if span <= RAW_MAX_SPAN:
        return None
    for name, size in (
        ("1m", timedelta(minutes=1)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
    ):
        if span / size <= max_points:
            return name
    return "1d"
