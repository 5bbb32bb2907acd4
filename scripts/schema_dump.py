"""The normalisation of scripts/export_schema.sh's pg_dump output (a filter: stdin to stdout), also used by its test.

A dump of the same schema must read the same whatever the run and the server's major version:

- volatile lines go: the ``\\restrict``/``\\unrestrict`` lines (random token), the ``-- Dumped from/by`` version
  comments, and the per-column ``SET (pg_attver=<number>)`` attribute options that some server builds (this
  machine's PostgreSQL 15) record on every column and change on every run;
- view bodies are written the way PostgreSQL 16 and later print them. Up to 15 a view's query had two hidden
  range-table entries (OLD and NEW), so ``pg_get_viewdef`` qualified every column of the view's top-level query
  with its table's name (``sensor_readings.sensor_id``); from 16 on a top-level query that reads one relation
  prints bare column names (``sensor_id``). Here the qualification is removed in exactly that case: the top-level
  FROM has one item (no JOIN, no comma), the query is not a UNION/INTERSECT/EXCEPT, and only references of the
  top-level query are touched (subqueries qualify their columns on every version). Any other view is left as
  the server printed it, which is the same on 15 and 18;
- runs of blank lines become one.
"""

from __future__ import annotations

import re
import sys

VOLATILE = re.compile(
    r"^(\\(un)?restrict .*|-- Dumped (from|by) .*|ALTER TABLE ONLY .* ALTER COLUMN .* SET \(pg_attver=\d+\);)$"
)
VIEW_HEAD = re.compile(r"^CREATE (?:OR REPLACE )?(?:MATERIALIZED )?VIEW [^\n]* AS\n", re.MULTILINE)
TOKEN = re.compile(
    r"""(?P<string>[EeBbXxUu]?'(?:[^']|'')*')
      | (?P<quoted>"(?:[^"]|"")*")
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<space>\s+)
      | (?P<other>::|.)""",
    re.VERBOSE | re.DOTALL,
)
SUBQUERY_START = {"SELECT", "WITH", "VALUES", "TABLE"}
SET_OPERATIONS = {"UNION", "INTERSECT", "EXCEPT"}
FROM_END = {"WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR"}


def _tokens(text: str) -> list[tuple[str, str]]:
    return [(match.lastgroup or "other", match.group()) for match in TOKEN.finditer(text)]


def _is_ident(token: tuple[str, str]) -> bool:
    return token[0] in ("word", "quoted")


def _upper(token: tuple[str, str]) -> str:
    return token[1].upper() if token[0] == "word" else ""


def _depths(tokens: list[tuple[str, str]]) -> list[tuple[int, bool]]:
    """For each token: its parenthesis depth and whether it is inside a subquery (a parenthesis opening a SELECT)."""
    result: list[tuple[int, bool]] = []
    stack: list[bool] = []
    for i, token in enumerate(tokens):
        if token == ("other", ")") and stack:
            stack.pop()
        result.append((len(stack), any(stack)))
        if token == ("other", "("):
            following = next((t for t in tokens[i + 1 :] if t[0] != "space"), ("other", ""))
            stack.append(_upper(following) in SUBQUERY_START)
    return result


def _refname(item: list[tuple[str, str]]) -> str | None:
    """The name the top-level query qualifies its columns with, for a FROM item of one relation (``public.t``,
    ``public.t x``, ``public.t AS x(a, b)``) or of one aliased parenthesised or function item; None otherwise."""
    atoms: list[tuple[str, str]] = []  # ("i", identifier), (".", "."), ("a", "AS"), ("g", "(...)")
    depth = 0
    for token in (t for t in item if t[0] != "space"):
        if depth:
            depth += {"(": 1, ")": -1}.get(token[1], 0) if token[0] == "other" else 0
            continue
        if token == ("other", "("):
            depth = 1
            atoms.append(("g", "(...)"))
        elif _upper(token) == "AS":
            atoms.append(("a", token[1]))
        elif _upper(token) == "ONLY" and not atoms:
            continue
        elif _is_ident(token):
            atoms.append(("i", token[1]))
        elif token == ("other", "."):
            atoms.append((".", "."))
        else:
            return None
    shape = "".join(kind for kind, _text in atoms)
    relation = re.fullmatch(r"i(?:\.i)*", shape)
    if relation:
        return atoms[-1][1]
    aliased = re.fullmatch(r"(?:i(?:\.i)*g?|g)a?(i)g?", shape)
    if aliased:
        return atoms[aliased.start(1)][1]
    return None


