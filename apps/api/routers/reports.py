"""Committed results for the console (scope ``read``): the ML reports under ``docs/ml/`` (gauntlet and training
summaries, their plots) and the demo datasets under ``data/``. HTTP only; reading and the allow-lists are in
``core.ml.reports``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse

from apps.api.errors import problem_responses
from apps.api.security import require_scope
from core.auth.keys import READ
from core.ml.reports import DatasetList, ReportList, ReportRead, ReportStore
from core.schemas_common import NO_CONTROL

router = APIRouter(
    prefix="/api/v1",
    tags=["reports"],
    dependencies=[Depends(require_scope(READ))],
    responses=problem_responses(401, 403, 429),
)

NAME = Path(pattern=r"^[a-z0-9_]{1,40}$", description="A report name from `GET /api/v1/ml/reports`.")


def get_report_store() -> ReportStore:
    """The project's ``docs/ml`` and ``data`` (tests override this dependency)."""
    return ReportStore()


StoreDep = Annotated[ReportStore, Depends(get_report_store)]
CACHE = {"Cache-Control": "private, max-age=60"}
BINARY = {"type": "string", "format": "binary"}


def file_response(media_type: str, schema: dict[str, str], description: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of a route that answers a file, followed by its 404 and 422."""
    content = {media_type: {"schema": schema}}
    ok: dict[int | str, dict[str, Any]] = {200: {"content": content, "description": description}}
    return ok | problem_responses(404, 422)


@router.get(
    "/ml/reports",
    response_model=ReportList,
    summary="List ML reports",
    description=(
        "The gauntlets (AI4I classification, IMS/CWRU vibration, MIMII audio) and the training notebooks' reports: "
        "title, the command that produces each, whether its summary exists and its plot names."
    ),
)
def list_reports(store: StoreDep) -> ReportList:
    return store.list()


@router.get(
    "/ml/reports/{name}",
    response_model=ReportRead,
    summary="One ML report with its summary",
    description="The report's summary file as written (`summary` is null while the report was never produced).",
    responses=problem_responses(404, 422),
)
def read_report(store: StoreDep, name: Annotated[str, NAME]) -> ReportRead:
    return store.read(name)


@router.get(
    "/ml/reports/{name}/plots/{plot:path}",
    response_class=FileResponse,
    summary="One plot of an ML report (PNG)",
    description="Only names listed in the report's `plots` are served; anything else is a 404.",
    responses=file_response("image/png", BINARY, "The PNG file."),
)
def read_plot(
    store: StoreDep,
    name: Annotated[str, NAME],
    plot: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_CONTROL, description="Plot name.")],
) -> FileResponse:
    return FileResponse(store.plot_path(name, plot), media_type="image/png", headers=CACHE)


@router.get(
    "/datasets",
    response_model=DatasetList,
    summary="List the demo datasets",
    description="The committed demo data: the master dataset (`sensor_data`) and its injected faults.",
)
def list_datasets(store: StoreDep) -> DatasetList:
    return store.datasets()


@router.get(
    "/datasets/{name}",
    response_class=FileResponse,
    summary="One demo dataset (CSV)",
    description="The file as committed (`text/csv`); 404 with the command that produces it while it is missing.",
    responses=file_response("text/csv", {"type": "string"}, "The CSV file."),
)
def read_dataset(store: StoreDep, name: Annotated[str, NAME]) -> FileResponse:
    path = store.dataset_path(name)
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=path.name, headers=CACHE)
