"""Static checks every papermill notebook's tests share: committed clean, one literal ``parameters`` cell, and
which modules its cells import."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import nbformat


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def committed_parameters(path: Path) -> dict[str, Any]:
    """Assert the notebook is valid, committed without outputs and has exactly one cell tagged ``parameters``
    made of literal assignments; return those assignments."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = code_cells(nb)
    assert all(cell.outputs == [] and cell.execution_count is None for cell in cells), (
        f"{path.name} has outputs"
    )
    tagged = [cell for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assigned: dict[str, Any] = {}
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: the parameters cell holds more than assignments"
        assigned[node.targets[0].id] = ast.literal_eval(node.value)
    return assigned


def imported_modules(path: Path) -> set[str]:
    """Every module the notebook's code cells import (``import x`` and ``from x import y``)."""
    modules: set[str] = set()
    for cell in code_cells(nbformat.read(path, as_version=4)):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
    return modules
