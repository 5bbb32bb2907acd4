"""Alerting: alert_rules (with default rules), alert_events, alert_observations, maintenance_windows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 08:00:00+00:00

Idempotent like 0001: tables and indexes are created with IF NOT EXISTS and dropped with IF EXISTS; the
default rules are inserted with ON CONFLICT (name) DO NOTHING, so a re-run keeps rules an operator changed.

Default rules (severity from the rule; thresholds of the demo fleet's sensor types):
* ``anomaly-score``: every sensor, every stored anomaly (min_score 0), 3 anomalies within 10 minutes,
  resolved after 5 normal readings;
* ``temperature-high``: > 85 °C, high;
* ``vibration-iso10816-zone-d``: > 7.1 mm/s RMS (ISO 10816 zone D: damage likely), critical;
* ``pressure-range``: outside 2–10 bar, high;
* ``humidity-high``: > 90 %RH, medium;
* ``voltage-range``: outside 207–253 V (230 V ± 10 %, EN 50160), high;
* ``no-data``: every sensor, no reading for 15 minutes, medium.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
SEVERITIES = "severity IN ('info', 'low', 'medium', 'high', 'critical')"
KINDS = "kind IN ('anomaly_score', 'threshold', 'rate_of_change', 'no_data')"


def _tz(name: str, **kw: object) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def _id(type_: type[sa.types.TypeEngine] = sa.BigInteger) -> sa.Column:
    return sa.Column("id", type_(), sa.Identity(always=False), nullable=False)


def _text(name: str, nullable: bool = True, default: str | None = None) -> sa.Column:
    server_default = sa.text(f"'{default}'") if default is not None else None
    return sa.Column(name, sa.Text(), server_default=server_default, nullable=nullable)


def _int(name: str, default: int) -> sa.Column:
    return sa.Column(name, sa.Integer(), server_default=sa.text(str(default)), nullable=False)


def _ck(table: str, name: str, sql: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(sql, name=op.f(f"ck_{table}_{name}"))


def _fk(table: str, col: str, ref_table: str, ref_col: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [col], [f"{ref_table}.{ref_col}"], name=op.f(f"fk_{table}_{col}_{ref_table}"), ondelete=ondelete
    )


def _tables() -> list[tuple[str, list[sa.SchemaItem]]]:
    """(table name, columns and constraints) in dependency order."""
    return [
        ("alert_rules", [
            _id(), _text("name", False), _text("kind", False), _text("sensor_type"), _text("sensor_id"),
            sa.Column("params", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
            _text("severity", False, default="medium"),
            _int("open_after_k", 1), _int("window_minutes", 10), _int("resolve_after_m", 3),
            sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
            _tz("created_at", server_default=NOW, nullable=False),
            _ck("alert_rules", "kind", KINDS),
            _ck("alert_rules", "severity", SEVERITIES),
            _ck("alert_rules", "one_scope", "sensor_type IS NULL OR sensor_id IS NULL"),
            _ck("alert_rules", "open_after_k_positive", "open_after_k >= 1"),
            _ck("alert_rules", "window_minutes_positive", "window_minutes >= 1"),
            _ck("alert_rules", "resolve_after_m_positive", "resolve_after_m >= 1"),
            _fk("alert_rules", "sensor_id", "sensors", "sensor_id", "CASCADE"),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
            sa.UniqueConstraint("name", name=op.f("uq_alert_rules_name")),
        ]),
        ("alert_events", [
            _id(), sa.Column("alert_id", sa.BigInteger(), nullable=False), _text("from_status"),
            _text("to_status", False), _tz("at", server_default=NOW, nullable=False), _text("actor", False),
            _text("comment"),
            _fk("alert_events", "alert_id", "alerts", "id", "CASCADE"),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        ]),
        ("alert_observations", [
            sa.Column("alert_id", sa.BigInteger(), nullable=False), _tz("observed_at", nullable=False),
            sa.Column("value", sa.Double(), nullable=True),
            sa.Column("anomaly_id", sa.BigInteger(), nullable=True),
            _fk("alert_observations", "alert_id", "alerts", "id", "CASCADE"),
            _fk("alert_observations", "anomaly_id", "anomalies", "id", "SET NULL"),
            sa.PrimaryKeyConstraint("alert_id", "observed_at", name=op.f("pk_alert_observations")),
        ]),
        ("maintenance_windows", [
            _id(), sa.Column("asset_id", sa.Integer(), nullable=False), _tz("starts_at", nullable=False),
            _tz("ends_at", nullable=False), _text("reason"),
            _ck("maintenance_windows", "ends_after_starts", "ends_at > starts_at"),
            _fk("maintenance_windows", "asset_id", "assets", "id", "CASCADE"),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
        ]),
    ]


#: (index name, table, columns)
INDEXES: list[tuple[str, str, list[str]]] = [
    ("ix_alert_events_alert_id_at", "alert_events", ["alert_id", "at"]),
    ("ix_alert_observations_anomaly_id", "alert_observations", ["anomaly_id"]),
    ("ix_maintenance_windows_asset_id_ends_at", "maintenance_windows", ["asset_id", "ends_at"]),
]

#: (name, kind, sensor_type, params, severity, open_after_k, window_minutes, resolve_after_m)
DEFAULT_RULES: list[tuple[str, str, str | None, dict[str, float], str, int, int, int]] = [
    ("anomaly-score", "anomaly_score", None, {"min_score": 0.0}, "high", 3, 10, 5),
    ("temperature-high", "threshold", "temperature", {"max": 85.0}, "high", 3, 5, 5),
    ("vibration-iso10816-zone-d", "threshold", "vibration", {"max": 7.1}, "critical", 3, 5, 5),
    ("pressure-range", "threshold", "pressure", {"min": 2.0, "max": 10.0}, "high", 3, 5, 5),
    ("humidity-high", "threshold", "humidity", {"max": 90.0}, "medium", 3, 5, 5),
    ("voltage-range", "threshold", "voltage", {"min": 207.0, "max": 253.0}, "high", 3, 5, 5),
    ("no-data", "no_data", None, {"no_data_minutes": 15.0}, "medium", 1, 15, 1),
]


def upgrade() -> None:
    for name, items in _tables():
        op.create_table(name, *items, if_not_exists=True)
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, if_not_exists=True)
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("alert_rules")}
    if "window_minutes" not in columns:
        return  # re-run over a schema at 0005 or later, which owns the shipped rules from then on
    rules = sa.table(
        "alert_rules",
        sa.column("name", sa.Text()),
        sa.column("kind", sa.Text()),
        sa.column("sensor_type", sa.Text()),
        sa.column("params", postgresql.JSONB()),
        sa.column("severity", sa.Text()),
        sa.column("open_after_k", sa.Integer()),
        sa.column("window_minutes", sa.Integer()),
        sa.column("resolve_after_m", sa.Integer()),
    )
    for name, kind, sensor_type, params, severity, k, window, m in DEFAULT_RULES:
        op.execute(
            postgresql.insert(rules)
            .values(
                name=name,
                kind=kind,
                sensor_type=sensor_type,
                params=params,
                severity=severity,
                open_after_k=k,
                window_minutes=window,
                resolve_after_m=m,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )


def downgrade() -> None:
    # Indexes go with their tables; reverse dependency order so no FK blocks a drop.
    for name, _items in reversed(_tables()):
        op.drop_table(name, if_exists=True)
