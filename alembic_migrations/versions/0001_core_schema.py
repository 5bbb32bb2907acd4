"""Core schema: every table of DESIGN.md §4 plus injected_faults.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 06:20:56+00:00

Idempotent: tables and indexes are created with IF NOT EXISTS and dropped with IF EXISTS, so a re-run after
a downgrade, or over objects that already exist, succeeds. sensor_readings is a plain table here; the
TimescaleDB layer (hypertable, compression, retention, hourly rollup) is revision 0002.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def _tz(name: str, **kw: object) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def _created_at() -> sa.Column:
    return _tz("created_at", server_default=NOW, nullable=False)


def _id(type_: type[sa.types.TypeEngine] = sa.BigInteger) -> sa.Column:
    return sa.Column("id", type_(), sa.Identity(always=False), nullable=False)


def _text(name: str, nullable: bool = True, default: str | None = None) -> sa.Column:
    server_default = sa.text(f"'{default}'") if default is not None else None
    return sa.Column(name, sa.Text(), server_default=server_default, nullable=nullable)


def _pk(table: str, *cols: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*cols, name=op.f(f"pk_{table}"))


def _ck(table: str, name: str, sql: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(sql, name=op.f(f"ck_{table}_{name}"))


def _fk(table: str, col: str, ref_table: str, ref_col: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [col], [f"{ref_table}.{ref_col}"], name=op.f(f"fk_{table}_{col}_{ref_table}"), ondelete=ondelete
    )


def _tables() -> list[tuple[str, list[sa.SchemaItem]]]:
    """(table name, columns and constraints) in dependency order."""
    return [
        ("api_keys", [
            _id(), _text("name", False), _text("key_hash", False),
            sa.Column("scopes", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"),
                      nullable=False),
            _created_at(), _tz("last_used_at"), _tz("revoked_at"),
            _pk("api_keys", "id"),
            sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        ]),
        ("assets", [
            _id(sa.Integer), _text("name", False), _text("site"), _text("kind"), _created_at(),
            _pk("assets", "id"),
            sa.UniqueConstraint("name", name=op.f("uq_assets_name")),
        ]),
        ("dead_letters", [
            _id(), _text("event_type", False), sa.Column("payload", postgresql.JSONB(), nullable=False),
            _text("handler", False), _text("error", False),
            sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
            _created_at(), _tz("replayed_at"),
            _ck("dead_letters", "attempts_non_negative", "attempts >= 0"),
            _pk("dead_letters", "id"),
        ]),
        ("outbox", [
            _id(), _text("event_type", False), sa.Column("payload", postgresql.JSONB(), nullable=False),
            _created_at(), _tz("published_at"),
            _pk("outbox", "id"),
        ]),
        ("webhooks", [
            _id(), _text("name", False), _text("target", False),
            sa.Column("event_types", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"),
                      nullable=False),
            sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
            _created_at(),
            _pk("webhooks", "id"),
            sa.UniqueConstraint("name", name=op.f("uq_webhooks_name")),
        ]),
        ("idempotency_keys", [
            sa.Column("api_key_id", sa.BigInteger(), nullable=False), _text("key", False),
            _text("request_hash", False), _text("status", False, default="in_progress"),
            sa.Column("response", postgresql.JSONB(), nullable=True),
            sa.Column("response_status_code", sa.Integer(), nullable=True),
            _created_at(),
            _tz("expires_at", server_default=sa.text("(now() + interval '24 hours')"), nullable=False),
            _ck("idempotency_keys", "status", "status IN ('in_progress', 'completed')"),
            _ck("idempotency_keys", "completed_has_status_code",
                "status <> 'completed' OR response_status_code IS NOT NULL"),
            _ck("idempotency_keys", "expires_after_created", "expires_at > created_at"),
            _fk("idempotency_keys", "api_key_id", "api_keys", "id", "CASCADE"),
            _pk("idempotency_keys", "api_key_id", "key"),
        ]),
        ("notification_deliveries", [
            _id(), sa.Column("webhook_id", sa.BigInteger(), nullable=True),
            _text("channel", False, default="webhook"), _text("target", False), _text("event", False),
            sa.Column("payload", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
            _text("status", False, default="pending"),
            sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
            _text("last_error"), _created_at(), _tz("delivered_at"),
            _ck("notification_deliveries", "channel", "channel IN ('webhook', 'email')"),
            _ck("notification_deliveries", "status", "status IN ('pending', 'delivered', 'failed')"),
            _ck("notification_deliveries", "attempts_non_negative", "attempts >= 0"),
            _ck("notification_deliveries", "webhook_has_webhook_id",
                "channel <> 'webhook' OR webhook_id IS NOT NULL"),
            _fk("notification_deliveries", "webhook_id", "webhooks", "id", "CASCADE"),
            _pk("notification_deliveries", "id"),
        ]),
        ("sensors", [
            _text("sensor_id", False), sa.Column("asset_id", sa.Integer(), nullable=True),
            _text("type", False), _text("unit"), _text("location"), _text("status", False, default="active"),
            _created_at(),
            _fk("sensors", "asset_id", "assets", "id", "SET NULL"),
            _pk("sensors", "sensor_id"),
        ]),
        ("alerts", [
            _id(), _text("sensor_id", False), _text("rule", False), _text("severity", False),
            _text("status", False, default="open"), _tz("opened_at", server_default=NOW, nullable=False),
            _tz("acknowledged_at"), _tz("resolved_at"),
            sa.Column("anomaly_count", sa.Integer(), server_default=sa.text("1"), nullable=False),
            _ck("alerts", "status", "status IN ('open', 'acknowledged', 'resolved')"),
            _ck("alerts", "severity", "severity IN ('info', 'low', 'medium', 'high', 'critical')"),
            _ck("alerts", "anomaly_count_non_negative", "anomaly_count >= 0"),
            _ck("alerts", "acknowledged_at_set", "status <> 'acknowledged' OR acknowledged_at IS NOT NULL"),
            _ck("alerts", "resolved_at_set", "status <> 'resolved' OR resolved_at IS NOT NULL"),
            _fk("alerts", "sensor_id", "sensors", "sensor_id", "CASCADE"),
            _pk("alerts", "id"),
        ]),
        ("anomalies", [
            _id(), _text("sensor_id", False), _tz("timestamp", nullable=False),
            sa.Column("value", sa.Double(), nullable=False), sa.Column("score", sa.Double(), nullable=False),
            _text("method", False), _text("model_name"), _text("model_version"), _created_at(),
            _fk("anomalies", "sensor_id", "sensors", "sensor_id", "CASCADE"),
            _pk("anomalies", "id"),
            sa.UniqueConstraint("sensor_id", "timestamp", "method",
                                name=op.f("uq_anomalies_sensor_id_timestamp_method")),
        ]),
        ("injected_faults", [
            _id(), _text("sensor_id", False), _text("kind", False), _tz("started_at", nullable=False),
            _tz("ended_at"), sa.Column("magnitude", sa.Double(), nullable=True), _text("description"),
            _created_at(),
            _ck("injected_faults", "ended_after_started", "ended_at IS NULL OR ended_at >= started_at"),
            _fk("injected_faults", "sensor_id", "sensors", "sensor_id", "CASCADE"),
            _pk("injected_faults", "id"),
        ]),
        ("sensor_readings", [
            _tz("timestamp", nullable=False), _text("sensor_id", False),
            sa.Column("value", sa.Double(), nullable=False), _text("unit"),
            sa.Column("quality", sa.Double(), nullable=True),
            _tz("ingested_at", server_default=NOW, nullable=False),
            _fk("sensor_readings", "sensor_id", "sensors", "sensor_id", "CASCADE"),
            _pk("sensor_readings", "timestamp", "sensor_id"),
        ]),
        ("maintenance_tasks", [
            _id(), sa.Column("asset_id", sa.Integer(), nullable=True), _text("sensor_id"),
            sa.Column("alert_id", sa.BigInteger(), nullable=True), _text("title", False), _text("description"),
            _text("priority", False, default="medium"), _text("status", False, default="open"),
            _tz("due_at"), _text("assignee"), _created_at(),
            _ck("maintenance_tasks", "status", "status IN ('open', 'in_progress', 'done', 'cancelled')"),
            _ck("maintenance_tasks", "priority", "priority IN ('low', 'medium', 'high', 'critical')"),
            _fk("maintenance_tasks", "asset_id", "assets", "id", "SET NULL"),
            _fk("maintenance_tasks", "sensor_id", "sensors", "sensor_id", "SET NULL"),
            _fk("maintenance_tasks", "alert_id", "alerts", "id", "SET NULL"),
            _pk("maintenance_tasks", "id"),
            sa.UniqueConstraint("alert_id", name=op.f("uq_maintenance_tasks_alert_id")),
        ]),
        ("maintenance_logs", [
            _id(), sa.Column("task_id", sa.BigInteger(), nullable=False),
            _tz("completed_at", server_default=NOW, nullable=False), _text("outcome", False),
            _text("technician"), _text("notes"),
            _ck("maintenance_logs", "outcome", "outcome IN ('fault_confirmed', 'no_fault_found')"),
            _fk("maintenance_logs", "task_id", "maintenance_tasks", "id", "CASCADE"),
            _pk("maintenance_logs", "id"),
        ]),
    ]


#: (index name, table, columns, options)
INDEXES: list[tuple[str, str, list[str | sa.TextClause], dict[str, object]]] = [
    ("ix_dead_letters_event_type", "dead_letters", ["event_type"], {}),
    ("ix_dead_letters_pending", "dead_letters", ["created_at"],
     {"postgresql_where": sa.text("replayed_at IS NULL")}),
    ("ix_outbox_unpublished", "outbox", ["id"], {"postgresql_where": sa.text("published_at IS NULL")}),
    ("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], {}),
    ("ix_notification_deliveries_pending", "notification_deliveries", ["created_at"],
     {"postgresql_where": sa.text("status = 'pending'")}),
    ("ix_notification_deliveries_webhook_id", "notification_deliveries", ["webhook_id"], {}),
    ("ix_sensors_asset_id", "sensors", ["asset_id"], {}),
    ("ix_sensors_type", "sensors", ["type"], {}),
    ("ix_alerts_sensor_id_opened_at", "alerts", ["sensor_id", "opened_at"], {}),
    ("ix_alerts_status_opened_at", "alerts", ["status", "opened_at"], {}),
    # At most one unresolved (open or acknowledged) alert per sensor and rule.
    ("uq_alerts_sensor_id_rule_unresolved", "alerts", ["sensor_id", "rule"],
     {"unique": True, "postgresql_where": sa.text("status IN ('open', 'acknowledged')")}),
    ("ix_anomalies_timestamp", "anomalies", ["timestamp"], {}),
    ("ix_injected_faults_sensor_id_started_at", "injected_faults", ["sensor_id", "started_at"], {}),
    ("ix_sensor_readings_sensor_id_timestamp", "sensor_readings",
     ["sensor_id", sa.text('"timestamp" DESC')], {}),
    ("ix_maintenance_tasks_asset_id_status", "maintenance_tasks", ["asset_id", "status"], {}),
    ("ix_maintenance_tasks_sensor_id", "maintenance_tasks", ["sensor_id"], {}),
    ("ix_maintenance_tasks_status_due_at", "maintenance_tasks", ["status", "due_at"], {}),
    ("ix_maintenance_logs_completed_at", "maintenance_logs", ["completed_at"], {}),
    ("ix_maintenance_logs_task_id", "maintenance_logs", ["task_id"], {}),
]


def upgrade() -> None:
    for name, items in _tables():
        op.create_table(name, *items, if_not_exists=True)
    for name, table, columns, options in INDEXES:
        op.create_index(name, table, columns, if_not_exists=True, **options)


def downgrade() -> None:
    # Indexes go with their tables; reverse dependency order so no FK blocks a drop.
    for name, _items in reversed(_tables()):
        op.drop_table(name, if_exists=True)
