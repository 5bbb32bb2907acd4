"""docs/benchmarks/ingest.md keeps one section per kind of server: a run replaces its own and keeps the rest."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from core.config import PROJECT_ROOT


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "scripts"))
    return importlib.import_module("scripts.bench_ingest")


def test_a_run_replaces_its_own_section_and_keeps_the_others(bench: ModuleType) -> None:
    first = bench.merge_report(None, bench.PLAIN_SECTION, "plain table 1")
    assert first.startswith("# Ingest benchmark\n\n") and "\n## Plain PostgreSQL\n\nplain table 1\n" in first
    history = first + "\n## History\n\n| when | x |\n|---|---|\n| then | 1 |\n"
    both = bench.merge_report(history, bench.TIMESCALE_SECTION, "timescale table")
    again = bench.merge_report(both, bench.PLAIN_SECTION, "plain table 2")
    assert "plain table 1" not in again
    positions = [again.index(part) for part in ("plain table 2", "## TimescaleDB", "timescale table", "## History")]
    assert positions == sorted(positions)
    assert again.count("## Plain PostgreSQL") == 1 and again.count("| then | 1 |") == 1
    assert bench.merge_report(again, bench.PLAIN_SECTION, "plain table 2") == again  # stable
