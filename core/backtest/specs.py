"""The back-test's command-line specs and the sensors they plan, one per selected column (pure, no I/O).

* ``--columns REGEX`` selects the value columns (``re.search`` on each column name; the time column never counts).
* ``--asset-pattern REGEX``: its first group, searched in the column name, names the asset
  (``(Bearing\\d)`` → ``Bearing1_ch1_rms`` belongs to ``Bearing1``). A selected column it does not match is an
  error listing the columns: every replayed sensor needs an asset, since work orders are opened per asset.
* ``--sensor-type SPEC``, repeatable: ``TYPE[:UNIT]`` (every column) or ``PATTERN=TYPE[:UNIT]`` (the columns
  ``PATTERN`` matches); the first spec matching a column gives its type. Without ``:UNIT`` the type's canonical
  unit from the catalogue (``core.fleet.types``) is used (none for a type the catalogue does not know);
  ``TYPE:`` is an explicit dimensionless unit (``''``). Every column needs a spec and every spec must be the
  first match of at least one column.
* Sensor ids are the column names.

Errors are ``BacktestInputError`` with a one-line message naming the flag (the command exits with status 2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.fleet.types import (
    MAX_ASSET_CHARS,
    MAX_SENSOR_ID_CHARS,
    MAX_TYPE_CHARS,
    MAX_UNIT_CHARS,
    SENSOR_TYPES,
    canonical_unit,
)

SHOWN_NAMES = 8


class BacktestInputError(ValueError):
    """The command line or the file cannot be used; the message says which flag or line and why."""


def names(items: Sequence[str], limit: int = SHOWN_NAMES) -> str:
    """``a, b, c`` — at most ``limit`` names, then how many more."""
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def compile_regex(pattern: str, option: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise BacktestInputError(f"{option}: invalid regular expression {pattern!r}: {exc}") from None


def asset_regex(pattern: str) -> re.Pattern[str]:
    rx = compile_regex(pattern, "--asset-pattern")
    if rx.groups < 1:
        raise BacktestInputError(
            f"--asset-pattern {pattern!r} has no group: its first group names the asset, e.g. '(Bearing\\d)'"
        )
    return rx


@dataclass(frozen=True, slots=True)
class TypeSpec:
    text: str
    """The spec as given (messages)."""
    pattern: re.Pattern[str] | None
    """Columns it applies to; ``None``: every column."""
    type: str
    unit: str | None
    """``None``: the type has no canonical unit and none was given (the sensor is registered without one)."""

    def matches(self, column: str) -> bool:
        return self.pattern is None or self.pattern.search(column) is not None


def parse_type_spec(text: str) -> TypeSpec:
    """``TYPE[:UNIT]`` or ``PATTERN=TYPE[:UNIT]`` (the last ``=`` separates: a pattern may contain ``=``)."""
    head, sep, body = text.rpartition("=")
    pattern = None
    if sep:
        if not head:
            raise BacktestInputError(f"--sensor-type {text!r}: empty PATTERN before '='")
        pattern = compile_regex(head, f"--sensor-type {text!r}")
    type_name, colon, unit = body.partition(":")
    type_name = type_name.strip()
    if not type_name:
        raise BacktestInputError(
            f"--sensor-type {text!r}: no type (expected TYPE[:UNIT] or PATTERN=TYPE[:UNIT])"
        )
    if len(type_name) > MAX_TYPE_CHARS:
        raise BacktestInputError(
            f"--sensor-type {text!r}: the type is longer than {MAX_TYPE_CHARS} characters"
        )
    resolved = unit.strip() if colon else canonical_unit(type_name)
    if resolved is not None and len(resolved) > MAX_UNIT_CHARS:
        raise BacktestInputError(
            f"--sensor-type {text!r}: the unit is longer than {MAX_UNIT_CHARS} characters"
        )
    return TypeSpec(text=text, pattern=pattern, type=type_name, unit=resolved)


def unknown_types(types: Iterable[str]) -> list[str]:
    """The ``types`` the shipped catalogue does not know (allowed: no default rule or floor applies to them)."""
    return sorted({t for t in types if t not in SENSOR_TYPES})


@dataclass(frozen=True, slots=True)
class SensorPlan:
    """One replayed column: the sensor it becomes."""

    sensor_id: str
    asset: str
    type: str
    unit: str | None


def select_columns(header: Sequence[str], columns: re.Pattern[str], time_column: str) -> list[str]:
    """The value columns: every column but the time column whose name ``columns`` matches, in file order."""
    if time_column not in header:
        raise BacktestInputError(
            f"--time-column {time_column!r} is not a column of the file (columns: {names(list(header))})"
        )
    selected = [c for c in header if c != time_column and columns.search(c)]
    if not selected:
        others = [c for c in header if c != time_column]
        raise BacktestInputError(
            f"--columns {columns.pattern!r} matches no column (columns: {names(others)})"
        )
    return selected


def plan_sensors(
    columns: Sequence[str], assets: re.Pattern[str], specs: Sequence[TypeSpec]
) -> list[SensorPlan]:
    """One sensor per column: id = column name, asset = first group of ``assets``, type from the first spec."""
    if not specs:
        raise BacktestInputError("--sensor-type is required (TYPE[:UNIT] or PATTERN=TYPE[:UNIT], repeatable)")
    bad_ids = [c for c in columns if not c or len(c) > MAX_SENSOR_ID_CHARS or any(ch.isspace() for ch in c)]
    if bad_ids:
        raise BacktestInputError(
            f"column names are the sensor ids and must be 1-{MAX_SENSOR_ID_CHARS} characters without "
            f"whitespace: {names([repr(c) for c in bad_ids])}"
        )
    asset_of: dict[str, str] = {}
    unmatched = []
    for column in columns:
        match = assets.search(column)
        asset = match.group(1) if match else None
        if not asset:
            unmatched.append(column)
        elif len(asset) > MAX_ASSET_CHARS:
            raise BacktestInputError(f"--asset-pattern: asset name longer than {MAX_ASSET_CHARS} characters")
        else:
            asset_of[column] = asset
    if unmatched:
        raise BacktestInputError(
            f"--asset-pattern {assets.pattern!r} names no asset for {len(unmatched)} selected column(s): "
            f"{names(unmatched)} (narrow --columns or widen the pattern)"
        )
    spec_of: dict[str, TypeSpec] = {}
    for column in columns:
        spec = next((s for s in specs if s.matches(column)), None)
        if spec is not None:
            spec_of[column] = spec
    untyped = [c for c in columns if c not in spec_of]
    if untyped:
        raise BacktestInputError(
            f"--sensor-type: no spec matches {len(untyped)} selected column(s): {names(untyped)}"
        )
    used = {id(s) for s in spec_of.values()}
    for spec in specs:
        if id(spec) not in used:
            where = (
                "no selected column"
                if not any(spec.matches(c) for c in columns)
                else ("no column an earlier spec has not taken (first match wins)")
            )
            raise BacktestInputError(f"--sensor-type {spec.text!r} matches {where}")
    return [
        SensorPlan(sensor_id=c, asset=asset_of[c], type=spec_of[c].type, unit=spec_of[c].unit)
        for c in columns
    ]


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (naive timestamps are read in it)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BacktestInputError(
            f"--timezone {name!r}: unknown time zone (an IANA name such as UTC or Europe/Berlin)"
        ) from None


def parse_timestamp(text: str, tz: tzinfo) -> datetime:
    """An ISO 8601 timestamp in UTC; a naive one is read in ``tz``. Raises ``ValueError`` when unparseable."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def parse_end(text: str, tz: tzinfo) -> datetime:
    try:
        return parse_timestamp(text, tz)
    except ValueError:
        raise BacktestInputError(
            f"--end {text!r}: not an ISO 8601 timestamp (e.g. 2003-11-25T23:39:56 or 2003-11-25 23:39:56+00:00)"
        ) from None


__all__ = [
    "BacktestInputError",
    "SensorPlan",
    "TypeSpec",
    "asset_regex",
    "compile_regex",
    "names",
    "parse_end",
    "parse_timestamp",
    "parse_type_spec",
    "plan_sensors",
    "select_columns",
    "unknown_types",
    "zone",
]
