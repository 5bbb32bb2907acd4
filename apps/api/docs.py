"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served from packaged assets, so they work without internet.

FastAPI's built-in pages load their JavaScript, CSS and favicon from a CDN (cdn.jsdelivr.net), which leaves
``/docs`` blank on an air-gapped plant network. The same pages are built here with FastAPI's own HTML helpers,
pointing at the copies of ``swagger-ui-bundle.js``, ``swagger-ui.css``, ``redoc.standalone.js`` and the favicon
that the ``fastapi-offline`` package ships, mounted under :data:`STATIC_URL`. Swagger UI's validator badge (an
image from validator.swagger.io) is switched off and ReDoc is told not to load Google Fonts: the pages reference
same-origin URLs only.

The app must be created with ``docs_url=None`` and ``redoc_url=None`` (FastAPI's CDN pages off);
:func:`install_docs` adds ours. Like the OpenAPI description, they are served only when ``SM_OPENAPI_PUBLIC``
is on (the caller decides).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
STATIC_URL = "/docs-assets"
#: The assets packaged by fastapi-offline (Swagger UI bundle and CSS, ReDoc standalone bundle, favicon).
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def install_docs(app: FastAPI) -> None:
    """Mount the packaged assets and add ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` to ``app``."""
    missing = [name for name in ASSETS if not (ASSETS_DIR / name).is_file()]
    if missing:  # a broken install: fail at start-up rather than serve blank pages
        raise RuntimeError(f"API documentation assets missing in {ASSETS_DIR}: {', '.join(missing)}")
    app.mount(STATIC_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{STATIC_URL}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            # validatorUrl null: no badge image fetched from validator.swagger.io
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )


__all__ = ["ASSETS", "DOCS_URL", "REDOC_URL", "STATIC_URL", "install_docs"]
