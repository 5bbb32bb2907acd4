"""What a delivery attempt records: the HTTP status and a short classification, never the reply body.

``notification_deliveries.last_error`` holds only a classification (``CLASSIFICATIONS``); the HTTP status of the
last attempt is kept in the payload (``last_status``). The reply body of a receiver is never read into a record:
it may hold anything (an internal service's answer, a token), and delivery records are visible to read-scope keys.

Rows written before this rule may hold free text (``RuntimeError: HTTP 503: <body>``): ``public_error`` reduces any
stored value to a classification before it leaves the API, so old bodies are never shown (no migration needed).
"""

from __future__ import annotations

import re
import smtplib
import ssl

import httpx

from core.notifications.destinations import DestinationRefused

#: The classifications (``http_<status>`` and ``refused_destination:<reason>`` are families).
CLASSIFICATIONS = (
    "http_<status>",
    "timeout",
    "connect_error",
    "tls_error",
    "dns_error",
    "protocol_error",
    "refused_destination:<reason>",
    "smtp_<code>",
    "smtp_error",
    "smtp_not_configured",
    "error",
)

_CLASSIFICATION = re.compile(r"^[a-z][a-z0-9_]{0,39}(:[a-z][a-z0-9_]{0,39})?$")
_LEGACY_HTTP = re.compile(r"^RuntimeError: HTTP (\d{3})\b")
_LEGACY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("ConnectTimeout", "timeout"),
    ("ReadTimeout", "timeout"),
    ("WriteTimeout", "timeout"),
    ("PoolTimeout", "timeout"),
    ("TimeoutError", "timeout"),
    ("ConnectError", "connect_error"),
    ("SSLError", "tls_error"),
    ("RemoteProtocolError", "protocol_error"),
    ("SMTP", "smtp_error"),
)


class DeliveryFailed(Exception):
    """A failed attempt: its classification and, when the receiver answered, the HTTP status."""

    def __init__(self, classification: str, status: int | None = None) -> None:
        super().__init__(classification)
        self.classification = classification
        self.status = status


def _is_tls(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return "SSL" in str(exc) or "CERTIFICATE" in str(exc).upper()


def classify(exc: BaseException) -> str:
    """The classification of an exception raised by an attempt (never its message)."""
    if isinstance(exc, DeliveryFailed):
        return exc.classification
    if isinstance(exc, DestinationRefused):
        return "dns_error" if exc.reason == "unresolvable" else f"refused_destination:{exc.reason}"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "tls_error" if _is_tls(exc) else "connect_error"
    if isinstance(exc, ssl.SSLError):
        return "tls_error"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return "protocol_error"
    if isinstance(exc, httpx.TransportError):
        return "connect_error"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"smtp_{int(exc.smtp_code)}"
    if isinstance(exc, smtplib.SMTPException):
        return "smtp_error"
    if isinstance(exc, ConnectionError | OSError):
        return "connect_error"
    return "error"


def public_error(stored: str | None) -> str | None:
    """``last_error`` as the API shows it: a classification, whatever an older row holds."""
    if stored is None:
        return None
    if _CLASSIFICATION.match(stored):
        return stored
    legacy = _LEGACY_HTTP.match(stored)
    if legacy:
        return f"http_{legacy.group(1)}"
    for prefix, classification in _LEGACY_PREFIXES:
        if stored.startswith(prefix):
            return classification
    return "error"


__all__ = ["CLASSIFICATIONS", "DeliveryFailed", "classify", "public_error"]
