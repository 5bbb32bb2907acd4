"""Static checks every papermill notebook's tests share: committed clean, one literal ``parameters`` cell, and
which modules its cells import."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import nbformat

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


def missing_dataset_message(notebook: Path, output: Path, datasets_dir: Path, parameters: dict[str, Any]) -> str:
    """Run ``notebook`` with papermill while ``SM_DATASETS_DIR`` is ``datasets_dir`` (the kernel inherits the
    environment) and return the message of the ``DatasetMissingError`` that must stop it; any other outcome fails."""
    import os

    import papermill
    import pytest
    from papermill.exceptions import PapermillExecutionError

    previous = os.environ.get("SM_DATASETS_DIR")
    os.environ["SM_DATASETS_DIR"] = str(datasets_dir)
    try:
        with pytest.raises(PapermillExecutionError) as raised:
            papermill.execute_notebook(
                str(notebook), str(output), parameters=parameters, kernel_name="python3", cwd=str(PROJECT_ROOT),
                progress_bar=False, execution_timeout=120,
            )  # fmt: skip
    finally:
        if previous is None:
            os.environ.pop("SM_DATASETS_DIR", None)
        else:
            os.environ["SM_DATASETS_DIR"] = previous
    assert raised.value.ename == "DatasetMissingError", raised.value.evalue
    return str(raised.value.evalue)