def _ends_from(tokens: list[tuple[str, str]], i: int) -> bool:
    """Whether the top-level token ``i`` ends the FROM clause: a clause keyword, the final ``;``, the
    ``WITH [NO] DATA`` of a materialised view or the ``WITH [LOCAL|CASCADED] CHECK OPTION`` of a view."""
    if _upper(tokens[i]) in FROM_END or tokens[i] == ("other", ";"):
        return True
    following = next((t for t in tokens[i + 1 :] if t[0] != "space"), ("other", ""))
    return _upper(tokens[i]) == "WITH" and _upper(following) in {"NO", "DATA", "LOCAL", "CASCADED", "CHECK"}


def unqualify_view_body(body: str) -> str:
    """The view query ``body`` (up to and including its ``;``) as PostgreSQL 16+ prints it (see the module doc)."""
    tokens = _tokens(body)
    depths = _depths(tokens)
    top = [i for i, (depth, _sub) in enumerate(depths) if depth == 0]
    if any(_upper(tokens[i]) in SET_OPERATIONS for i in top):
        return body
    froms = [
        i
        for i in top
        if _upper(tokens[i]) == "FROM"
        and not any(_upper(tokens[j]) == "DISTINCT" for j in top if j < i and j >= i - 2)
    ]
    if len(froms) != 1:
        return body
    start = froms[0] + 1
    end = next((i for i in top if i > start and _ends_from(tokens, i)), len(tokens))
    item = tokens[start:end]
    item_top = [t for t, (depth, _sub) in zip(item, depths[start:end], strict=True) if depth == 0]
    if ("other", ",") in item_top or any(_upper(t) in {"JOIN", "NATURAL", "CROSS"} for t in item_top):
        return body
    refname = _refname(item)
    if refname is None:
        return body
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if (
            not depths[i][1]
            and _is_ident(tokens[i])
            and tokens[i][1] == refname
            and i + 2 < len(tokens)
            and tokens[i + 1] == ("other", ".")
            and _is_ident(tokens[i + 2])
            and not (i > 0 and tokens[i - 1] == ("other", "."))  # schema.relation.column: not ours to touch
            and not (start <= i < end)  # the FROM item itself (public.sensor_readings) stays
        ):
            i += 2  # drop "refname."
            continue
        out.append(tokens[i][1])
        i += 1
    return "".join(out)


def unqualify_views(dump: str) -> str:
    parts: list[str] = []
    position = 0
    for head in VIEW_HEAD.finditer(dump):
        if head.start() < position:
            continue
        body_start = head.end()
        semicolon = next(
            (
                m.end()
                for m in TOKEN.finditer(dump, body_start)
                if m.lastgroup == "other" and m.group() == ";"
            ),
            len(dump),
        )
        parts.append(dump[position:body_start])
        parts.append(unqualify_view_body(dump[body_start:semicolon]))
        position = semicolon
    parts.append(dump[position:])
    return "".join(parts)


def normalise(dump: str) -> str:
    """The dump without volatile lines, with version-independent view bodies and single blank lines."""
    lines = [line for line in dump.splitlines(keepends=True) if not VOLATILE.match(line.rstrip("\n"))]
    out: list[str] = []
    for line in unqualify_views("".join(lines)).splitlines(keepends=True):
        if not (line == "\n" and out and out[-1] == "\n"):  # cat -s: one blank line of each run
            out.append(line)
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(normalise(sys.stdin.read()))
