"""Webhook signatures: what receivers verify (body integrity, secret, timestamp tolerance) and the backoff schedule."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core.notifications import signing
from core.notifications.envelope import NOTIFIED_EVENT_TYPES, body_bytes
from core.notifications.worker import backoff_s

SECRET = "s3cret"
BODY = b'{"event_type":"AlertRaised","data":{"alert_id":1}}'
T = 1_800_000_000


def at(t: float):
    return lambda: t


def test_sign_is_stripe_style_hmac_of_timestamp_dot_body() -> None:
    header = signing.sign(SECRET, BODY, T)
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert signing.verify(SECRET, BODY, header, now=at(T)) == T
    assert signing.verify(SECRET, BODY.decode(), header, now=at(T + 299)) == T  # str body works too


def test_tampered_body_is_rejected() -> None:
    header = signing.sign(SECRET, BODY, T)
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify(SECRET, BODY.replace(b"1", b"2"), header, now=at(T))


def test_tampered_timestamp_and_wrong_secret_are_rejected() -> None:
    header = signing.sign(SECRET, BODY, T)
    moved = header.replace(f"t={T}", f"t={T + 600}")
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify(SECRET, BODY, moved, now=at(T + 600))
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify("other", BODY, header, now=at(T))


def test_old_or_future_timestamp_is_rejected_as_replay() -> None:
    header = signing.sign(SECRET, BODY, T)
    with pytest.raises(signing.SignatureError, match="tolerance"):
        signing.verify(SECRET, BODY, header, tolerance_s=300, now=at(T + 301))
    with pytest.raises(signing.SignatureError, match="tolerance"):
        signing.verify(SECRET, BODY, header, tolerance_s=300, now=at(T - 301))
    assert signing.verify(SECRET, BODY, header, tolerance_s=1000, now=at(T + 301)) == T


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00", f"t={T}", f"t={T},v0=00"])
def test_malformed_headers_are_rejected(header: str) -> None:
    with pytest.raises(signing.SignatureError):
        signing.verify(SECRET, BODY, header, now=at(T))


def test_any_of_several_v1_signatures_is_accepted_for_secret_rotation() -> None:
    new = signing.sign("new-secret", BODY, T)
    old_sig = signing.compute(SECRET, T, BODY)
    assert signing.verify(SECRET, BODY, f"{new},v1={old_sig}", now=at(T)) == T


def test_body_bytes_are_compact_sorted_json() -> None:
    assert body_bytes({"body": {"b": 1, "a": [1, 2]}}) == b'{"a":[1,2],"b":1}'


def test_notified_event_types() -> None:
    assert set(NOTIFIED_EVENT_TYPES) == {
        "AlertRaised",
        "MaintenanceTaskCreated",
        "MaintenanceTaskCompleted",
        "AnomalyDetected",
    }


def test_signing_backoff_schedule_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 5, 60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
