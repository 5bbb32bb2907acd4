"""Paging, in one place: the page every list answers, the keyset cursor of the readings series, and sort order.

* ``Page[T]`` is the body of every offset-paged list: ``{"items": [...], "total", "limit", "offset"}`` (OpenAPI
  component ``Page_AssetRead_`` for ``Page[AssetRead]``); its example is built from the item's first example.
* ``encode_cursor``/``decode_cursor``: the opaque ``next_cursor``/``cursor`` of a keyset-paged series (base64url
  of the version and the timestamp of the last item); a cursor that does not decode is a ``ValidationFailed``
  on the ``cursor`` query parameter.
* ``sort_order``: the ORDER BY of a list sorted by one column (nulls last) with a unique tie-breaker, so that
  offsets are stable; ``parse_sort`` reads a ``sort`` parameter (``name`` or ``-name`` for descending).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from sqlalchemy import ColumnElement, UnaryExpression
from sqlalchemy.orm import QueryableAttribute

from core.errors import ValidationFailed
from core.schemas_common import in_datetime_range

ItemT = TypeVar("ItemT")

#: ``limit`` of the page examples in the OpenAPI document.
EXAMPLE_LIMIT = 100
CURSOR_VERSION = 1


def _page_example(schema: JsonDict, model: type[Any]) -> None:
    """A page's example: one item, the first example of the item's schema (none when the item has none)."""
    args = getattr(model, "__pydantic_generic_metadata__", {}).get("args", ())
    item = args[0] if args else None
    if not (isinstance(item, type) and issubclass(item, BaseModel)):
        return
    extra = item.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if isinstance(examples, list) and examples:
        schema["examples"] = [{"items": [examples[0]], "total": 1, "limit": EXAMPLE_LIMIT, "offset": 0}]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page of a list: the sort (``field`` or ``-field``), how many rows, from which row."""

    sort: str
    limit: int
    offset: int


class Page(BaseModel, Generic[ItemT]):
    """One page of a list: the items, how many rows match the filters, and the ``limit``/``offset`` asked for."""

    model_config = ConfigDict(json_schema_extra=_page_example)

    items: list[ItemT]
    total: int = Field(description="Rows matching the filters, whatever the page.")
    limit: int
    offset: int

    @classmethod
    def of(cls, rows: Iterable[object], *, total: int, limit: int, offset: int) -> Self:
        """The page of ``rows`` (ORM objects or mappings, validated into the item type)."""
        return cls.model_validate(
            {"items": list(rows), "total": total, "limit": limit, "offset": offset}, from_attributes=True
        )


# --- keyset cursors -------------------------------------------------------------------------------------------
def encode_cursor(last: datetime) -> str:
    """Opaque keyset cursor: base64url of ``{"v": 1, "t": <ISO timestamp of the last item>}``."""
    raw = json.dumps({"v": CURSOR_VERSION, "t": last.astimezone(UTC).isoformat()}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> datetime:
    """The timestamp of a cursor made by ``encode_cursor``; ``ValidationFailed`` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        value = datetime.fromisoformat(data["t"])
        if value.tzinfo is None:
            raise ValueError("naive cursor timestamp")
        if not in_datetime_range(value):
            raise ValueError("cursor timestamp out of range")
        return value
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error) as exc:
        raise ValidationFailed(
            "cursor is not valid; pass the next_cursor of a previous response",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        ) from exc


# --- sort order -----------------------------------------------------------------------------------------------
def parse_sort(sort: str) -> tuple[str, bool]:
    """``"-name"`` → ``("name", True)`` (descending); ``"name"`` → ``("name", False)``."""
    return sort.removeprefix("-"), sort.startswith("-")


Column = ColumnElement[Any] | QueryableAttribute[Any]


def sort_order(column: Column, tie: Column, *, descending: bool) -> tuple[UnaryExpression[Any], UnaryExpression[Any]]:
    """ORDER BY ``column`` (nulls last), then the unique ``tie`` in the same direction."""
    if descending:
        return column.desc().nulls_last(), tie.desc()
    return column.asc().nulls_last(), tie.asc()


__all__ = [
    "CURSOR_VERSION",
    "EXAMPLE_LIMIT",
    "Page",
    "decode_cursor",
    "encode_cursor",
    "parse_sort",
    "sort_order",
]
