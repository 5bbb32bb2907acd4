"""The delivery worker: claims due pending deliveries, sends them, records the outcome, retries with backoff.

``run_once()`` is one pass (tests call it directly, with a fake clock):

1. **claim** (transaction 1): up to ``SM_NOTIFICATION_BATCH_SIZE`` pending rows that are due
   (``next_attempt_at`` ≤ now) with ``SELECT … FOR UPDATE SKIP LOCKED``; their ``next_attempt_at`` is pushed
   to ``now + lease`` (HTTP timeout + margin) and the transaction commits. Several workers (API replicas) never
   claim the same row, and no transaction stays open while a network call runs. A crash before step 3 leaves
   the row pending; it is tried again when the lease expires (delivery is at least once: receivers
   de-duplicate on ``X-SM-Delivery``).
2. **send** concurrently: webhooks via httpx POST (``SM_NOTIFICATION_HTTP_TIMEOUT_S``, no redirects, signed
   headers, any 2xx is success); e-mails via ``smtplib`` in a thread.
3. **record** (transaction 2): ``attempts + 1``; success → ``delivered`` with ``delivered_at``; failure →
   ``last_error`` and either ``failed`` (after ``SM_NOTIFICATION_MAX_ATTEMPTS`` attempts) or still ``pending``
   with ``next_attempt_at = now + min(base * 2**(attempts-1), max)``.

The loop (``start``/``stop``) runs a pass when woken (the notification agent wakes it after enqueueing) or every
``SM_NOTIFICATION_POLL_INTERVAL_S`` (rows enqueued by other processes, retries that became due).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.repositories.notifications import DeliveryRepository
from core.db.session import unit_of_work
from core.notifications import signing
from core.notifications.email import build_message, send_email
from core.notifications.envelope import body_bytes
from core.observability.metrics import NOTIFICATIONS_DELIVERIES_TOTAL, NOTIFICATIONS_PENDING_ROWS

logger = logging.getLogger("core.notifications.worker")

MAX_ERROR_CHARS = 2000
LEASE_MARGIN_S = 30.0
STOP_GRACE_S = 1.0
USER_AGENT = "smart-maintenance-webhooks/1"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Delay after the ``attempts``-th failed attempt (1-based): ``min(base * 2**(attempts-1), max)``."""
    return float(min(base_s * (2 ** max(attempts - 1, 0)), max_s))


def _error_text(exc: BaseException | str) -> str:
    text = (
        exc if isinstance(exc, str) else (f"{type(exc).__name__}: {exc}".rstrip(": ") or type(exc).__name__)
    )
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class _Job:
    id: int
    channel: str
    target: str
    event: str
    attempts: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    channel: str
    result: str  # delivered | retry | failed
    attempts: int
    error: str | None = None


