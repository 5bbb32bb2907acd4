"""Every Prometheus metric of the project, registered on one dedicated registry.

Naming: ``sm_<subsystem>_<name>_<unit>``; counters end in ``_total`` (prometheus_client adds the suffix when
it is missing, so declare it explicitly). Later issues add their metrics here, in the section of their subsystem.

The only exceptions to the prefix are the generic ``http_*`` request metrics, which keep the names of
prometheus-fastapi-instrumentator's defaults so that standard dashboards work. They are defined here as well
(the API records them in ``apps.api.middleware.HttpMetricsMiddleware``, with the instrumentator's route naming)
instead of letting the instrumentator create them: its defaults register on every app build, which fails or
silently disables metrics when several apps are created in one process (tests, multiple mounts).

``REGISTRY`` is *not* prometheus_client's global default registry, so nothing a library registers there leaks
into ``/metrics`` and modules can be imported any number of times.
"""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# --- build ---------------------------------------------------------------------------------------------------
BUILD_INFO = Info(
    "sm_build",
    "Build and runtime information of this process (always 1).",
    registry=REGISTRY,
)

# --- HTTP (generic names, see module docstring) ----------------------------------------------------------------
HTTP_REQUESTS_TOTAL = Counter(
    "http_requests_total",
    "HTTP requests by method, grouped status (2xx, 4xx, …) and route template.",
    ["method", "status", "handler"],
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)

# --- api -----------------------------------------------------------------------------------------------------
API_READY_CHECKS_TOTAL = Counter(
    "sm_api_ready_checks_total",
    "Readiness checks by component (database, mlflow) and result (ok, failing, skipped).",
    ["component", "result"],
    registry=REGISTRY,
)

