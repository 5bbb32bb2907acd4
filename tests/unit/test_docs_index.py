"""The project's own docs stand alone: docs/README.md links every document under docs/, every relative link in the
README and under docs/ resolves inside the project, and nothing points at the internal ``../shared`` folder (users
of the project do not have it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "DEVELOPERS.md", *sorted(DOCS.rglob("*.md"))]


def _relative_links(path: Path) -> list[str]:
    links = LINK.findall(path.read_text(encoding="utf-8"))
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link) and not link.startswith("#")]


def test_the_docs_index_links_every_document() -> None:
    index = DOCS / "README.md"
    linked = {(index.parent / link.split("#")[0]).resolve() for link in _relative_links(index)}
    missing = [str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if p != index and p.resolve() not in linked]
    assert not missing, f"docs/README.md does not link: {missing}"


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_project(path: Path) -> None:
    for link in _relative_links(path):
        target = (path.parent / link.split("#")[0]).resolve()
        assert target.is_relative_to(ROOT), f"{path.relative_to(ROOT)} links outside the project: {link}"
        assert target.exists(), f"{path.relative_to(ROOT)} links to a missing file: {link}"


def test_the_user_docs_do_not_send_users_to_the_internal_shared_folder() -> None:
    for path in [ROOT / "README.md", *DOCS.glob("*.md"), *(DOCS / "architecture").glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        assert "shared/DESIGN.md" not in text, f"{path.relative_to(ROOT)} refers to ../shared/DESIGN.md"
