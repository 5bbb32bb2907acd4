"""Bounded field types shared by the request schemas (``core/*/schemas.py``) and the API's parameters.

Every bound is a JSON-schema keyword, so the OpenAPI document tells clients the limits instead of the database
finding out with an error:

* ids: ``minimum 1`` and ``maximum`` the column's type (``integer`` for asset ids, ``bigint`` for the rest);
* text: a maximum length and no NUL character (PostgreSQL text cannot hold one);
* date-times: timezone-aware, ISO 8601 strings (not epoch numbers), years 1970–9999 once converted to UTC;
* numbers and booleans in bodies: JSON numbers (finite) and JSON booleans only, no coercion from other types.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints

INT4_MAX = 2**31 - 1
"""Largest PostgreSQL ``integer`` (asset ids)."""
INT8_MAX = 2**63 - 1
"""Largest PostgreSQL ``bigint`` (every other id)."""
MAX_OFFSET = 10_000_000
"""Largest page offset any list accepts."""

NO_NUL = r"^[^\x00]*$"
"""Pattern of text without a NUL character (PostgreSQL text cannot store one)."""
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
"""Pattern of text without control characters (names, labels)."""
TOKEN = r"^[^\s\x00]+$"
"""Pattern of an identifier without whitespace or NUL (sensor ids)."""

MIN_YEAR = 1970
MAX_YEAR = 9999
DATETIME_RANGE = (
    f"ISO 8601 / RFC 3339 date-time with a time zone (Z or offset); between {MIN_YEAR}-01-01 and "
    f"{MAX_YEAR}-12-31 in UTC."
)

#: An id of an ``integer`` column (assets).
AssetId = Annotated[int, Field(ge=1, le=INT4_MAX, strict=True)]
#: An id of a ``bigint`` column (alerts, rules, tasks, incidents, webhooks, keys, dead letters ...).
BigId = Annotated[int, Field(ge=1, le=INT8_MAX, strict=True)]
#: A count or bound of a body that must fit a PostgreSQL ``integer``.
Int4 = Annotated[int, Field(ge=-INT4_MAX - 1, le=INT4_MAX, strict=True)]

#: A finite JSON number (no string, no boolean, no NaN/Infinity).
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: A JSON boolean (no 0/1, no "yes").
Bool = Annotated[bool, Field(strict=True)]


def text(max_length: int, *, min_length: int = 0, pattern: str = NO_NUL) -> Any:
    """``str`` with a maximum length and no NUL (or the stricter ``pattern``): the schema states both."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern)]


#: A sensor id: 1–128 characters, no whitespace, no NUL.
SensorId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=TOKEN)]
#: A short label (names, kinds, sites, units, assignees): up to 200 characters, no control characters.
Label = Annotated[str, StringConstraints(max_length=200, pattern=NO_CONTROL)]
#: Free text (descriptions, notes, comments): up to 4000 characters, no NUL.
FreeText = Annotated[str, StringConstraints(max_length=4000, pattern=NO_NUL)]

_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def _not_a_number(value: Any) -> Any:
    """Refuse epoch numbers (``0.5``, ``"1700000000"``): a date-time is an ISO 8601 string."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("expected an ISO 8601 date-time with a time zone, not a number")
    return value


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"date-time out of range (years {MIN_YEAR}-{MAX_YEAR} in UTC)") from None
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"date-time out of range (years {MIN_YEAR}-{MAX_YEAR} in UTC)")
    return value


def in_datetime_range(value: datetime) -> bool:
    """Whether an aware ``value`` lies in the supported range (for values computed from a request's)."""
    try:
        _in_range(value)
    except ValueError:
        return False
    return True


#: A timezone-aware date-time in the supported range, given as an ISO 8601 string.
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_not_a_number),
    AfterValidator(_in_range),
    Field(description=DATETIME_RANGE),
]

__all__ = [
    "DATETIME_RANGE",
    "INT4_MAX",
    "INT8_MAX",
    "MAX_OFFSET",
    "MAX_YEAR",
    "MIN_YEAR",
    "NO_CONTROL",
    "NO_NUL",
    "TOKEN",
    "AssetId",
    "BigId",
    "Bool",
    "FreeText",
    "Int4",
    "Label",
    "Number",
    "SensorId",
    "Timestamp",
    "in_datetime_range",
    "text",
]
