"""Database health: reachability, migration revision and TimescaleDB presence (SQL only here)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.config import PROJECT_ROOT

VERSION_TABLE = "alembic_version"


class HealthRepository:
    """Read-only probes; works on a connection or a session (readiness uses its own short connection)."""

    def __init__(self, conn: AsyncConnection | AsyncSession) -> None:
        self._conn = conn

    async def ping(self) -> None:
        await self._conn.execute(text("SELECT 1"))

    async def migration_revisions(self) -> frozenset[str] | None:
        """Revisions recorded in ``alembic_version``; None when the table does not exist (never migrated)."""
        exists = await self._conn.scalar(
            text("SELECT to_regclass(:name) IS NOT NULL"), {"name": VERSION_TABLE}
        )
        if not exists:
            return None
        rows = await self._conn.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return frozenset(rows.all())

    async def timescaledb_version(self) -> str | None:
        """Installed TimescaleDB extension version, or None when the extension is not installed."""
        version: str | None = await self._conn.scalar(
            text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        )
        return version


@lru_cache(maxsize=4)
def migration_heads(project_root: str = str(PROJECT_ROOT)) -> frozenset[str]:
    """Head revision(s) of the migration scripts shipped with this code (read once per process).

    Raises ``FileNotFoundError`` when the project has no ``alembic.ini``/scripts (a broken install). Alembic is
    imported here, by the first readiness check, not by every process that imports the health probes.
    """
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    ini = Path(project_root) / "alembic.ini"
    scripts = Path(project_root) / "alembic_migrations"
    if not ini.is_file():
        raise FileNotFoundError(f"alembic.ini not found in {project_root}")
    cfg = Config(str(ini))
    cfg.set_main_option("script_location", str(scripts))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    if not heads:
        raise FileNotFoundError(f"no migration scripts in {scripts}")
    return frozenset(heads)
