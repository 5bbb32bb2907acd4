"""The committed results the console shows, read from disk for the API (the console itself reads no files).

* ML reports: the gauntlets' and training notebooks' summaries (``docs/ml/<name>_summary.json``) and their plots
  (``docs/ml/<name>/**/*.png``);
* demo datasets: ``data/sensor_data.csv`` (the generated demo fleet) and ``data/sensor_data_faults.csv`` (its
  injected faults, ground truth).

Everything is reached through a fixed allow-list: a report or dataset name must be one of :data:`REPORTS` /
:data:`DATASETS`, and a plot must be one of the PNG files found under the report's folder (listed by this
module, never a path the caller builds), so no request can name a file outside these folders.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core.config import PROJECT_ROOT
from core.errors import NotFound

REPORTS_DIR = PROJECT_ROOT / "docs" / "ml"
"""Where the notebooks write their summaries and plots (committed)."""
DATA_DIR = PROJECT_ROOT / "data"
"""The committed demo dataset (``scripts/export_sensor_data_csv.py``)."""

PLOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}){0,3}\.png")
"""A plot's name relative to its report folder: up to four path segments of plain characters, ``.png``."""
MAX_PLOTS = 200


@dataclass(frozen=True)
class ReportSpec:
    title: str
    kind: str  # "gauntlet" (a benchmark on public data) or "training" (the platform's own models)
    summary_files: tuple[str, ...]  # tried in order, relative to REPORTS_DIR
    plot_dir: str  # relative to REPORTS_DIR
    produced_by: str  # the command that writes it


REPORTS: dict[str, ReportSpec] = {
    "ai4i": ReportSpec("AI4I 2020 classification gauntlet", "gauntlet", ("ai4i_summary.json", "ai4i/summary.json"),
                       "ai4i", "make classification-gauntlet"),
    "vibration": ReportSpec("Vibration gauntlet (IMS and CWRU bearings)", "gauntlet",
                            ("vibration_summary.json", "vibration/summary.json"), "vibration",
                            "make vibration-gauntlet"),
    "audio": ReportSpec("Audio gauntlet (MIMII machine sounds)", "gauntlet",
                        ("audio_summary.json", "audio/summary.json"), "audio", "make audio-gauntlet"),
    "anomaly": ReportSpec("Anomaly models", "training", ("anomaly_summary.json", "anomaly/summary.json"),
                          "anomaly", "make train-anomaly"),
    "forecast": ReportSpec("Forecast models", "training", ("forecast_summary.json", "forecast/summary.json"),
                           "forecast", "make train-forecast"),
    "eda": ReportSpec("Data exploration", "training", ("eda_summary.json", "eda/summary.json"), "eda",
                      "make eda"),
}  # fmt: skip


@dataclass(frozen=True)
class DatasetSpec:
    title: str
    file: str  # relative to DATA_DIR
    produced_by: str


DATASETS: dict[str, DatasetSpec] = {
    "sensor_data": DatasetSpec(
        "Master dataset: readings of the demo fleet", "sensor_data.csv",
        "python scripts/export_sensor_data_csv.py --from-generator (or make export-csv from a seeded database)",
    ),
    "sensor_data_faults": DatasetSpec(
        "Injected faults of the master dataset (ground truth)", "sensor_data_faults.csv",
        "python scripts/export_sensor_data_csv.py --from-generator",
    ),
}  # fmt: skip


class ReportNotFound(NotFound):
    slug = "report-not-found"
    title = "Report Not Found"


# --- schemas -------------------------------------------------------------------------------------------------------
class ReportInfo(BaseModel):
    name: str = Field(examples=["ai4i"])
    title: str = Field(examples=["AI4I 2020 classification gauntlet"])
    kind: str = Field(description="`gauntlet` (public benchmark data) or `training` (the platform's models).")
    produced_by: str = Field(description="The command that writes this report.", examples=["make audio-gauntlet"])
    summary_available: bool
    summary_file: str | None = Field(None, description="Relative to `docs/ml/`.", examples=["ai4i_summary.json"])
    updated_at: datetime | None = Field(None, description="When the summary file was last written (UTC).")
    plots: list[str] = Field(
        default_factory=list,
        description="Plot names for `GET /api/v1/ml/reports/{name}/plots/{plot}`, relative to the report folder.",
        examples=[["real/confusion_matrix.png"]],
    )


class ReportList(BaseModel):
    items: list[ReportInfo]


class ReportRead(ReportInfo):
    summary: dict[str, Any] | None = Field(None, description="The summary file as written (NaN/Infinity as null).")


