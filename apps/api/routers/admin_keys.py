"""Admin endpoints for API keys (scope ``admin``): create (the secret is shown once), list, revoke (not the
configured keys: 409, see ``core.auth.keys.rotation_hint``)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, status

from apps.api.deps import SessionDep
from apps.api.errors import problem_responses
from apps.api.params import KeyIdPath, Limit, Offset
from apps.api.security import AdminPrincipal, get_authenticator
from core.auth.keys import ApiKeyService
from core.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from core.paging import Page

router = APIRouter(
    prefix="/api/v1/admin/api-keys",
    tags=["admin"],
    responses=problem_responses(401, 403, 429),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    description="Returns the new key's secret in `key`. It is stored only as a hash and is never shown again.",
    responses=problem_responses(422),
)
async def create_api_key(body: ApiKeyCreate, principal: AdminPrincipal, session: SessionDep) -> ApiKeyCreated:
    created = await ApiKeyService(session).create(name=body.name, scopes=body.scopes)
    principal.audit(
        "api_key.create",
        target=f"api_key:{created.row.id}",
        target_name=created.row.name,
        scopes=list(created.row.scopes),
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(created.row).model_dump(), key=created.key)


@router.get(
    "",
    response_model=Page[ApiKeyRead],
    summary="List API keys",
    description="Names, scopes and dates only: neither keys nor their hashes are ever returned.",
    responses=problem_responses(422),
)
async def list_api_keys(
    principal: AdminPrincipal,
    session: SessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
    include_revoked: bool = True,
) -> Page[ApiKeyRead]:
    rows, total = await ApiKeyService(session).page(
        limit=limit, offset=offset, include_revoked=include_revoked
    )
    return Page[ApiKeyRead].of(rows, total=total, limit=limit, offset=offset)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyRead,
    summary="Revoke an API key",
    description=(
        "Sets `revoked_at` (idempotent). This process rejects the key at once; other API processes within "
        "`SM_API_KEY_CACHE_TTL_S` seconds (their key cache). The configured keys (`bootstrap`: SM_API_KEY, "
        "`console`: SM_CONSOLE_API_KEY, `simulator`: SM_SIMULATOR_API_KEY) answer 409: they are rotated by "
        "setting a new value and restarting the API, which revokes the old one."
    ),
    responses=problem_responses(404, 409, 422),
)
async def revoke_api_key(
    key_id: KeyIdPath,
    principal: AdminPrincipal,
    session: SessionDep,
    request: Request,
    background: BackgroundTasks,
) -> ApiKeyRead:
    row = await ApiKeyService(session).revoke(key_id)
    principal.audit(
        "api_key.revoke",
        target=f"api_key:{row.id}",
        target_name=row.name,
    )
    authenticator = get_authenticator(request)
    authenticator.invalidate(key_id)
    background.add_task(authenticator.invalidate, key_id)  # again after the commit (a lookup in between)
    return ApiKeyRead.model_validate(row)
