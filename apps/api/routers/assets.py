"""Assets: list and get (scope ``read``); create and change (scope ``admin``). HTTP concerns only.

An asset is a machine that carries sensors and receives maintenance; maintenance tasks and alert suppression
(open work order, maintenance window) key on it. The list keeps its OpenAPI tag ``queries``, the rest ``fleet``;
``GET /{id}/rul`` (remaining useful life from the asset's stored readings, ``core.ml.rul.serving``) is tagged ``ml``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import AssetIdPath, Limit, Offset, QueryServiceDep, TextQuery
from apps.api.routers.ml import ServerDep
from apps.api.security import AdminPrincipal, ReadPrincipal
from core.fleet.schemas import AssetCreate, AssetUpdate
from core.fleet.service import FleetService
from core.ml.rul.repository import RulRepository
from core.ml.rul.schemas import RulEstimateRead
from core.ml.rul.serving import estimate_asset
from core.paging import Page, PageRequest
from core.queries.schemas import AssetFilter, AssetRead, AssetSort

router = APIRouter(prefix="/api/v1/assets", responses=problem_responses(401, 403, 429))


@router.get(
    "",
    tags=["queries"],
    response_model=Page[AssetRead],
    summary="List assets",
    description="Filter by `site` and `kind`; sort by a field (`-` for descending); offset pagination.",
    responses=problem_responses(422),
)
async def list_assets(
    principal: ReadPrincipal,
    service: QueryServiceDep,
    site: TextQuery = None,
    kind: TextQuery = None,
    sort: AssetSort = "id",
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AssetRead]:
    return await service.assets(AssetFilter(site=site, kind=kind), PageRequest(sort, limit, offset))


@router.get(
    "/{asset_id}",
    tags=["fleet"],
    response_model=AssetRead,
    summary="Get an asset",
    responses=problem_responses(404, 422),
)
async def get_asset(asset_id: AssetIdPath, principal: ReadPrincipal, session: SessionDep) -> AssetRead:
    return AssetRead.model_validate(await FleetService(session).asset(asset_id))


@router.post(
    "",
    tags=["fleet"],
    status_code=status.HTTP_201_CREATED,
    response_model=AssetRead,
    summary="Create an asset",
    description="A machine that carries sensors and receives maintenance. Names are unique (409 otherwise).",
    responses=problem_responses(409, 422),
)
async def create_asset(body: AssetCreate, principal: AdminPrincipal, session: SessionDep) -> AssetRead:
    asset = await FleetService(session).create_asset(body)
    principal.audit("asset.create", target=f"asset:{asset.id}", target_name=asset.name)
    return AssetRead.model_validate(asset)


@router.patch(
    "/{asset_id}",
    tags=["fleet"],
    response_model=AssetRead,
    summary="Change an asset",
    description="Only the fields sent change; `null` clears `site` or `kind`. A name in use by another asset is a 409.",
    responses=problem_responses(404, 409, 422),
)
async def update_asset(
    asset_id: AssetIdPath, body: AssetUpdate, principal: AdminPrincipal, session: SessionDep
) -> AssetRead:
    asset = await FleetService(session).update_asset(asset_id, body)
    principal.audit("asset.update", target=f"asset:{asset.id}", target_name=asset.name)
    return AssetRead.model_validate(asset)


@router.get(
    "/{asset_id}/rul",
    tags=["ml"],
    response_model=RulEstimateRead,
    summary="Remaining useful life of an asset",
    description=(
        "Estimate (cycles, with the model's conformal interval, 90 % by default) from the asset's stored readings, by "
        "the champion of `rul_<asset kind>` (or `model`). The asset's sensors are read by type: one sensor per model "
        "channel, its type the channel name (C-MAPSS mnemonics such as `T24`, `Ps30`); a cycle is a timestamp at "
        "which every channel sensor has a reading. 404: no such asset or model; 409: the asset has no kind, a channel "
        "has no sensor (or two), too few cycles, or the model has no champion; 503: the model registry is down."
    ),
    responses=problem_responses(404, 409, 422, 503),
)
async def get_asset_rul(
    asset_id: AssetIdPath,
    principal: ReadPrincipal,
    session: SessionDep,
    server: ServerDep,
    model: Annotated[
        str | None, Query(max_length=200, pattern=r"^rul_[A-Za-z0-9_.\-]+$", description="A `rul_<name>` model.")
    ] = None,
) -> RulEstimateRead:
    estimate = await estimate_asset(RulRepository(session), server, asset_id, model)
    return estimate.read()
