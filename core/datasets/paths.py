"""Where the gauntlets' datasets are (``SM_DATASETS_DIR``) and the one error a missing dataset raises.

Relative paths — ``SM_DATASETS_DIR`` itself and a notebook's ``data_path`` — are taken relative to the project
root, the working directory of ``make`` and of every notebook run. Nothing here downloads: ``make datasets``
(``python -m apps.cli datasets``) does, and only when asked.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from core.config import PROJECT_ROOT, Settings, get_settings

DATASETS_COMMAND = "make datasets"


class DatasetMissingError(FileNotFoundError):
    """A dataset file or folder the run needs is not there; the message names it, the folder and the command."""


def datasets_root(settings: Settings | None = None) -> Path:
    """``SM_DATASETS_DIR`` (default ``.data/datasets``), absolute (a relative value is under the project root)."""
    root = Path((settings or get_settings()).datasets_dir).expanduser()
    return root if root.is_absolute() else PROJECT_ROOT / root


def dataset_path(relative: str, settings: Settings | None = None) -> Path:
    """``relative`` (e.g. ``ai4i2020/ai4i2020.csv``) under :func:`datasets_root`."""
    return datasets_root(settings) / relative


def missing_message(path: Path, dataset: str, *, what: str = "file") -> str:
    """One sentence: what is missing, in which folder, and the command that downloads it."""
    root = datasets_root()
    try:
        path.resolve().relative_to(root.resolve())
        inside = True
    except ValueError:
        inside = False
    where = (
        f"in the datasets folder {root} (SM_DATASETS_DIR)"
        if inside
        else f"in {path.parent} (a path given explicitly; the datasets folder SM_DATASETS_DIR is {root})"
    )
    return (
        f"{dataset} dataset missing: expected the {what} {path.name!r} {where}, at {path}. "
        f"Download it with `{DATASETS_COMMAND} DATASETS={dataset}` "
        f"(python -m apps.cli datasets --only {dataset}), or set SM_DATASETS_DIR to a folder that holds it."
    )


def resolve_input(
    path: str | PathLike[str] | None,
    default: str,
    dataset: str,
    *,
    kind: str = "file",
    settings: Settings | None = None,
) -> Path:
    """The path a run reads: ``path`` as given (relative: to the working directory, the project root for notebooks)
    or, when None, ``default`` under the datasets folder. Raises :class:`DatasetMissingError` when it is not an existing
    ``kind`` (file or folder)."""
    resolved = dataset_path(default, settings) if path is None else Path(path).expanduser()
    exists = resolved.is_file() if kind == "file" else resolved.is_dir()
    if not exists:
        raise DatasetMissingError(missing_message(resolved, dataset, what=kind))
    return resolved