class DeliveryWorker:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = utcnow,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self._factory = session_factory
        self._clock = clock
        self._client = http_client
        self._owns_client = http_client is None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- one pass -------------------------------------------------------------------------------------------
    async def run_once(self) -> list[Outcome]:
        """Claim due deliveries, send them, record the outcomes; returns them (empty when nothing was due)."""
        settings = self.settings
        now = self._clock()
        lease_until = now + timedelta(seconds=settings.notification_http_timeout_s + LEASE_MARGIN_S)
        async with unit_of_work(self._factory) as session:
            rows = await DeliveryRepository(session).claim_due(
                now=now, limit=settings.notification_batch_size
            )
            jobs = [_Job(r.id, r.channel, r.target, r.event, r.attempts, dict(r.payload or {})) for r in rows]
            for row in rows:
                row.payload = {**(row.payload or {}), "next_attempt_at": lease_until.isoformat()}
        outcomes: list[Outcome] = []
        if jobs:
            errors = await asyncio.gather(*(self._send(job) for job in jobs))
            finished = self._clock()
            async with unit_of_work(self._factory) as session:
                repo = DeliveryRepository(session)
                for job, error in zip(jobs, errors, strict=True):
                    outcome = await self._record(repo, job, error, finished)
                    if outcome is not None:
                        outcomes.append(outcome)
        await self._update_pending_gauge()
        return outcomes

    async def _record(
        self, repo: DeliveryRepository, job: _Job, error: str | None, now: datetime
    ) -> Outcome | None:
        row = await repo.get_pending_for_update(job.id)
        if row is None:  # deleted with its webhook, or recorded by someone else meanwhile
            return None
        settings = self.settings
        attempts = row.attempts + 1
        row.attempts = attempts
        payload = dict(row.payload or {})
        if error is None:
            row.status = "delivered"
            row.delivered_at = now
            row.last_error = None
            payload["next_attempt_at"] = None
            result = "delivered"
        elif attempts >= settings.notification_max_attempts:
            row.status = "failed"
            row.last_error = error
            payload["next_attempt_at"] = None
            result = "failed"
        else:
            row.last_error = error
            delay = backoff_s(attempts, settings.notification_retry_base_s, settings.notification_retry_max_s)
            payload["next_attempt_at"] = (now + timedelta(seconds=delay)).isoformat()
            result = "retry"
        row.payload = payload
        await repo.flush()
        NOTIFICATIONS_DELIVERIES_TOTAL.labels(channel=job.channel, result=result).inc()
        log = logger.info if result == "delivered" else logger.warning
        log(
            "notification %s %s (attempt %d)",
            job.id,
            result,
            attempts,
            extra={"delivery_id": job.id, "channel": job.channel, "event": job.event, "error": error},
        )
        return Outcome(job.id, job.channel, result, attempts, error)

    async def _update_pending_gauge(self) -> None:
        try:
            async with unit_of_work(self._factory) as session:
                NOTIFICATIONS_PENDING_ROWS.set(await DeliveryRepository(session).count_pending())
        except Exception:  # a gauge is not worth failing the pass
            logger.debug("pending gauge not updated", exc_info=True)

    # --- sending --------------------------------------------------------------------------------------------
    async def _send(self, job: _Job) -> str | None:
        """None on success, else the error text."""
        try:
            if job.channel == "email":
                await self._send_email(job)
            else:
                await self._send_webhook(job)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
            return _error_text(exc)
        return None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                timeout=self.settings.notification_http_timeout_s,
            )
        return self._client

    async def _send_webhook(self, job: _Job) -> None:
        body = body_bytes(job.payload)
        timestamp = int(self._clock().timestamp())
        secret = self.settings.webhook_signing_secret.get_secret_value()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.EVENT_HEADER: job.event,
            signing.DELIVERY_HEADER: str(job.id),
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.sign(secret, body, timestamp),
        }
        response = await self._http().post(
            job.target, content=body, headers=headers, timeout=self.settings.notification_http_timeout_s
        )
        if not response.is_success:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

    async def _send_email(self, job: _Job) -> None:
        message = build_message(
            self.settings,
            to=job.target,
            event=job.event,
            delivery_id=job.id,
            body=job.payload.get("body", {}),
        )
        await asyncio.to_thread(
            send_email, self.settings, message, timeout_s=self.settings.notification_http_timeout_s
        )

    # --- loop -----------------------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="notification-delivery-worker")

    async def stop(self, timeout: float = STOP_GRACE_S) -> None:
        """Let a pass in progress finish for ``timeout`` seconds, then cancel it.

        A cancelled pass loses nothing: rows it claimed stay ``pending`` and are tried again when their lease
        expires (a send that happened but was not recorded is repeated; receivers de-duplicate on
        ``X-SM-Delivery``).
        """
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout)
            except TimeoutError:
                logger.warning("notification worker did not stop in %.1f s; cancelled", timeout)
            with contextlib.suppress(asyncio.CancelledError):
                task.cancel()
                await task
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self) -> None:
        interval = self.settings.notification_poll_interval_s
        while not self._stopping:
            self._wake.clear()
            try:
                outcomes = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep the worker alive (database down, …)
                logger.warning("notification delivery pass failed: %s", _error_text(exc))
                outcomes = []
            if self._stopping:
                break
            if len(outcomes) >= self.settings.notification_batch_size:
                continue  # more may be due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)


__all__ = ["DeliveryWorker", "Outcome", "backoff_s", "utcnow"]
