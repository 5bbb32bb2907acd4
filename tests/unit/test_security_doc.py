"""docs/SECURITY.md's STRIDE table: every row names at least one test, and every test it names exists.

A row is ``| threat | control | proven by |``; the last cell cites tests as ``tests/…/file.py::test_name`` or, after
a citation in the same cell, as bare ``test_name`` (same file). Each cited function must be defined (``def`` or
``async def``) in that file, so renaming or deleting a test without updating the table fails the suite.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECURITY = ROOT / "docs" / "SECURITY.md"
CITATION = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`(test_\w+)`")
#: STRIDE categories the table must cover (denial of service and SSRF among them).
REQUIRED_THREATS = (
    "Spoofing",
    "Tampering",
    "Repudiation",
    "Information disclosure",
    "Denial of service",
    "Elevation of privilege",
    "SSRF",
)


def _rows() -> list[tuple[str, str]]:
    text = SECURITY.read_text(encoding="utf-8")
    table = text[text.index("## STRIDE") :]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("threat", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append((cells[0], cells[2]))
    return rows


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def _citations(cell: str) -> list[tuple[str, str | None]]:
    cited: list[tuple[str, str | None]] = []
    current: str | None = None
    for match in CITATION.finditer(cell):
        path, name, bare = match.groups()
        if path:
            current = path
            cited.append((path, name))
        elif bare:
            if current is None:
                raise AssertionError(f"bare test name {bare!r} before any file in: {cell}")
            cited.append((current, bare))
    return cited


def test_the_table_covers_every_stride_category_and_ssrf() -> None:
    threats = " ".join(threat for threat, _ in _rows())
    missing = [t for t in REQUIRED_THREATS if t not in threats]
    assert not missing, f"docs/SECURITY.md's STRIDE table has no row for: {missing}"


@pytest.mark.parametrize(("threat", "proof"), _rows(), ids=lambda v: v[:40] if isinstance(v, str) else None)
def test_each_row_cites_tests_that_exist(threat: str, proof: str) -> None:
    cited = _citations(proof)
    assert cited, f"row {threat!r} cites no test"
    for path, name in cited:
        file = ROOT / path
        assert file.is_file(), f"row {threat!r} cites {path}, which does not exist"
        if name is not None:
            assert name in _test_names(file), f"row {threat!r} cites {path}::{name}, which is not defined there"
