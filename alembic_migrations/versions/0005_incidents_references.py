"""Cadence-aware alerting: rules counted in readings, incidents, healthy references of sensors.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 12:00:00+00:00

* ``alert_rules``: hysteresis in readings instead of wall-clock minutes: ``window_readings`` (k of the last n
  readings), ``max_age_minutes`` (optional age limit of a counted match), ``min_hold_minutes`` (an alert stays
  unresolved at least this long, in event time), ``unit`` (the unit a threshold rule's bounds are written in);
  ``window_minutes`` is dropped; kind ``flatline`` added. Rules an operator created keep their k and get
  ``window_readings = max(k, 20)`` and ``max_age_minutes`` = their old window. The shipped rules get the new
  defaults and three rules are added (``degradation``, ``flatline``, ``kurtosis-impulsive``); see
  ``DEFAULT_RULES``.
* ``alerts``: ``incident_id``, event-time ``event_opened_at`` / ``last_seen_at`` / ``event_resolved_at``,
  ``peak_score``.
* ``incidents`` and ``incident_events`` (one fault of an asset → one incident → at most one active work order).
* ``maintenance_tasks``: ``incident_id`` (one open or in-progress task per incident), ``event_opened_at``.
* ``sensor_references``: the healthy reference of each sensor for the degradation detector.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
SEVERITIES = "severity IN ('info', 'low', 'medium', 'high', 'critical')"
OLD_KINDS = "kind IN ('anomaly_score', 'threshold', 'rate_of_change', 'no_data')"
NEW_KINDS = "kind IN ('anomaly_score', 'threshold', 'rate_of_change', 'flatline', 'no_data')"
INCIDENT_EVENT_KINDS = (
    "kind IN ('opened', 'alert_joined', 'alert_resolved', 'resolved', 'reopened', 'work_order_opened', "
    "'escalated', 'closed', 'regime_change', 'reference_relearned')"
)
OUTLIER_METHODS = ["robust_z", "model"]

#: name → (kind, sensor_type, params, unit, severity, k, n, m, hold minutes, max age minutes)
DEFAULT_RULES: dict[str, tuple[str, str | None, dict, str | None, str, int, int, int, float, float | None]] = {
    "anomaly-score": (
        "anomaly_score", None, {"min_score": 0.0, "methods": OUTLIER_METHODS}, None, "high", 3, 20, 10, 30.0, None,
    ),
    "degradation": (
        "anomaly_score", None, {"min_score": 0.0, "methods": ["trend_ewma"]}, None, "medium", 6, 10, 10, 30.0, None,
    ),
    "temperature-high": ("threshold", "temperature", {"max": 85.0}, "°C", "high", 3, 20, 10, 30.0, None),
    "vibration-iso10816-zone-d": (
        "threshold", "vibration", {"max": 7.1}, "mm/s", "critical", 3, 20, 10, 30.0, None,
    ),
    "pressure-range": ("threshold", "pressure", {"min": 2.0, "max": 10.0}, "bar", "high", 3, 20, 10, 30.0, None),
    "humidity-high": ("threshold", "humidity", {"max": 90.0}, "%RH", "medium", 3, 20, 10, 30.0, None),
    "voltage-range": ("threshold", "voltage", {"min": 207.0, "max": 253.0}, "V", "high", 3, 20, 10, 30.0, None),
    "kurtosis-impulsive": ("threshold", "kurtosis", {"max": 3.0}, "", "high", 3, 20, 10, 30.0, None),
    "flatline": ("flatline", None, {"tolerance": 0.0}, None, "high", 30, 30, 5, 30.0, None),
    "no-data": (
        "no_data", None, {"interval_multiple": 10.0, "min_minutes": 2.0}, None, "medium", 1, 1, 1, 0.0, None,
    ),
}
NEW_RULES = ("degradation", "kurtosis-impulsive", "flatline")
#: The 0003 values of the shipped rules that change (params, k, window minutes, m), for the downgrade.
OLD_DEFAULTS: dict[str, tuple[dict, int, int, int]] = {
    "anomaly-score": ({"min_score": 0.0}, 3, 10, 5),
    "temperature-high": ({"max": 85.0}, 3, 5, 5),
    "vibration-iso10816-zone-d": ({"max": 7.1}, 3, 5, 5),
    "pressure-range": ({"min": 2.0, "max": 10.0}, 3, 5, 5),
    "humidity-high": ({"max": 90.0}, 3, 5, 5),
    "voltage-range": ({"min": 207.0, "max": 253.0}, 3, 5, 5),
    "no-data": ({"no_data_minutes": 15.0}, 1, 15, 1),
}


def _tz(name: str, nullable: bool = True, **kw: object) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, **kw)


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _ck(table: str, name: str, sql: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(sql, name=op.f(f"ck_{table}_{name}"))


def _fk(table: str, col: str, ref_table: str, ref_col: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [col], [f"{ref_table}.{ref_col}"], name=op.f(f"fk_{table}_{col}_{ref_table}"), ondelete=ondelete
    )


def _columns(table: str) -> set[str]:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(table):
        return set()
    return {c["name"] for c in inspector.get_columns(table)}


def _rules_upgrade() -> None:
    """First run (``window_minutes`` still there): convert the rules; always: insert the shipped rules that are
    missing (``ON CONFLICT DO NOTHING``: a re-run keeps what an operator changed, like 0003)."""
    bind = op.get_bind()
    if "window_minutes" in _columns("alert_rules"):
        op.add_column("alert_rules", sa.Column("unit", sa.Text(), nullable=True))
        op.add_column(
            "alert_rules",
            sa.Column("window_readings", sa.Integer(), server_default=sa.text("20"), nullable=False),
        )
        op.add_column("alert_rules", sa.Column("max_age_minutes", sa.Double(), nullable=True))
        op.add_column(
            "alert_rules",
            sa.Column("min_hold_minutes", sa.Double(), server_default=sa.text("0"), nullable=False),
        )
        # rules an operator created keep their time bound as an age limit
        op.execute(
            "UPDATE alert_rules SET window_readings = GREATEST(open_after_k, 20), max_age_minutes = window_minutes"
        )
        op.drop_constraint(op.f("ck_alert_rules_window_minutes_positive"), "alert_rules", type_="check")
        op.drop_column("alert_rules", "window_minutes")
        op.drop_constraint(op.f("ck_alert_rules_kind"), "alert_rules", type_="check")
        op.create_check_constraint(op.f("ck_alert_rules_kind"), "alert_rules", NEW_KINDS)
        op.create_check_constraint(
            op.f("ck_alert_rules_window_covers_k"), "alert_rules", "window_readings >= open_after_k"
        )
        op.create_check_constraint(
            op.f("ck_alert_rules_max_age_positive"), "alert_rules", "max_age_minutes IS NULL OR max_age_minutes > 0"
        )
        op.create_check_constraint(
            op.f("ck_alert_rules_min_hold_not_negative"), "alert_rules", "min_hold_minutes >= 0"
        )
        # the shipped rules get the cadence-aware hysteresis and units; their bounds stay as the operator left them
        for name, (_kind, _type, _params, unit, _severity, k, n, m, hold, age) in DEFAULT_RULES.items():
            bind.execute(
                sa.text(
                    "UPDATE alert_rules SET unit = :unit, open_after_k = :k, window_readings = :n, "
                    "resolve_after_m = :m, min_hold_minutes = :hold, max_age_minutes = :age WHERE name = :name"
                ),
                {"unit": unit, "k": k, "n": n, "m": m, "hold": hold, "age": age, "name": name},
            )
        bind.execute(
            sa.text(
                "UPDATE alert_rules SET params = params || CAST(:extra AS jsonb) "
                "WHERE name = 'anomaly-score' AND NOT params ? 'methods'"
            ),
            {"extra": json.dumps({"methods": OUTLIER_METHODS})},
        )
        bind.execute(
            sa.text(
                "UPDATE alert_rules SET params = CAST(:new AS jsonb) "
                "WHERE name = 'no-data' AND params = CAST(:old AS jsonb)"
            ),
            {"new": json.dumps(DEFAULT_RULES["no-data"][2]), "old": json.dumps(OLD_DEFAULTS["no-data"][0])},
        )
    for name, (kind, sensor_type, params, unit, severity, k, n, m, hold, age) in DEFAULT_RULES.items():
        bind.execute(
            sa.text(
                "INSERT INTO alert_rules (name, kind, sensor_type, params, unit, severity, open_after_k, "
                "window_readings, resolve_after_m, min_hold_minutes, max_age_minutes) VALUES (:name, :kind, "
                ":sensor_type, CAST(:params AS jsonb), :unit, :severity, :k, :n, :m, :hold, :age) "
                "ON CONFLICT (name) DO NOTHING"
            ),
            {
                "name": name, "kind": kind, "sensor_type": sensor_type, "params": json.dumps(params),
                "unit": unit, "severity": severity, "k": k, "n": n, "m": m, "hold": hold, "age": age,
            },
        )


def _rules_downgrade() -> None:
    if "window_readings" not in _columns("alert_rules"):
        return  # 0005's rule changes are not there (or the table is gone)
    bind = op.get_bind()
    op.execute(f"DELETE FROM alert_rules WHERE name IN ({', '.join(repr(n) for n in NEW_RULES)})")
    op.execute("DELETE FROM alert_rules WHERE kind = 'flatline'")
    op.add_column(
        "alert_rules", sa.Column("window_minutes", sa.Integer(), server_default=sa.text("10"), nullable=False)
    )
    op.execute(
        "UPDATE alert_rules SET window_minutes = GREATEST(1, CAST(ceil(COALESCE(max_age_minutes, 10)) AS integer))"
    )
    for name, (_params, k, window, m) in OLD_DEFAULTS.items():
        bind.execute(
            sa.text(
                "UPDATE alert_rules SET open_after_k = :k, window_minutes = :w, resolve_after_m = :m WHERE name = :name"
            ),
            {"k": k, "w": window, "m": m, "name": name},
        )
    bind.execute(
        sa.text("UPDATE alert_rules SET params = params - 'methods' WHERE name = 'anomaly-score'")
    )
    bind.execute(
        sa.text(
            "UPDATE alert_rules SET params = CAST(:old AS jsonb) "
            "WHERE name = 'no-data' AND params = CAST(:new AS jsonb)"
        ),
        {"new": json.dumps(DEFAULT_RULES["no-data"][2]), "old": json.dumps(OLD_DEFAULTS["no-data"][0])},
    )
    for constraint in ("window_covers_k", "max_age_positive", "min_hold_not_negative", "kind"):
        op.drop_constraint(op.f(f"ck_alert_rules_{constraint}"), "alert_rules", type_="check")
    op.create_check_constraint(op.f("ck_alert_rules_kind"), "alert_rules", OLD_KINDS)
    op.create_check_constraint(op.f("ck_alert_rules_window_minutes_positive"), "alert_rules", "window_minutes >= 1")
    for column in ("unit", "window_readings", "max_age_minutes", "min_hold_minutes"):
        op.drop_column("alert_rules", column)


def upgrade() -> None:
    _rules_upgrade()
    op.create_table(
        "incidents",
        _id(),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("sensor_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'open'"), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        _tz("first_seen_at", False),
        _tz("last_seen_at", False),
        sa.Column("peak_score", sa.Double(), nullable=True),
        sa.Column("alert_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _tz("opened_at", False, server_default=NOW),
        _tz("resolved_at"),
        _tz("closed_at"),
        _ck("incidents", "status", "status IN ('open', 'resolved', 'closed')"),
        _ck("incidents", "severity", SEVERITIES),
        _ck("incidents", "scope", "asset_id IS NOT NULL OR sensor_id IS NOT NULL"),
        _fk("incidents", "asset_id", "assets", "id", "CASCADE"),
        _fk("incidents", "sensor_id", "sensors", "sensor_id", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        if_not_exists=True,
    )
    op.create_index("ix_incidents_asset_id_status", "incidents", ["asset_id", "status"], if_not_exists=True)
    op.create_index("ix_incidents_sensor_id_status", "incidents", ["sensor_id", "status"], if_not_exists=True)
    op.create_index("ix_incidents_status_last_seen_at", "incidents", ["status", "last_seen_at"], if_not_exists=True)

    new_alert_columns = "event_opened_at" not in _columns("alerts")
    op.execute(
        "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS incident_id bigint CONSTRAINT fk_alerts_incident_id_incidents "
        "REFERENCES incidents (id) ON DELETE SET NULL, "
        "ADD COLUMN IF NOT EXISTS event_opened_at timestamptz DEFAULT now() NOT NULL, "
        "ADD COLUMN IF NOT EXISTS last_seen_at timestamptz, "
        "ADD COLUMN IF NOT EXISTS event_resolved_at timestamptz, "
        "ADD COLUMN IF NOT EXISTS peak_score double precision"
    )
    if new_alert_columns:
        op.execute("UPDATE alerts SET event_opened_at = opened_at, event_resolved_at = resolved_at")
    op.create_index("ix_alerts_incident_id", "alerts", ["incident_id"], if_not_exists=True)

    new_task_columns = "event_opened_at" not in _columns("maintenance_tasks")
    op.execute(
        "ALTER TABLE maintenance_tasks ADD COLUMN IF NOT EXISTS incident_id bigint "
        "CONSTRAINT fk_maintenance_tasks_incident_id_incidents REFERENCES incidents (id) ON DELETE SET NULL, "
        "ADD COLUMN IF NOT EXISTS event_opened_at timestamptz"
    )
    if new_task_columns:
        op.execute("UPDATE maintenance_tasks SET event_opened_at = created_at")
    op.create_index(
        "uq_maintenance_tasks_incident_id_active",
        "maintenance_tasks",
        ["incident_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'in_progress')"),
        if_not_exists=True,
    )

    op.create_table(
        "incident_events",
        _id(),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        _tz("at", False, server_default=NOW),
        _tz("event_at"),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _ck("incident_events", "kind", INCIDENT_EVENT_KINDS),
        _fk("incident_events", "incident_id", "incidents", "id", "CASCADE"),
        _fk("incident_events", "alert_id", "alerts", "id", "SET NULL"),
        _fk("incident_events", "task_id", "maintenance_tasks", "id", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_events")),
        if_not_exists=True,
    )
    op.create_index("ix_incident_events_incident_id_at", "incident_events", ["incident_id", "at"], if_not_exists=True)

    op.create_table(
        "sensor_references",
        _id(),
        sa.Column("sensor_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        _tz("started_at", False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'learning'"), nullable=False),
        _tz("ready_at"),
        sa.Column("readings", sa.Integer(), nullable=True),
        sa.Column("median", sa.Double(), nullable=True),
        sa.Column("scale", sa.Double(), nullable=True),
        sa.Column("longest_run", sa.Integer(), nullable=True),
        sa.Column("previous_median", sa.Double(), nullable=True),
        _tz("created_at", False, server_default=NOW),
        _ck("sensor_references", "kind", "kind IN ('initial', 'regime_change', 'repair')"),
        _ck("sensor_references", "status", "status IN ('learning', 'ready', 'superseded')"),
        _ck("sensor_references", "learned", "status = 'learning' OR (median IS NOT NULL AND scale > 0)"),
        _fk("sensor_references", "sensor_id", "sensors", "sensor_id", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensor_references")),
        sa.UniqueConstraint("sensor_id", "started_at", name=op.f("uq_sensor_references_sensor_id_started_at")),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("sensor_references", if_exists=True)
    op.drop_table("incident_events", if_exists=True)
    op.execute("DROP INDEX IF EXISTS uq_maintenance_tasks_incident_id_active")
    if _columns("maintenance_tasks"):
        op.execute(
            "ALTER TABLE maintenance_tasks DROP COLUMN IF EXISTS event_opened_at, DROP COLUMN IF EXISTS incident_id"
        )
    op.execute("DROP INDEX IF EXISTS ix_alerts_incident_id")
    if _columns("alerts"):
        op.execute(
            "ALTER TABLE alerts DROP COLUMN IF EXISTS peak_score, DROP COLUMN IF EXISTS event_resolved_at, "
            "DROP COLUMN IF EXISTS last_seen_at, DROP COLUMN IF EXISTS event_opened_at, "
            "DROP COLUMN IF EXISTS incident_id"
        )
    op.drop_table("incidents", if_exists=True)
    _rules_downgrade()
