"""E-mail notifications over SMTP (stdlib ``smtplib``, run in a thread by the worker)."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage
from typing import Any

from core.config import Settings


def build_message(
    settings: Settings, *, to: str, event: str, delivery_id: int, body: dict[str, Any]
) -> EmailMessage:
    data = body.get("data", {})
    subject_bits = [f"[Smart Maintenance] {event}"]
    for key in ("severity", "sensor_id", "task_id", "outcome"):
        if key in data:
            subject_bits.append(f"{key}={data[key]}")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = " ".join(subject_bits)
    message["X-SM-Event"] = event
    message["X-SM-Delivery"] = str(delivery_id)
    message.set_content(json.dumps(body, indent=2, sort_keys=True))
    return message


def send_email(settings: Settings, message: EmailMessage, *, timeout_s: float) -> None:
    """Blocking send; raises on any SMTP or network error."""
    if not settings.smtp_host:
        raise RuntimeError("SMTP is not configured (SM_SMTP_HOST)")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout_s) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_user, password)
        smtp.send_message(message)


__all__ = ["build_message", "send_email"]
