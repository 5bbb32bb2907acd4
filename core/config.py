"""The one Settings object. Nothing else in the code base reads the environment.

Ecosystem names (``DATABASE_URL``, ``MLFLOW_TRACKING_URI``, ``REDIS_URL``, ``API_BASE_URL``) are read as they
are; our own settings carry the ``SM_`` prefix. Values come from the environment, then from ``.env``.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.secret_strength import weak_secret_reason

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Development defaults. Any of them left in place refuses a production start.
DEV_API_KEY = "sm-dev-key-not-for-production"
DEV_WEBHOOK_SECRET = "sm-dev-webhook-secret"
DEV_CONSOLE_API_KEY = "sm-dev-console-key-not-for-production"
DEV_SIMULATOR_API_KEY = "sm-dev-simulator-key-not-for-production"
DEV_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/smart_maintenance"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class ConfigurationError(RuntimeError):
    """Raised when the settings cannot be used; the message says which setting and why."""


def _ecosystem(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


def to_async_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the asyncpg driver SQLAlchemy uses."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def to_libpq_url(url: str) -> str:
    """The same URL without a SQLAlchemy driver suffix (for asyncpg.connect, psql and pg_dump)."""
    _scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep else url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    env: Environment = Environment.development

    # --- ecosystem names -------------------------------------------------------------------------------------
    database_url: str = Field(DEV_DATABASE_URL, validation_alias=_ecosystem("DATABASE_URL"))
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000", validation_alias=_ecosystem("MLFLOW_TRACKING_URI")
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=_ecosystem("REDIS_URL"))
    api_base_url: str = Field("http://127.0.0.1:8000", validation_alias=_ecosystem("API_BASE_URL"))

    # --- API process -----------------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    api_workers: Annotated[int, Field(ge=1, le=64)] = 1
    api_key: SecretStr = SecretStr(DEV_API_KEY)
    """Bootstrap key: accepted with all scopes; the UI uses it to talk to the API."""
    metrics_require_key: bool = False
    api_key_cache_ttl_s: Annotated[float, Field(ge=0)] = 5.0
    """Key lookups are cached this long per process: a revocation takes effect within it (0: no cache)."""
    rate_limit: str = "600/second"
    """Per-API-key limit in ``limits`` notation ("600/second", "10000/minute"); "0" or empty disables it."""
    rate_limit_storage_uri: str = "memory://"
    """Rate-limit counters: ``memory://`` (per process) or ``redis://host:6379/0`` (shared by all replicas)."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    """Largest request body of the ingest routes (bytes, after any decoding); larger is a 413."""
    max_request_body_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    """Largest request body of every other route (bytes); larger is a 413, refused before it is read."""
    console_api_key: SecretStr = SecretStr(DEV_CONSOLE_API_KEY)
    """The Streamlit console's own key (registered by the API at start-up as ``console``); never the bootstrap key."""
    simulator_api_key: SecretStr = SecretStr(DEV_SIMULATOR_API_KEY)
    """The demo simulator's own key (registered by the API at start-up as ``simulator``, scope ``ingest``)."""
    auth_failure_limit: str = "30/minute"
    """Failed authentications accepted per client address ("limits" notation); beyond it a 429 before any lookup."""
    auth_negative_cache_ttl_s: Annotated[float, Field(ge=0)] = 60.0
    """An unknown key is remembered as unknown this long per process: repeats cost no database lookup."""
    ingest_log_interval_s: Annotated[float, Field(gt=0)] = 60.0
    """Ingest writes one INFO summary line per interval (requests, readings, rejects); per-request lines at DEBUG."""

    # --- UI and MLflow processes (used by the local runner and compose) ----------------------------------------
    ui_host: str = "127.0.0.1"
    ui_port: Annotated[int, Field(ge=1, le=65535)] = 8501
    mlflow_host: str = "127.0.0.1"
    mlflow_port: Annotated[int, Field(ge=1, le=65535)] = 5000
    mlflow_workers: Annotated[int, Field(ge=1, le=16)] = 1
    mlflow_backend_store_uri: str | None = None
    """Default: sqlite database ``<data_dir>/mlflow/mlflow.db``."""
    mlflow_artifacts_destination: str | None = None
    """Default: ``<data_dir>/mlflow/artifacts`` (served by the tracking server)."""
    mlflow_job_execution: bool = False
    """MLflow's background job workers (GenAI jobs the platform does not use; ~7 extra processes when on)."""
    mlflow_allowed_hosts: str | None = None
    """Host headers MLflow accepts (its default: localhost and private IPs). Compose adds the service name."""

    # --- database --------------------------------------------------------------------------------------------
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    db_max_overflow: Annotated[int, Field(ge=0, le=200)] = 10
    db_pool_pre_ping_idle_s: Annotated[float, Field(ge=0)] = 10.0
    """A pooled connection idle longer than this is pinged before use (a dead one is replaced); one used more
    recently is not (a ping costs three round trips per unit of work). 0: ping every checkout."""
    db_connect_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 30_000
    retention_days: Annotated[int, Field(ge=1)] = 180
    compress_after_days: Annotated[int, Field(ge=1)] = 7

    # --- behaviour -------------------------------------------------------------------------------------------
    openapi_public: bool | None = None
    """Serve /docs, /redoc and /openapi.json without a key. Default: on except in production (off there)."""
    auto_register_sensors: bool | None = None
    """Unknown sensors are registered on ingest. Default: on in development/test, off in production."""
    idempotency_ttl_hours: Annotated[float, Field(gt=0)] = 24.0
    """How long an ``Idempotency-Key`` (per API key) is remembered; expired keys are purged."""
    idempotency_purge_interval_s: Annotated[float, Field(gt=0)] = 3600.0
    ingest_group_commit: bool = True
    """Concurrent single-reading ingest requests share transactions (group commit)."""
    ingest_group_commit_max_size: Annotated[int, Field(ge=1, le=10_000)] = 512
    ingest_group_commit_max_wait_ms: Annotated[float, Field(ge=0, le=1000)] = 3.0
    webhook_signing_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    webhook_require_https: bool | None = None
    """Webhook targets must use https. Default: on in production, off elsewhere."""
    webhook_allow_private: bool = False
    """Allow webhook targets on private, loopback, link-local and other non-public addresses (off: refused)."""
    webhook_allowed_hosts: list[str] = []
    """Host names, addresses or CIDR networks allowed as webhook targets even when they are not public
    (JSON list in the environment: ``'["hooks.plant.local", "10.20.0.0/16"]'``)."""
    ready_check_mlflow: bool = True
    ready_timeout_s: Annotated[float, Field(gt=0)] = 2.0

    # --- event bus and outbox (core/events) ------------------------------------------------------------------
    bus_queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    """Bounded queue of the in-process bus: ``publish`` waits when it is full (back-pressure)."""
    bus_workers: Annotated[int, Field(ge=1, le=256)] = 16
    """Worker tasks of the in-process bus. Coalescing handlers (anomaly, alerting) merge the deliveries waiting
    on them, each of which holds a worker: with 4, a run merged at most 4 events (docs/benchmarks/loop.md)."""
    bus_handler_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    """Attempts per handler invocation (first try included) before the delivery is dead-lettered."""
    bus_retry_base_s: Annotated[float, Field(ge=0)] = 0.5
    bus_retry_max_s: Annotated[float, Field(ge=0)] = 30.0
    bus_stop_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """How long shutdown waits for queued events to be handled before cancelling the workers."""
    outbox_poll_interval_s: Annotated[float, Field(gt=0)] = 1.0
    outbox_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100

    # --- NATS JetStream backend of the bus (core/events/jetstream*.py, docs/architecture/scaling.md) -------------
    bus_url: str | None = None
    """Unset: the in-process bus, agents inside the API. ``nats://host:4222`` (several comma-separated for a
    cluster): the outbox relay publishes to a JetStream stream and the agents run in ``apps.cli worker``."""
    bus_stream: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "SM_EVENTS"
    """The stream's name; its subjects are ``<bus_subject_prefix>.p<partition>.<EventType>``."""
    bus_subject_prefix: Annotated[str, Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")] = "sm.events"
    bus_partitions: Annotated[int, Field(ge=1, le=1024)] = 16
    """Partitions of the stream (fixed for a stream's life): one sensor's events always go to one partition, and
    each partition is consumed by one worker at a time per agent, in order."""
    bus_stream_replicas: Annotated[int, Field(ge=1, le=5)] = 1
    """Copies of the stream (and of the consumers and leases) in a JetStream cluster: 3 survives one node."""
    bus_stream_retention: Literal["limits", "interest"] = "limits"
    """``limits``: messages stay until ``bus_stream_max_age_s``/``bus_stream_max_bytes`` (replayable);
    ``interest``: a message goes once every agent's consumer acknowledged it."""
    bus_stream_max_age_s: Annotated[float, Field(gt=0)] = 7 * 24 * 3600.0
    bus_stream_max_bytes: Annotated[int, Field(ge=-1)] = -1
    """Largest size of the stream in bytes (-1: no limit but the age); the oldest messages go first."""
    bus_stream_storage: Literal["file", "memory"] = "file"
    bus_duplicate_window_s: Annotated[float, Field(gt=0)] = 120.0
    """The server drops a message whose id (the event id) it stored within this window: relay retries publish
    once."""
    bus_ack_wait_s: Annotated[float, Field(gt=0)] = 30.0
    """A delivery not acknowledged within this time (a killed worker) is redelivered."""
    bus_max_deliver: Annotated[int, Field(ge=1, le=1000)] = 5
    """Deliveries of one message before the worker dead-letters it (a message that keeps killing workers)."""
    bus_fetch_batch: Annotated[int, Field(ge=1, le=10_000)] = 64
    """Messages of one partition a worker has in hand at most (fetched together, handled concurrently: coalescing
    handlers merge them)."""
    bus_max_in_flight: Annotated[int, Field(ge=1, le=100_000)] = 64
    """Messages of one agent a worker has in hand at most, over all its partitions: keeps a message's wait in the
    worker well under SM_BUS_ACK_WAIT_S (else the server redelivers it while it is queued) and the coalesced runs
    short. Measured at 5,000 readings/s with 2 workers on 2 cores (docs/benchmarks/loop.md): 256 → probe p95
    2.3 s, 64 → 1.1 s, 24 → the workers fell behind."""
    bus_lease_ttl_s: Annotated[float, Field(ge=1)] = 10.0
    """A worker's claim on a partition expires this long after its last renewal (renewed every third of it):
    the time a killed worker's partitions wait before another worker takes them."""
    bus_connect_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """``apps.cli worker`` serves its Prometheus metrics on this port (0: none; ``--metrics-port`` per worker)."""
    worker_metrics_host: str = "127.0.0.1"
    worker_nice: Annotated[int, Field(ge=0, le=19)] = 10
    """``apps.cli worker`` raises its scheduling niceness by this much at start (0: unchanged): on a host shared
    with the API and the database, ingest gets the CPU first and the agents take what is left, catching up from
    the stream when the burst ends (docs/architecture/scaling.md). Processes on their own hosts: 0."""

    # --- vibration snapshots and live bearing diagnosis (core/waveforms, docs/architecture/waveforms.md) ---------
    waveform_samples_retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    """A snapshot's samples are dropped this long after its time once it is diagnosed (its features, diagnosis and
    row stay for SM_RETENTION_DAYS)."""
    waveform_diagnosis_threads: Annotated[int, Field(ge=1, le=64)] = 2
    """Threads of a process running ``diagnose`` (shared by its diagnosis handlers): the CPU the agent may take."""
    waveform_diagnosis_in_flight: Annotated[int, Field(ge=1, le=1024)] = 4
    """Snapshots one diagnosis handler decodes or diagnoses at once (bounds memory under a burst)."""
    waveform_resolve_after: Annotated[int, Field(ge=1, le=100)] = 3
    """Consecutive healthy diagnoses that resolve the sensor's open bearing-fault alert."""
    waveform_alert_severity: Literal["high", "critical"] = "high"
    """Severity of the bearing-fault alert a named fault raises: the work order's priority and due date
    (SM_MAINTENANCE_DUE_<SEVERITY>_H); work orders open for these two severities only."""

    # --- MQTT ingest bridge (core/ingest/mqtt, docs/architecture/mqtt.md) --------------------------------------
    mqtt_url: str | None = None
    """``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS); when set it wins over the host, port,
    credential and TLS settings below."""
    mqtt_host: str = "127.0.0.1"
    mqtt_port: Annotated[int, Field(ge=1, le=65535)] = 1883
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    mqtt_tls_ca_file: Path | None = None
    """CA bundle that signs the broker's certificate (unset: the system's trust store)."""
    mqtt_client_id: Annotated[str, Field(min_length=1, max_length=128)] = "sm-mqtt-bridge"
    """Fixed: the broker keeps the bridge's persistent session (and its unacknowledged messages) under this id."""
    mqtt_topic_prefix: Annotated[str, Field(pattern=r"^[^#+/\x00]+(/[^#+/\x00]+)*$")] = "sm"
    mqtt_site: Annotated[str, Field(pattern=r"^(\+|[^#+/\x00]+)$")] = "+"
    """Site level of the subscription: ``+`` (every site) or one site's name."""
    mqtt_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    """Messages ingested in one call (and one transaction) at most; fewer when ``mqtt_batch_ms`` passes first."""
    mqtt_batch_ms: Annotated[float, Field(ge=0, le=10_000)] = 20.0
    """Longest wait after a batch's first message before it is ingested."""
    mqtt_receive_maximum: Annotated[int, Field(ge=1, le=65_535)] = 2000
    """Unacknowledged messages the broker may have in flight to the bridge (MQTT v5 Receive Maximum): at least
    ``mqtt_batch_size`` so that a batch can fill; twice it lets the next batch arrive while one is stored."""
    mqtt_session_expiry_s: Annotated[int, Field(ge=60, le=4_294_967_295)] = 7 * 24 * 3600
    """How long the broker keeps the bridge's session (subscription and queued messages) while it is away."""
    mqtt_keepalive_s: Annotated[int, Field(ge=5, le=65_535)] = 30
    mqtt_connect_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """Start-up: how long to wait for the broker's CONNACK and SUBACK before exiting with an error."""
    mqtt_retry_base_s: Annotated[float, Field(gt=0)] = 0.5
    mqtt_retry_max_s: Annotated[float, Field(gt=0)] = 30.0
    """Backoff of a batch whose database write failed transiently (retried until it succeeds, never acked before)."""
    mqtt_rejected_payload_chars: Annotated[int, Field(ge=0, le=65_536)] = 2048
    """Characters of the original payload copied into a rejection message."""
    mqtt_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """Port of the bridge's Prometheus ``/metrics`` (0: none)."""
    mqtt_metrics_host: str = "127.0.0.1"

    # --- query API (core/queries) ---------------------------------------------------------------------------
    query_max_points: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    """Most points one readings response returns (and the largest ``limit`` accepted); the rest is paged."""

    # --- maintenance (core/maintenance) ------------------------------------------------------------------------
    maintenance_due_critical_h: Annotated[float, Field(gt=0)] = 4.0
    """Hours until a work order the scheduling agent opens for a critical alert is due."""
    maintenance_due_high_h: Annotated[float, Field(gt=0)] = 24.0
    """Hours until a work order the scheduling agent opens for a high alert is due."""

    # --- notifications (core/notifications): webhooks and e-mail ---------------------------------------------
    notification_max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    """Send attempts per delivery (first try included) before it is marked ``failed``."""
    notification_retry_base_s: Annotated[float, Field(ge=0)] = 5.0
    """Backoff after the n-th failed attempt: ``min(base * 2**(n-1), max)`` seconds."""
    notification_retry_max_s: Annotated[float, Field(ge=0)] = 3600.0
    notification_http_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    notification_poll_interval_s: Annotated[float, Field(gt=0)] = 2.0
    notification_batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    smtp_host: str | None = None
    """E-mail notifications are enqueued only when this is set (and ``notification_email_to`` is not empty)."""
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "smart-maintenance@localhost"
    smtp_starttls: bool = False
    notification_email_to: list[str] = []
    """Recipients of e-mail notifications (JSON list in the environment: ``'["ops@example.com"]'``)."""

    # --- anomaly agent (core/anomaly) ------------------------------------------------------------------------
    anomaly_model_refresh_s: Annotated[float, Field(gt=0)] = 60.0
    """How often the champion aliases (``anomaly_<sensor_type>@champion``) are re-checked in the background."""
    anomaly_model_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """Longest wait for an MLflow lookup before scoring falls back to the baseline."""
    anomaly_model_context: Annotated[int, Field(ge=0, le=10_000)] = 32
    """Readings of each sensor's history (before the event's first reading) sent to a champion model with the
    new readings, so that its lag and rolling features see real history; only the new readings' scores are kept."""
    anomaly_baseline_window: Annotated[int, Field(ge=2, le=100_000)] = 288
    """Readings per sensor in the rolling median/MAD window of the ``robust_z`` baseline."""
    anomaly_baseline_warmup: Annotated[int, Field(ge=1, le=100_000)] = 30
    """Readings of history a sensor needs before the baseline flags anything."""
    anomaly_baseline_threshold: Annotated[float, Field(gt=0)] = 6.0
    """Robust z-score at or above which a reading is an anomaly."""
    anomaly_baseline_max_sensors: Annotated[int, Field(ge=1)] = 10_000
    """Sensors whose baseline state is kept in memory (least recently used evicted, rebuilt from the database)."""
    anomaly_regime_gap_intervals: Annotated[float, Field(gt=1)] = 20.0
    """A gap of more than this many of a sensor's median intervals (and at least ``anomaly_regime_gap_min_minutes``)
    is a regime change: the machine was stopped or the data path was down; the detectors restart after it (new
    warm-up, healthy reference re-centred, noted in the sensor's timeline)."""
    anomaly_regime_gap_min_minutes: Annotated[float, Field(ge=0)] = 60.0
    """Shortest gap that counts as a regime change, whatever the cadence."""
    anomaly_reference_scale_fraction: Annotated[float, Field(ge=0, le=1)] = 0.25
    """The outlier baseline's rolling scale never drops below this fraction of the sensor's healthy reference scale
    (a window filled by a stuck stretch would otherwise flag the healthy noise once the sensor moves again)."""

    # --- ML registry, serving and drift (core/ml/registry, core/ml/serving, core/ml/drift) ---------------------------
    promotion_margin: Annotated[float, Field(ge=0)] = 0.01
    """A candidate becomes champion only if it beats the champion by more than this (absolute, on the metric)."""
    ml_alias_ttl_s: Annotated[float, Field(ge=0)] = 30.0
    """How long /api/v1/ml caches an alias → version resolution (loaded models stay cached per version)."""
    ml_model_cache_size: Annotated[int, Field(ge=1, le=1000)] = 16
    """Loaded models kept per API process (least recently used evicted)."""
    ml_forecast_history: Annotated[int, Field(ge=10, le=100_000)] = 600
    """Most recent readings of the sensor passed to a forecast model as history."""
    drift_ks_pvalue: Annotated[float, Field(gt=0, lt=1)] = 0.01
    """Location drift when the two-sample KS p-value at the effective (autocorrelation-corrected) sample sizes
    is below this ..."""
    drift_min_shift: Annotated[float, Field(ge=0)] = 2.0
    """... and the median moved by at least this many robust standard deviations (core/ml/drift/statistics.py)."""
    drift_spread_pvalue: Annotated[float, Field(gt=0, lt=1)] = 1e-3
    """Spread drift when the Brown–Forsythe test on the windows' first differences gives p below this ..."""
    drift_min_spread_ratio: Annotated[float, Field(gt=1)] = 2.0
    """... and the MAD of the differences changed by at least this factor (up or down)."""
    drift_psi: Annotated[float, Field(gt=0)] = 0.2
    """Population stability index level reported with each check (advisory: not part of the verdict)."""
    drift_psi_bins: Annotated[int, Field(ge=2, le=100)] = 10
    drift_recent_h: Annotated[float, Field(gt=0)] = 6.0
    """Recent window: the last this many hours (ending at the sensor's latest reading)."""
    drift_reference_offset_h: Annotated[float, Field(gt=0)] = 24.0
    """Reference window: the recent window shifted back this many hours (24: same hours of the previous day,
    so the daily cycle is not reported as drift)."""
    drift_min_samples: Annotated[int, Field(ge=5)] = 30
    """Readings each window needs before a sensor is checked."""
    drift_check_interval_s: Annotated[float, Field(ge=0)] = 3600.0
    """Seconds between two runs of the drift agent (first run one interval after start; 0: off)."""

    # --- alerting agent (core/alerts) ------------------------------------------------------------------------
    alert_no_data_check_interval_s: Annotated[float, Field(ge=0)] = 60.0
    """Seconds between two checks of the no-data alert rules (first check one interval after start; 0: off)."""
    incident_window_minutes: Annotated[float, Field(gt=0)] = 60.0
    """Correlation window (event time): an alert joins its asset's incident when the incident is open or its last
    evidence lies within this many minutes before the alert."""
    backfill_age_minutes: Annotated[float, Field(gt=0)] = 60.0
    """A batch whose readings are all older than this when ingested is history (back-fill): it is scored and may
    raise alerts, but no-data rules and due dates follow the readings' own timestamps."""

    # --- healthy references and degradation (core/anomaly/references.py) -------------------------------------
    reference_min_readings: Annotated[int, Field(ge=10, le=1_000_000)] = 100
    """Readings a sensor's first healthy reference is learned from (at least)."""
    reference_min_hours: Annotated[float, Field(ge=0)] = 24.0
    """Time span (event time) the first reference must cover, so that a daily cycle is part of normal."""
    reference_recenter_readings: Annotated[int, Field(ge=5, le=100_000)] = 30
    """Readings after a regime change or a repair from which the reference's level is learned again."""
    trend_ewma_lambda: Annotated[float, Field(gt=0, le=1)] = 0.1
    """Smoothing of the degradation detector's EWMA of robust-standardised readings."""
    trend_threshold: Annotated[float, Field(gt=0)] = 4.0
    """|EWMA| (in reference scales) from which a reading is a degradation anomaly (method ``trend_ewma``)."""

    # --- demo simulator (core/simulation/live.py) ------------------------------------------------------------
    demo: bool = True
    """``make up`` starts the live demo simulator (``python -m apps.cli simulate --faults``); SM_DEMO=false: off."""
    demo_rate: str = "50/s"
    """Readings per second the simulator sends by default (``N/s``, ``N/min`` or ``N/h``)."""

    # --- local stack scale-out (make up: apps/cli/stack.py, docs/architecture/scaling.md) ----------------------
    workers: Annotated[int, Field(ge=0, le=64)] = 0
    """Worker processes (``python -m apps.cli worker``) ``make up`` starts after the API. More than 0 needs a NATS
    bus: SM_BUS_URL, or (when it is unset) the embedded NATS server ``make up`` starts for them."""
    nats_port: Annotated[int, Field(ge=1, le=65535)] = 4222
    """Client port of the embedded NATS server (JetStream, 127.0.0.1 only, store under SM_DATA_DIR/nats) that
    ``make up`` starts when SM_WORKERS > 0 and SM_BUS_URL is unset."""

    # --- tests -----------------------------------------------------------------------------------------------
    test_admin_database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    """Server on which the test suite creates (and drops) its own databases."""
    test_timescale_url: str | None = None
    """A server with the timescaledb extension available (preloaded): the tests that need TimescaleDB create
    their databases there; unset, they are reported as skipped."""

    # --- local paths and logging -----------------------------------------------------------------------------
    data_dir: Path = PROJECT_ROOT / ".data"
    datasets_dir: Path = PROJECT_ROOT / ".data" / "datasets"
    """The gauntlets' public datasets (``ai4i2020/``, ``ims/``, ``mimii/``, ``cwru/``, ``cmapss/``): ``make datasets``
    downloads them here, checksums verified; the notebooks read them from here."""
    log_dir: Path = PROJECT_ROOT / "logs"
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("bus_url", mode="before")
    @classmethod
    def _bus_url(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
        if isinstance(value, str):
            for url in value.split(","):
                if not url.strip().startswith(("nats://", "tls://")):
                    raise ValueError(
                        f"SM_BUS_URL must be empty (in-process bus) or nats:// URLs separated by commas, not {url!r}"
                    )
        return value

    @property
    def bus_servers(self) -> list[str]:
        """The NATS servers of ``bus_url`` (empty: the in-process bus)."""
        return [url.strip() for url in (self.bus_url or "").split(",") if url.strip()]

    @model_validator(mode="after")
    def _production_guard(self) -> Settings:
        if self.auto_register_sensors is None:
            self.auto_register_sensors = self.env is not Environment.production
        if self.openapi_public is None:
            self.openapi_public = self.env is not Environment.production
        if self.webhook_require_https is None:
            self.webhook_require_https = self.env is Environment.production
        return self

    def secret_problems(self) -> list[str]:
        """Why the secrets of the API process are unfit for production (empty outside production or when fine)."""
        if self.env is not Environment.production:
            return []
        checks = (
            ("SM_API_KEY", self.api_key, DEV_API_KEY),
            ("SM_WEBHOOK_SIGNING_SECRET", self.webhook_signing_secret, DEV_WEBHOOK_SECRET),
            ("SM_CONSOLE_API_KEY", self.console_api_key, DEV_CONSOLE_API_KEY),
        )
        problems = [
            reason
            for name, secret, default in checks
            if (reason := weak_secret_reason(name, secret.get_secret_value(), dev_default=default))
        ]
        if self.demo and self.simulator_api_key.get_secret_value() != DEV_SIMULATOR_API_KEY:
            reason = weak_secret_reason("SM_SIMULATOR_API_KEY", self.simulator_api_key.get_secret_value())
            if reason:
                problems.append(reason)
        return problems

    def require_service_secrets(self) -> None:
        """Raise ConfigurationError when production would run with development or weak secrets.

        Called by the processes that hold them (the API, which registers the keys and signs webhooks; the
        simulator for its key); MLflow and the console never see them (the console checks its own key).
        """
        problems = self.secret_problems()
        if problems:
            raise ConfigurationError("refusing to start with SM_ENV=production: " + "; ".join(problems) + ".")

    def require_database_url(self) -> None:
        """Raise ConfigurationError when production would use the default database (for processes that use it:
        the API, migrations, the notebooks; MLflow and the console never touch it)."""
        if self.env is Environment.production and not self.database_url_is_explicit:
            raise ConfigurationError(
                "refusing to start with SM_ENV=production: DATABASE_URL is not set; production needs an "
                "explicit database."
            )

    @property
    def async_database_url(self) -> str:
        return to_async_url(self.database_url)

    @property
    def libpq_database_url(self) -> str:
        return to_libpq_url(self.database_url)

    @property
    def database_url_is_explicit(self) -> bool:
        """True when DATABASE_URL came from the environment, ``.env`` or a keyword (not the default)."""
        return "database_url" in self.model_fields_set

    @property
    def mlflow_backend_store(self) -> str:
        return (
            self.mlflow_backend_store_uri or f"sqlite:///{(self.data_dir / 'mlflow' / 'mlflow.db').resolve()}"
        )

    @property
    def mlflow_artifacts_dir(self) -> str:
        return self.mlflow_artifacts_destination or str((self.data_dir / "mlflow" / "artifacts").resolve())


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation failures into one readable ConfigurationError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"]) or "settings"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  - {loc}: {msg}" if err["loc"] else f"  - {msg}")
        raise ConfigurationError("invalid configuration:\n" + "\n".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
