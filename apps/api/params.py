"""Query and path parameters shared by the routers, each with its bounds in the OpenAPI document, and the
read-side service they share (``QueryServiceDep``).

Ids are bounded by their column's type (``integer`` for assets, ``bigint`` for the rest), offsets and limits by
what a page may be, text by a length and the absence of NUL, date-times by ``core.schemas_common.Timestamp``
(ISO 8601 with a time zone, years 1970–9999 in UTC; an epoch number is refused). A value outside a bound is a
422 that names the parameter, never a database error.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query

from apps.api.deps import SessionDep, SettingsDep
from core.queries.service import QueryService
from core.schemas_common import (
    DATETIME_RANGE,
    INT4_MAX,
    INT8_MAX,
    MAX_OFFSET,
    NO_NUL,
    TOKEN,
    Timestamp,
)

MAX_PAGE = 1000
MAX_QUERY_TEXT = 200
MAX_SENSOR_ID = 128


def big_id_path(description: str) -> Any:
    """A ``bigint`` id in the path."""
    return Path(ge=1, le=INT8_MAX, description=description)


def text_query(description: str | None = None, *, max_length: int = MAX_QUERY_TEXT) -> Any:
    """An optional text filter: bounded length, no NUL."""
    return Query(max_length=max_length, pattern=NO_NUL, description=description)


def datetime_query(description: str) -> Any:
    return Query(description=f"{description} {DATETIME_RANGE}")


# --- ids ------------------------------------------------------------------------------------------------------
AssetIdPath = Annotated[int, Path(ge=1, le=INT4_MAX, description="Asset id.")]
AssetIdQuery = Annotated[int | None, Query(ge=1, le=INT4_MAX, description="Asset id.")]
AlertIdPath = Annotated[int, big_id_path("Alert id.")]
AlertIdQuery = Annotated[int | None, Query(ge=1, le=INT8_MAX, description="Alert id.")]
RuleIdPath = Annotated[int, big_id_path("Alert rule id.")]
KeyIdPath = Annotated[int, big_id_path("API key id.")]
SensorIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_SENSOR_ID, pattern=TOKEN, description="Sensor id.")
]
SensorIdQuery = Annotated[
    str | None, Query(min_length=1, max_length=MAX_SENSOR_ID, pattern=TOKEN, description="Sensor id.")
]

# --- pages ----------------------------------------------------------------------------------------------------
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")]
#: The keyset cursor of a series (``core.paging.decode_cursor`` reads it).
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_=-]+$",
        description="`next_cursor` of the previous page (opaque; a cursor of another series is a 422).",
    ),
]

# --- text and time --------------------------------------------------------------------------------------------
TextQuery = Annotated[str | None, text_query()]
Start = Annotated[Timestamp | None, datetime_query("Inclusive start.")]
End = Annotated[Timestamp | None, datetime_query("Exclusive end.")]
Since = Annotated[Timestamp | None, datetime_query("At or after.")]


# --- the read-side service ------------------------------------------------------------------------------------
def query_service(session: SessionDep, settings: SettingsDep) -> QueryService:
    """Lists and reads of assets, sensors, readings, anomalies and alerts (``core.queries.service``)."""
    return QueryService(session, max_points=settings.query_max_points)


QueryServiceDep = Annotated[QueryService, Depends(query_service)]

__all__ = [
    "MAX_PAGE",
    "MAX_QUERY_TEXT",
    "MAX_SENSOR_ID",
    "AlertIdPath",
    "AlertIdQuery",
    "AssetIdPath",
    "AssetIdQuery",
    "Cursor",
    "End",
    "KeyIdPath",
    "Limit",
    "Offset",
    "QueryServiceDep",
    "RuleIdPath",
    "SensorIdPath",
    "SensorIdQuery",
    "Since",
    "Start",
    "TextQuery",
    "big_id_path",
    "datetime_query",
    "query_service",
    "text_query",
]
