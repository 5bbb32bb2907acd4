"""The hourly continuous aggregate covers all history: refresh window = retention, materialised at once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 15:00:00+00:00

TimescaleDB branch only (nothing to do on plain PostgreSQL, where ``sensor_readings_hourly`` is a live view).
Revision 0002 gave the refresh policy of ``sensor_readings_hourly`` a window of the last 3 days: each run moved
the watermark to now − 1 h but materialised only those 3 days, so hourly and daily reads of anything older came
back with holes (issue 12). Here the policy is replaced by one whose window reaches back ``retention_days``
(how old a reading ingest accepts) and the aggregate is refreshed once over all existing history — which, on a
large database, takes about as long as reading every stored reading once. Outside a transaction block
(``refresh_continuous_aggregate`` refuses to run inside one).

Downgrade leaves the aggregate and the wider policy as they are: going back to a window that drops history
would reintroduce the defect, and revision 0002's downgrade removes both anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import context, op

from core.config import get_settings
from core.db import timescale

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def _has_hourly_aggregate() -> bool:
    if context.is_offline_mode():
        return context.get_x_argument(as_dictionary=True).get("timescaledb", "auto").lower() in {
            "on", "true", "1", "yes"
        }  # fmt: skip
    bind = op.get_bind()
    return timescale.timescaledb_installed_sync(bind) and bool(
        bind.exec_driver_sql(timescale.hourly_cagg_exists_sql()).scalar()
    )


def upgrade() -> None:
    if not _has_hourly_aggregate():
        return
    settings = get_settings()
    options = timescale.TimescaleOptions(
        compress_after_days=settings.compress_after_days, retention_days=settings.retention_days
    )
    log.info("sensor_readings_hourly: refresh window %s, materialising all history", options.refresh_window)
    with op.get_context().autocommit_block():
        op.execute(timescale.remove_hourly_cagg_policy_sql())
        op.execute(timescale.hourly_cagg_policy_sql(options))
        op.execute(timescale.refresh_hourly_cagg_sql(options))


def downgrade() -> None:
    """Nothing: see the module docstring."""