class DatasetInfo(BaseModel):
    name: str = Field(examples=["sensor_data"])
    title: str
    file: str = Field(description="Relative to `data/`.", examples=["sensor_data.csv"])
    produced_by: str
    available: bool
    size_bytes: int | None = None
    updated_at: datetime | None = None


class DatasetList(BaseModel):
    items: list[DatasetInfo]


# --- reading -------------------------------------------------------------------------------------------------------
def _finite(value: Any) -> Any:
    """NaN and ±Infinity (valid in Python's JSON, not in JSON) as None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


class ReportStore:
    """The reports under ``reports_dir`` and the datasets under ``data_dir`` (defaults: the project's)."""

    def __init__(self, reports_dir: Path = REPORTS_DIR, data_dir: Path = DATA_DIR) -> None:
        self.reports_dir = reports_dir.resolve()
        self.data_dir = data_dir.resolve()

    # reports
    def _spec(self, name: str) -> ReportSpec:
        spec = REPORTS.get(name)
        if spec is None:
            raise ReportNotFound(f"no report named {name!r}; known: {', '.join(REPORTS)}")
        return spec

    def _summary_path(self, spec: ReportSpec) -> Path | None:
        return next((self.reports_dir / n for n in spec.summary_files if (self.reports_dir / n).is_file()), None)

    def plots(self, name: str) -> list[str]:
        """The report's PNG files (sorted names relative to its folder); files reached through a link that leaves
        the folder, or with names outside :data:`PLOT_NAME`, are not listed."""
        folder = self.reports_dir / self._spec(name).plot_dir
        if not folder.is_dir():
            return []
        root = folder.resolve()
        names = []
        for path in folder.rglob("*.png"):
            relative = path.relative_to(folder).as_posix()
            if PLOT_NAME.fullmatch(relative) and path.is_file() and path.resolve().is_relative_to(root):
                names.append(relative)
        return sorted(names)[:MAX_PLOTS]

    def info(self, name: str) -> ReportInfo:
        spec = self._spec(name)
        path = self._summary_path(spec)
        return ReportInfo(
            name=name, title=spec.title, kind=spec.kind, produced_by=spec.produced_by,
            summary_available=path is not None,
            summary_file=None if path is None else path.relative_to(self.reports_dir).as_posix(),
            updated_at=None if path is None else _mtime(path), plots=self.plots(name),
        )  # fmt: skip

    def list(self) -> ReportList:
        return ReportList(items=[self.info(name) for name in REPORTS])

    def read(self, name: str) -> ReportRead:
        """The report with its summary; an unreadable summary file is a 404 naming the file, not a 500."""
        info = self.info(name)
        summary = None
        if info.summary_file is not None:
            path = self.reports_dir / info.summary_file
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ReportNotFound(f"the summary of {name!r} ({info.summary_file}) is unreadable: {exc}") from exc
            summary = _finite(loaded) if isinstance(loaded, dict) else {"value": _finite(loaded)}
        return ReportRead(**info.model_dump(), summary=summary)

    def plot_path(self, name: str, plot: str) -> Path:
        """The file of one listed plot; anything not in :meth:`plots` (``..``, absolute, other types) is a 404."""
        if not PLOT_NAME.fullmatch(plot) or plot not in self.plots(name):
            raise ReportNotFound(f"report {name!r} has no plot {plot!r}")
        return self.reports_dir / self._spec(name).plot_dir / plot

    # datasets
    def _dataset(self, name: str) -> tuple[DatasetSpec, Path]:
        spec = DATASETS.get(name)
        if spec is None:
            raise ReportNotFound(f"no dataset named {name!r}; known: {', '.join(DATASETS)}")
        return spec, self.data_dir / spec.file

    def dataset_info(self, name: str) -> DatasetInfo:
        spec, path = self._dataset(name)
        available = path.is_file()
        return DatasetInfo(
            name=name, title=spec.title, file=spec.file, produced_by=spec.produced_by, available=available,
            size_bytes=path.stat().st_size if available else None, updated_at=_mtime(path) if available else None,
        )  # fmt: skip

    def datasets(self) -> DatasetList:
        return DatasetList(items=[self.dataset_info(name) for name in DATASETS])

    def dataset_path(self, name: str) -> Path:
        spec, path = self._dataset(name)
        if not path.is_file():
            raise ReportNotFound(f"{spec.file} does not exist yet: {spec.produced_by}")
        return path


__all__ = [
    "DATASETS",
    "REPORTS",
    "DatasetInfo",
    "DatasetList",
    "ReportInfo",
    "ReportList",
    "ReportNotFound",
    "ReportRead",
    "ReportStore",
]
