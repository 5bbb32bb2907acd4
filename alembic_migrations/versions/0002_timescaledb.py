"""TimescaleDB layer on sensor_readings, or the plain-PostgreSQL fallback.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:40:00+00:00

Detects the extension (``core.db.timescale.AVAILABLE_SQL``: listed in pg_available_extensions and either
installed or preloaded). ``alembic -x timescaledb=off upgrade head`` forces the plain branch; in offline mode
(``--sql``) nothing can be detected and ``-x timescaledb=on`` selects the TimescaleDB branch (default plain).

TimescaleDB branch: CREATE EXTENSION IF NOT EXISTS timescaledb; hypertable on ``timestamp`` (1-day chunks,
create_default_indexes => false); compression segmented by sensor_id after ``settings.compress_after_days``;
retention after ``settings.retention_days``; continuous aggregate ``sensor_readings_hourly`` (created in an
autocommit block: CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous) cannot run in a transaction)
with a refresh policy. Every step is guarded (if_not_exists / IF NOT EXISTS), so a re-run is a no-op.

Plain branch: a live view ``sensor_readings_hourly`` with the same columns, computed with date_bin.

Downgrade reverses the branch that exists in the database: removes the refresh policy and the continuous
aggregate, the retention and compression policies, decompresses, and turns the hypertable back into the plain
table of revision 0001 (same rows, keys and names); or drops the plain view. The timescaledb extension is
left installed on purpose: it is database-wide, may be used by other schemas, was perhaps installed by the
image's init scripts, and DROP/ALTER EXTENSION timescaledb should run in a fresh session. Drop it by hand
(``DROP EXTENSION timescaledb``) if you want it gone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import context, op

from core.config import get_settings
from core.db import timescale

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _x_timescaledb() -> str:
    return context.get_x_argument(as_dictionary=True).get("timescaledb", "auto").lower()


def _use_timescaledb() -> bool:
    choice = _x_timescaledb()
    if choice in {"off", "false", "0", "no"}:
        log.info("timescaledb disabled with -x timescaledb=off: plain PostgreSQL branch")
        return False
    if context.is_offline_mode():  # --sql: nothing to detect, the caller chooses (default plain)
        return choice in {"on", "true", "1", "yes"}
    available = timescale.timescaledb_available_sync(op.get_bind())
    log.info("timescaledb %s", "available: hypertable branch" if available else "not available: plain branch")
    return available


def upgrade() -> None:
    if not _use_timescaledb():
        for statement in timescale.plain_upgrade_statements():
            op.execute(statement)
        return
    settings = get_settings()
    options = timescale.TimescaleOptions(
        compress_after_days=settings.compress_after_days, retention_days=settings.retention_days
    )
    for statement in timescale.timescale_upgrade_statements(options):
        op.execute(statement)
    # Commits the work so far; the continuous aggregate is created outside any transaction block.
    with op.get_context().autocommit_block():
        op.execute(timescale.hourly_cagg_sql())
    op.execute(timescale.hourly_cagg_policy_sql(options))


def downgrade() -> None:
    if context.is_offline_mode():
        installed = _x_timescaledb() in {"on", "true", "1", "yes"}
    else:
        installed = timescale.timescaledb_installed_sync(op.get_bind())
    statements = timescale.timescale_downgrade_statements() if installed else timescale.plain_downgrade_statements()
    for statement in statements:
        op.execute(statement)
