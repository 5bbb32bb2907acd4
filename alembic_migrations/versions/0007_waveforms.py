"""Vibration waveform snapshots and their bearing diagnoses (issue 16).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 03:30:00+00:00

* ``waveform_sensors``: configuration of a ``vibration_waveform`` sensor (bearing geometry, mounting, nominal
  speed, envelope band, its RMS and kurtosis feature sensors);
* ``waveform_snapshots``: one waveform per (sensor, timestamp), samples as little-endian float32 ``bytea``
  (4 bytes a sample), RMS / kurtosis / peak. Retention (``core.waveforms.service``): samples are dropped after
  30 days, rows deleted after ``SM_RETENTION_DAYS`` (180), both by the ingest of the sensor's next snapshot;
* ``waveform_diagnoses``: one diagnosis per snapshot (unique ``snapshot_id``: redelivery writes nothing), with
  the alert it raised or counted on. Kept when the snapshot is deleted (``snapshot_id`` set to NULL).

Plain tables on both PostgreSQL and TimescaleDB (snapshots are few and large; no hypertable).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tz(name: str, *, nullable: bool = False, now: bool = False) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.text("now()") if now else None,
        nullable=nullable,
    )


def _double(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _sensor_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["sensor_id"], ["sensors.sensor_id"], name=op.f(f"fk_{table}_sensor_id_sensors"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "waveform_sensors",
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("bearing", sa.Text(), nullable=False),
        sa.Column("mounting", sa.Text(), nullable=True),
        _double("nominal_rpm"),
        _double("band_low_hz", nullable=True),
        _double("band_high_hz", nullable=True),
        sa.Column("rms_sensor_id", sa.Text(), nullable=False),
        sa.Column("kurtosis_sensor_id", sa.Text(), nullable=False),
        _tz("created_at", now=True),
        sa.CheckConstraint("nominal_rpm > 0", name=op.f("ck_waveform_sensors_nominal_rpm_positive")),
        sa.CheckConstraint(
            "(band_low_hz IS NULL AND band_high_hz IS NULL) OR (band_low_hz > 0 AND band_high_hz > band_low_hz)",
            name=op.f("ck_waveform_sensors_band_ordered"),
        ),
        _sensor_fk("waveform_sensors"),
        sa.PrimaryKeyConstraint("sensor_id", name=op.f("pk_waveform_sensors")),
        if_not_exists=True,
    )
    op.create_table(
        "waveform_snapshots",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sensor_id", sa.Text(), nullable=False),
        _tz("timestamp"),
        _double("sample_rate_hz"),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        _double("rpm", nullable=True),
        sa.Column("samples", sa.LargeBinary(), nullable=True),
        _double("rms"),
        _double("kurtosis"),
        _double("peak"),
        _tz("created_at", now=True),
        sa.CheckConstraint("sample_rate_hz > 0", name=op.f("ck_waveform_snapshots_sample_rate_positive")),
        sa.CheckConstraint("sample_count > 0", name=op.f("ck_waveform_snapshots_sample_count_positive")),
        sa.CheckConstraint("rpm IS NULL OR rpm > 0", name=op.f("ck_waveform_snapshots_rpm_positive")),
        _sensor_fk("waveform_snapshots"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waveform_snapshots")),
        if_not_exists=True,
    )
    op.create_index(
        "uq_waveform_snapshots_sensor_id_timestamp",
        "waveform_snapshots",
        ["sensor_id", "timestamp"],
        unique=True,
        if_not_exists=True,
    )
    op.create_index("ix_waveform_snapshots_timestamp", "waveform_snapshots", ["timestamp"], if_not_exists=True)
    op.create_table(
        "waveform_diagnoses",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("sensor_id", sa.Text(), nullable=False),
        _tz("timestamp"),
        sa.Column("fault", sa.Text(), nullable=False),
        _double("score_db", nullable=True),
        _double("threshold_db", nullable=True),
        sa.Column("scores_db", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("defect_frequencies", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("bearing", sa.Text(), nullable=False),
        _double("rpm"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        _tz("created_at", now=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["waveform_snapshots.id"],
            name=op.f("fk_waveform_diagnoses_snapshot_id_waveform_snapshots"),
            ondelete="SET NULL",
        ),
        _sensor_fk("waveform_diagnoses"),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_waveform_diagnoses_alert_id_alerts"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waveform_diagnoses")),
        if_not_exists=True,
    )
    op.create_index(
        "uq_waveform_diagnoses_snapshot_id", "waveform_diagnoses", ["snapshot_id"], unique=True, if_not_exists=True
    )
    op.create_index(
        "ix_waveform_diagnoses_sensor_id_timestamp",
        "waveform_diagnoses",
        ["sensor_id", "timestamp"],
        if_not_exists=True,
    )
    op.create_index("ix_waveform_diagnoses_alert_id", "waveform_diagnoses", ["alert_id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("waveform_diagnoses", if_exists=True)
    op.drop_table("waveform_snapshots", if_exists=True)
    op.drop_table("waveform_sensors", if_exists=True)
