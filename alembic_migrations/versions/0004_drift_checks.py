"""ML operations: drift_checks (results of the drift agent, core/ml/drift/statistics.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00+00:00

One row per drift check of a sensor (KS test and PSI of the recent window against the reference window, the
thresholds used and the verdict); unique per (sensor_id, recent_end) so that re-running a check over the same
data inserts nothing. Idempotent like 0001/0003 (IF NOT EXISTS / IF EXISTS).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "drift_checks"


def _tz(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _double(name: str) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=False)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("sensor_type", sa.Text(), nullable=False),
        _tz("checked_at"),
        _tz("reference_start"),
        _tz("reference_end"),
        _tz("recent_start"),
        _tz("recent_end"),
        sa.Column("reference_count", sa.Integer(), nullable=False),
        sa.Column("recent_count", sa.Integer(), nullable=False),
        _double("ks_statistic"),
        _double("ks_pvalue"),
        _double("psi"),
        _double("ks_pvalue_threshold"),
        _double("psi_threshold"),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("retrain_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["sensor_id"],
            ["sensors.sensor_id"],
            name=op.f("fk_drift_checks_sensor_id_sensors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_checks")),
        sa.UniqueConstraint("sensor_id", "recent_end", name=op.f("uq_drift_checks_sensor_id_recent_end")),
        if_not_exists=True,
    )
    op.create_index("ix_drift_checks_checked_at", TABLE, ["checked_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table(TABLE, if_exists=True)