# --- db ------------------------------------------------------------------------------------------------------
DB_CHECK_LATENCY_SECONDS = Histogram(
    "sm_db_check_latency_seconds",
    "Latency of the database readiness check (connect, SELECT 1, migration revision).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)


# --- bus (core/events) ---------------------------------------------------------------------------------------
BUS_EVENTS_PUBLISHED_TOTAL = Counter(
    "sm_bus_events_published_total",
    "Events put on the in-process bus, by event type.",
    ["event_type"],
    registry=REGISTRY,
)
BUS_EVENTS_HANDLED_TOTAL = Counter(
    "sm_bus_events_handled_total",
    "Handler deliveries by handler and result (ok, dead_lettered).",
    ["handler", "result"],
    registry=REGISTRY,
)
BUS_HANDLER_RETRIES_TOTAL = Counter(
    "sm_bus_handler_retries_total",
    "Handler attempts that failed and were retried.",
    ["handler"],
    registry=REGISTRY,
)
BUS_DEAD_LETTERS_TOTAL = Counter(
    "sm_bus_dead_letters_total",
    "Deliveries dead-lettered after their last attempt, by handler.",
    ["handler"],
    registry=REGISTRY,
)
BUS_QUEUE_DEPTH = Gauge(
    "sm_bus_queue_depth_items",
    "Events waiting in the in-process bus queue.",
    registry=REGISTRY,
)
BUS_HANDLER_LATENCY_SECONDS = Histogram(
    "sm_bus_handler_latency_seconds",
    "Duration of one handler attempt, by handler.",
    ["handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
OUTBOX_UNPUBLISHED = Gauge(
    "sm_outbox_unpublished_rows",
    "Outbox rows not yet published, as last counted by this process's relay.",
    registry=REGISTRY,
)
BUS_PARTITIONS_HELD = Gauge(
    "sm_bus_partitions_held_count",
    "JetStream partitions this worker holds, by agent (core.events.leases).",
    ["agent"],
    registry=REGISTRY,
)
BUS_MESSAGES_TOTAL = Counter(
    "sm_bus_messages_total",
    "JetStream messages a worker finished, by agent and result (acked, nacked, dead_lettered).",
    ["agent", "result"],
    registry=REGISTRY,
)
BUS_READINGS_INGESTED_TOTAL = Counter(
    "sm_bus_readings_ingested_total",
    "Readings reported by ReadingsIngested events (counted by the ingest-metrics handler).",
    registry=REGISTRY,
)


# --- anomaly agent (core/anomaly) ----------------------------------------------------------------------------
ANOMALY_READINGS_SCORED_TOTAL = Counter(
    "sm_anomaly_readings_scored_total",
    "Readings scored by the anomaly agent, by method (model, robust_z).",
    ["method"],
    registry=REGISTRY,
)
ANOMALY_DETECTED_TOTAL = Counter(
    "sm_anomaly_detected_total",
    "New anomalies stored by the anomaly agent, by method (model, robust_z).",
    ["method"],
    registry=REGISTRY,
)
ANOMALY_MODEL_LOADS_TOTAL = Counter(
    "sm_anomaly_model_loads_total",
    "Champion model lookups by result (loaded, no_champion, unreachable, failed).",
    ["result"],
    registry=REGISTRY,
)


# --- alerting (core/alerts) ---------------------------------------------------------------------------------
ALERTS_OPENED_TOTAL = Counter(
    "sm_alerts_opened_total",
    "Alerts opened by the alerting agent, by rule name and severity.",
    ["rule", "severity"],
    registry=REGISTRY,
)
ALERTS_RESOLVED_TOTAL = Counter(
    "sm_alerts_resolved_total",
    "Alerts resolved (automatically after normal readings, when data returns, or through the API), by rule.",
    ["rule"],
    registry=REGISTRY,
)
ALERTS_SUPPRESSED_TOTAL = Counter(
    "sm_alerts_suppressed_total",
    "Alerts not opened because the asset is under maintenance, by reason (maintenance_task, maintenance_window).",
    ["reason"],
    registry=REGISTRY,
)


# --- ingest --------------------------------------------------------------------------------------------------
INGEST_READINGS_TOTAL = Counter(
    "sm_ingest_readings_total",
    "Readings received by the ingest endpoint, by result (accepted, duplicate, rejected).",
    ["result"],
    registry=REGISTRY,
)
INGEST_REQUESTS_TOTAL = Counter(
    "sm_ingest_requests_total",
    "Ingest requests by mode (partial, atomic, group_commit, replay).",
    ["mode"],
    registry=REGISTRY,
)
INGEST_BATCH_SIZE = Histogram(
    "sm_ingest_batch_size_readings",
    "Readings per ingest request.",
    buckets=(1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000),
    registry=REGISTRY,
)
INGEST_GROUP_COMMIT_SIZE = Histogram(
    "sm_ingest_group_commit_size_readings",
    "Single-reading requests written by one group-commit transaction (one observation per transaction).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024),
    registry=REGISTRY,
)

# --- MQTT ingest bridge (core/ingest/mqtt) -------------------------------------------------------------------
MQTT_MESSAGES_RECEIVED_TOTAL = Counter(
    "sm_mqtt_messages_received_total",
    "MQTT messages received by the bridge (redeliveries included).",
    registry=REGISTRY,
)
MQTT_READINGS_TOTAL = Counter(
    "sm_mqtt_readings_total",
    "Readings of MQTT messages by result (accepted: stored, duplicate: already stored, rejected).",
    ["result"],
    registry=REGISTRY,
)
MQTT_MESSAGES_REJECTED_TOTAL = Counter(
    "sm_mqtt_messages_rejected_total",
    "MQTT messages refused, by kind (message: refused whole; readings: some of its readings refused; both are "
    "answered on their rejected topic) or dropped (topic: not a readings topic).",
    ["kind"],
    registry=REGISTRY,
)
MQTT_BATCH_LATENCY_SECONDS = Histogram(
    "sm_mqtt_batch_latency_seconds",
    "From the arrival of a batch's first message to the acknowledgement of the whole batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
MQTT_BATCH_SIZE_MESSAGES = Histogram(
    "sm_mqtt_batch_size_items",
    "MQTT messages ingested together by one call of the ingest service.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000),
    registry=REGISTRY,
)
MQTT_INGEST_RETRIES_TOTAL = Counter(
    "sm_mqtt_ingest_retries_total",
    "Batches of MQTT messages retried after a transient failure (database unavailable); nothing was acknowledged.",
    registry=REGISTRY,
)
MQTT_CONNECTED = Gauge(
    "sm_mqtt_connected_count",
    "1 while the bridge is connected to the MQTT broker, else 0.",
    registry=REGISTRY,
)

# --- auth ----------------------------------------------------------------------------------------------------
AUTH_FAILURES_TOTAL = Counter(
    "sm_auth_failures_total",
    "Rejected API requests by reason (missing_key, unknown_key, revoked_key, insufficient_scope, "
    "too_many_failures: refused 429 because the client address exceeded SM_AUTH_FAILURE_LIMIT).",
    ["reason"],
    registry=REGISTRY,
)
RATE_LIMITED_TOTAL = Counter(
    "sm_rate_limited_total",
    "API requests refused with 429 by a rate limit (per API key, or failed authentications per client address).",
    registry=REGISTRY,
)
REQUEST_BODY_TOO_LARGE_TOTAL = Counter(
    "sm_api_request_body_too_large_total",
    "Requests refused with 413 before or while their body was read, by limit (ingest, request).",
    ["limit"],
    registry=REGISTRY,
)


# --- notifications (core/notifications) ------------------------------------------------------------------------
NOTIFICATIONS_DELIVERIES_TOTAL = Counter(
    "sm_notifications_deliveries_total",
    "Notification send attempts by channel (webhook, email) and result (delivered, retry, failed).",
    ["channel", "result"],
    registry=REGISTRY,
)
NOTIFICATIONS_PENDING_ROWS = Gauge(
    "sm_notifications_pending_rows",
    "Notification deliveries still pending (waiting for a first attempt or a retry).",
    registry=REGISTRY,
)


# --- maintenance (core/maintenance) -------------------------------------------------------------------------
MAINTENANCE_TASKS_OPENED_TOTAL = Counter(
    "sm_maintenance_tasks_opened_total",
    "Maintenance tasks opened, by source (agent: the scheduling agent for an alert; manual: the API) and priority.",
    ["source", "priority"],
    registry=REGISTRY,
)
MAINTENANCE_TASKS_COMPLETED_TOTAL = Counter(
    "sm_maintenance_tasks_completed_total",
    "Maintenance tasks completed, by outcome (fault_confirmed, no_fault_found).",
    ["outcome"],
    registry=REGISTRY,
)


def set_build_info(version: str, env: str) -> None:
    """Record the running build (idempotent: the info metric holds one sample)."""
    BUILD_INFO.info({"version": version, "env": env, "python": platform.python_version()})


__all__ = [
    "ALERTS_OPENED_TOTAL",
    "ALERTS_RESOLVED_TOTAL",
    "ALERTS_SUPPRESSED_TOTAL",
    "ANOMALY_DETECTED_TOTAL",
    "ANOMALY_MODEL_LOADS_TOTAL",
    "ANOMALY_READINGS_SCORED_TOTAL",
    "API_READY_CHECKS_TOTAL",
    "AUTH_FAILURES_TOTAL",
    "BUILD_INFO",
    "BUS_DEAD_LETTERS_TOTAL",
    "BUS_EVENTS_HANDLED_TOTAL",
    "BUS_EVENTS_PUBLISHED_TOTAL",
    "BUS_HANDLER_LATENCY_SECONDS",
    "BUS_HANDLER_RETRIES_TOTAL",
    "BUS_QUEUE_DEPTH",
    "BUS_READINGS_INGESTED_TOTAL",
    "DB_CHECK_LATENCY_SECONDS",
    "HTTP_REQUESTS_TOTAL",
    "HTTP_REQUEST_DURATION_SECONDS",
    "INGEST_BATCH_SIZE",
    "INGEST_GROUP_COMMIT_SIZE",
    "INGEST_READINGS_TOTAL",
    "INGEST_REQUESTS_TOTAL",
    "MAINTENANCE_TASKS_COMPLETED_TOTAL",
    "MAINTENANCE_TASKS_OPENED_TOTAL",
    "MQTT_BATCH_LATENCY_SECONDS",
    "MQTT_BATCH_SIZE_MESSAGES",
    "MQTT_CONNECTED",
    "MQTT_INGEST_RETRIES_TOTAL",
    "MQTT_MESSAGES_RECEIVED_TOTAL",
    "MQTT_MESSAGES_REJECTED_TOTAL",
    "MQTT_READINGS_TOTAL",
    "NOTIFICATIONS_DELIVERIES_TOTAL",
    "NOTIFICATIONS_PENDING_ROWS",
    "OUTBOX_UNPUBLISHED",
    "RATE_LIMITED_TOTAL",
    "REGISTRY",
    "REQUEST_BODY_TOO_LARGE_TOTAL",
    "set_build_info",
]
