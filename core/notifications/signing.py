"""Webhook signatures (Stripe-style): ``X-SM-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The signed message is ``f"{t}.{body}"`` where ``body`` is the exact bytes of the request body, keyed with the
deployment's ``SM_WEBHOOK_SIGNING_SECRET`` (one secret for all subscriptions; per-subscription secrets would need
a ``secret`` column on ``webhooks`` — a migration — and are not implemented).

Receivers verify like this (Python; any language with HMAC-SHA256 works the same way)::

    from core.notifications.signing import verify
    verify(secret, request_body_bytes, request.headers["X-SM-Signature"], tolerance_s=300)  # raises on failure

1. split the header into ``t`` and every ``v1`` value;
2. recompute ``hex(hmac_sha256(secret, f"{t}.".encode() + body))`` over the **raw** body (before parsing JSON);
3. compare in constant time with any ``v1`` value;
4. reject when ``|now - t|`` exceeds the tolerance (default 5 minutes): a captured request cannot be replayed
   later, and ``t`` cannot be changed without breaking the signature. Within the tolerance, de-duplicate on the
   ``X-SM-Delivery`` header (the delivery id, stable across retries) — delivery is at least once.

Several ``v1`` values may appear (secret rotation); a signature matching any of them is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

SIGNATURE_HEADER = "X-SM-Signature"
EVENT_HEADER = "X-SM-Event"
DELIVERY_HEADER = "X-SM-Delivery"
TIMESTAMP_HEADER = "X-SM-Timestamp"
DEFAULT_TOLERANCE_S = 300.0
SCHEME = "v1"


class SignatureError(ValueError):
    """The signature header is malformed, does not match the body, or its timestamp is out of tolerance."""


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def compute(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"``."""
    message = str(int(timestamp)).encode("ascii") + b"." + _as_bytes(body)
    return hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: str | bytes, timestamp: int | None = None) -> str:
    """The ``X-SM-Signature`` header value for ``body`` at ``timestamp`` (default: now)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},{SCHEME}={compute(secret, t, body)}"


def parse(header: str) -> tuple[int, list[str]]:
    """``(t, [v1 signatures])`` of a header value; ``SignatureError`` when malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed timestamp in signature header") from None
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("no timestamp in signature header")
    if not signatures:
        raise SignatureError(f"no {SCHEME} signature in signature header")
    return timestamp, signatures


def verify(
    secret: str | bytes,
    body: str | bytes,
    header: str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now: Callable[[], float] = time.time,
) -> int:
    """Check ``header`` against ``body``; return its timestamp. Raises ``SignatureError`` otherwise.

    ``tolerance_s`` bounds ``|now - t|`` (replay protection); ``now`` is injectable for tests.
    """
    timestamp, signatures = parse(header)
    expected = compute(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("signature does not match the body")
    if abs(now() - timestamp) > tolerance_s:
        raise SignatureError("signature timestamp is outside the tolerance (possible replay)")
    return timestamp


__all__ = [
    "DEFAULT_TOLERANCE_S",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "compute",
    "parse",
    "sign",
    "verify",
]
