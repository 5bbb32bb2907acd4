"""``/docs`` and ``/redoc`` work without internet: their pages reference same-origin URLs only, and every asset
they reference is served by the API itself (uvicorn over TCP on 127.0.0.1, no database needed)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import uvicorn

from apps.api.docs import STATIC_URL
from apps.api.main import create_app
from core.config import Settings

#: expected media type per asset suffix
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".json": ("application/json",),
}
EXTERNAL = re.compile(r"(?:https?:)?//", re.IGNORECASE)


class _References(HTMLParser):
    """Every URL a page makes the browser load: src/href attributes, ReDoc's spec-url, Swagger UI's ``url:``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.urls.append(value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls += re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", data)


@pytest.fixture
async def base_url(offline_settings: Settings) -> AsyncIterator[str]:
    """The API over real TCP. Its socket listens before the server task runs: no waiting for start-up."""
    async for url in _serve(offline_settings):
        yield url


async def _serve(settings: Settings) -> AsyncIterator[str]:
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    # lifespan off: the pages need neither the database nor the bus
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _page_references(client: httpx.AsyncClient, path: str) -> list[str]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not EXTERNAL.search(html), f"{path} references another origin: {EXTERNAL.search(html)}"
    parser = _References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
    ],
)
async def test_docs_pages_load_only_same_origin_assets(base_url: str, page: str, expected: set[str]) -> None:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30) as client:
        urls = await _page_references(client, page)
        assert {url.rsplit("/", 1)[-1] for url in urls} == expected, urls
        for url in urls:
            assert url.startswith("/"), f"{page}: {url} is not a same-origin path"
            response = await client.get(url)
            assert response.status_code == 200, f"{page}: {url} → {response.status_code}"
            suffix = url[url.rfind(".") :]
            media = response.headers["content-type"].split(";")[0].strip()
            assert media in CONTENT_TYPES[suffix], f"{url}: {media}"
            assert len(response.content) > 1000, f"{url}: {len(response.content)} bytes"
        if page == "/docs":
            # Swagger UI's own JavaScript is the real bundle, not an error page
            bundle = await client.get(next(u for u in urls if u.endswith("swagger-ui-bundle.js")))
            assert b"SwaggerUIBundle" in bundle.content


async def test_oauth2_redirect_page_is_served(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30) as client:
        response = await client.get("/docs/oauth2-redirect")
        assert response.status_code == 200
        assert not EXTERNAL.search(response.text)


async def test_no_docs_or_assets_when_the_description_is_private(offline_settings: Settings) -> None:
    settings: Any = offline_settings.model_copy(update={"openapi_public": False})
    async for base_url in _serve(settings):
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30) as client:
            for path in ("/docs", "/redoc", "/openapi.json", f"{STATIC_URL}/swagger-ui-bundle.js"):
                assert (await client.get(path)).status_code == 404, path
