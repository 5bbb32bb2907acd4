"""ORM models of the whole data model (DESIGN.md §4), one module per aggregate.

Importing this package registers every table on ``Base.metadata`` (Alembic's ``target_metadata``).
"""

from core.db.base import Base
from core.db.models.alerting import RULE_KINDS, AlertEvent, AlertObservation, AlertRule, MaintenanceWindow
from core.db.models.alerts import ALERT_SEVERITIES, ALERT_STATUSES, ALERT_UNRESOLVED_STATUSES, Alert
from core.db.models.anomalies import Anomaly
from core.db.models.assets import Asset, Sensor
from core.db.models.events import DeadLetter, OutboxEvent
from core.db.models.faults import InjectedFault
from core.db.models.incidents import INCIDENT_EVENT_KINDS, INCIDENT_STATUSES, Incident, IncidentEvent
from core.db.models.maintenance import (
    LOG_OUTCOMES,
    TASK_PRIORITIES,
    TASK_STATUSES,
    MaintenanceLog,
    MaintenanceTask,
)
from core.db.models.ml import DriftCheck
from core.db.models.notifications import DELIVERY_CHANNELS, DELIVERY_STATUSES, NotificationDelivery, Webhook
from core.db.models.readings import HOURLY_VIEW, SensorReading
from core.db.models.references import REFERENCE_KINDS, REFERENCE_STATUSES, SensorReference
from core.db.models.security import IDEMPOTENCY_STATUSES, ApiKey, IdempotencyKey

__all__ = [
    "ALERT_SEVERITIES",
    "ALERT_STATUSES",
    "ALERT_UNRESOLVED_STATUSES",
    "DELIVERY_CHANNELS",
    "DELIVERY_STATUSES",
    "HOURLY_VIEW",
    "IDEMPOTENCY_STATUSES",
    "INCIDENT_EVENT_KINDS",
    "INCIDENT_STATUSES",
    "LOG_OUTCOMES",
    "REFERENCE_KINDS",
    "REFERENCE_STATUSES",
    "RULE_KINDS",
    "TASK_PRIORITIES",
    "TASK_STATUSES",
    "Alert",
    "AlertEvent",
    "AlertObservation",
    "AlertRule",
    "Anomaly",
    "ApiKey",
    "Asset",
    "Base",
    "DeadLetter",
    "DriftCheck",
    "IdempotencyKey",
    "Incident",
    "IncidentEvent",
    "InjectedFault",
    "MaintenanceLog",
    "MaintenanceTask",
    "MaintenanceWindow",
    "NotificationDelivery",
    "OutboxEvent",
    "Sensor",
    "SensorReading",
    "SensorReference",
    "Webhook",
]
