"""The delivery worker: claims due pending deliveries, sends them, records the outcome, retries with backoff.

``run_once()`` is one pass (tests call it directly, with a fake clock):

1. **claim** (transaction 1): up to ``SM_NOTIFICATION_BATCH_SIZE`` pending rows that are due
   (``next_attempt_at`` ≤ now) with ``SELECT … FOR UPDATE SKIP LOCKED``; their ``next_attempt_at`` is pushed
   to ``now + lease`` (HTTP timeout + margin) and the transaction commits. Several workers (API replicas) never
   claim the same row, and no transaction stays open while a network call runs. A crash before step 3 leaves
   the row pending; it is tried again when the lease expires (delivery is at least once: receivers
   de-duplicate on ``X-SM-Delivery``).
2. **send** concurrently: webhooks via httpx POST (``SM_NOTIFICATION_HTTP_TIMEOUT_S``, no redirects, signed
   headers, any 2xx is success) after the destination policy is checked again (``core.notifications.destinations``:
   the name is resolved now, every address vetted, and the connection goes to a vetted address with the original
   ``Host`` and TLS name, so DNS rebinding cannot reach a private address); e-mails via ``smtplib`` in a thread.
   The reply body is never read.
3. **record** (transaction 2): ``attempts + 1`` and ``last_status`` (the HTTP status, in the payload); success →
   ``delivered`` with ``delivered_at``; failure → ``last_error`` = a classification (``core.notifications.outcomes``:
   ``http_503``, ``timeout``, ``refused_destination:loopback``, …) and either ``failed`` (after
   ``SM_NOTIFICATION_MAX_ATTEMPTS`` attempts) or still ``pending`` with
   ``next_attempt_at = now + min(base * 2**(attempts-1), max)``.

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
from core.db.session import unit_of_work
from core.notifications import signing
from core.notifications.destinations import DestinationPolicy, Resolver, system_resolver
from core.notifications.email import build_message, send_email
from core.notifications.envelope import body_bytes
from core.notifications.outcomes import DeliveryFailed, classify
from core.notifications.repository import DeliveryRepository
from core.observability.metrics import NOTIFICATIONS_DELIVERIES_TOTAL, NOTIFICATIONS_PENDING_ROWS

logger = logging.getLogger("core.notifications.worker")

MAX_ERROR_CHARS = 2000
#: Vetted addresses of one target tried in turn when connecting fails (a name with several A/AAAA records).
MAX_ADDRESSES_TRIED = 3
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
class DeliveryOutcome:
    """What one delivery attempt did (for logs and tests)."""

    delivery_id: int
    channel: str
    result: str  # delivered | retry | failed
    attempts: int
    error: str | None = None  # the classification of a failed attempt
    status: int | None = None  # the HTTP status of a webhook attempt that got an answer


class DeliveryWorker:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = utcnow,
        http_client: httpx.AsyncClient | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        #: How target names are resolved at send time (a plain function; tests replace it to simulate DNS).
        self.resolver: Resolver = resolver or system_resolver
        self._factory = session_factory
        self._clock = clock
        self._client = http_client
        self._owns_client = http_client is None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- one pass -------------------------------------------------------------------------------------------
    async def run_once(self) -> list[DeliveryOutcome]:
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
        outcomes: list[DeliveryOutcome] = []
        if jobs:
            results = await asyncio.gather(*(self._send(job) for job in jobs))
            finished = self._clock()
            async with unit_of_work(self._factory) as session:
                repo = DeliveryRepository(session)
                for job, (status, error) in zip(jobs, results, strict=True):
                    outcome = await self._record(repo, job, status, error, finished)
                    if outcome is not None:
                        outcomes.append(outcome)
        await self._update_pending_gauge()
        return outcomes

    async def _record(
        self, repo: DeliveryRepository, job: _Job, status: int | None, error: str | None, now: datetime
    ) -> DeliveryOutcome | None:
        row = await repo.get_pending_for_update(job.id)
        if row is None:  # deleted with its webhook, or recorded by someone else meanwhile
            return None
        settings = self.settings
        attempts = row.attempts + 1
        row.attempts = attempts
        payload = dict(row.payload or {})
        payload["last_status"] = status
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
            extra={
                "delivery_id": job.id,
                "channel": job.channel,
                "event": job.event,
                "error": error,
                "status": status,
            },
        )
        return DeliveryOutcome(job.id, job.channel, result, attempts, error, status)

    async def _update_pending_gauge(self) -> None:
        try:
            async with unit_of_work(self._factory) as session:
                NOTIFICATIONS_PENDING_ROWS.set(await DeliveryRepository(session).count_pending())
        except Exception:  # a gauge is not worth failing the pass
            logger.debug("pending gauge not updated", exc_info=True)

    # --- sending --------------------------------------------------------------------------------------------
    async def _send(self, job: _Job) -> tuple[int | None, str | None]:
        """``(HTTP status or None, None on success else the failure's classification)``."""
        try:
            if job.channel == "email":
                await self._send_email(job)
                return None, None
            return await self._send_webhook(job), None
        except DeliveryFailed as exc:
            return exc.status, exc.classification
        except Exception as exc:  # every failure is recorded on the row (classified)
            classification = classify(exc)
            if classification == "error":  # unexpected: keep the details in the log, never on the row
                logger.warning("notification %s: unexpected %s", job.id, type(exc).__name__, exc_info=True)
            return None, classification

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                trust_env=False,  # no proxy: the connection goes to the vetted address
                follow_redirects=False,
                timeout=self.settings.notification_http_timeout_s,
                # no connection reuse: a pooled TLS connection is keyed by address, not by the name it verified
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._client

    async def _send_webhook(self, job: _Job) -> int:
        """POST to a vetted address of the target; the 2xx status, else ``DeliveryFailed`` (or a transport error)."""
        policy = DestinationPolicy.from_settings(self.settings, resolver=self.resolver)
        destination = await policy.check(job.target)  # DestinationRefused → refused_destination:<reason>
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
        timeout = self.settings.notification_http_timeout_s
        addresses = destination.addresses[:MAX_ADDRESSES_TRIED]
        for i, address in enumerate(addresses):
            url, host_header, extensions = destination.pinned_request(address)
            try:
                # streamed and closed unread: the reply body is neither read nor stored
                async with self._http().stream(
                    "POST",
                    url,
                    content=body,
                    headers={**headers, **host_header},
                    extensions=extensions,
                    timeout=timeout,
                ) as response:
                    status = response.status_code
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if i == len(addresses) - 1:
                    raise
                continue
            if not 200 <= status < 300:
                raise DeliveryFailed(f"http_{status}", status)
            return status
        raise DeliveryFailed("connect_error")  # pragma: no cover - a Destination always has an address

    async def _send_email(self, job: _Job) -> None:
        if not self.settings.smtp_host:
            raise DeliveryFailed("smtp_not_configured")
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


__all__ = ["DeliveryOutcome", "DeliveryWorker", "backoff_s", "utcnow"]
