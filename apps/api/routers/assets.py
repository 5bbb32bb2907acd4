"""Assets: list and get (scope ``read``); create and change (scope ``admin``). HTTP concerns only.

An asset is a machine that carries sensors and receives maintenance; maintenance tasks and alert suppression
(open work order, maintenance window) key on it. The list keeps its OpenAPI tag ``queries``, the rest ``fleet``.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import AssetIdPath, Limit, Offset, QueryServiceDep, TextQuery
from apps.api.security import AdminPrincipal, ReadPrincipal
from core.fleet.schemas import AssetCreate, AssetUpdate
from core.fleet.service import FleetService
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
