"""Topics, a message's own checks (size, JSON, shape, the topic's sensor) and the rejection notice."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from core.ingest.mqtt.messages import Refusal, RejectionNotice, decode_message, partial_detail
from core.ingest.mqtt.topics import ReadingsTopic, parse_topic, subscription
from core.ingest.schemas import MAX_BATCH_ITEMS, RejectedItem

TOPIC = ReadingsTopic("sm", "plant-1", "pump-7")
NOW = "2026-11-01T00:00:00Z"


# --- topics ----------------------------------------------------------------------------------------------------
def test_subscription_and_rejected_topic() -> None:
    assert subscription("sm") == "sm/+/+/readings"
    assert subscription("plant/sm", "north") == "plant/sm/north/+/readings"
    assert TOPIC.name == "sm/plant-1/pump-7/readings"
    assert TOPIC.rejected == "sm/plant-1/pump-7/rejected"


@pytest.mark.parametrize(
    ("topic", "prefix", "expected"),
    [
        ("sm/plant-1/pump-7/readings", "sm", ReadingsTopic("sm", "plant-1", "pump-7")),
        ("a/b/north/t-1/readings", "a/b", ReadingsTopic("a/b", "north", "t-1")),
        ("sm/plant-1/pump-7/rejected", "sm", None),
        ("sm/plant-1/readings", "sm", None),
        ("sm/plant-1/a/b/readings", "sm", None),
        ("other/plant-1/pump-7/readings", "sm", None),
        ("sm//pump-7/readings", "sm", None),
        ("smx/plant-1/pump-7/readings", "sm", None),
    ],
)
def test_parse_topic(topic: str, prefix: str, expected: ReadingsTopic | None) -> None:
    assert parse_topic(topic, prefix) == expected


# --- decoding --------------------------------------------------------------------------------------------------
def test_a_single_reading_without_sensor_gets_the_topics_sensor() -> None:
    decoded = decode_message(TOPIC, orjson.dumps({"value": 1.5, "timestamp": NOW}), max_bytes=10_000)
    assert decoded.total == 1 and decoded.indices == [0] and decoded.rejected == []
    assert orjson.loads(decoded.items[0]) == {"value": 1.5, "timestamp": NOW, "sensor_id": "pump-7"}


def test_an_item_of_another_sensor_is_rejected_alone() -> None:
    payload = [
        {"sensor_id": "pump-7", "value": 1, "timestamp": NOW},
        {"sensor_id": "pump-8", "value": 2, "timestamp": NOW},
        {"value": 3, "timestamp": NOW},
        "not an object",
    ]
    decoded = decode_message(TOPIC, orjson.dumps(payload), max_bytes=10_000)
    assert decoded.total == 4
    assert decoded.indices == [0, 2, 3]  # the service rejects the string with its own reason
    assert [orjson.loads(i) for i in decoded.items][2] == "not an object"
    assert decoded.rejected == [RejectedItem(index=1, reason="sensor_id: 'pump-8' is not the topic's sensor 'pump-7'")]


def test_nan_literals_pass_to_the_service_which_rejects_them_per_item() -> None:
    decoded = decode_message(TOPIC, b'[{"value": NaN, "timestamp": "%s"}]' % NOW.encode(), max_bytes=10_000)
    assert json.loads(decoded.items[0])["value"] != json.loads(decoded.items[0])["value"]  # NaN kept as NaN


@pytest.mark.parametrize(
    ("payload", "status", "detail"),
    [
        (b"{bad", 400, "malformed JSON"),
        (b"", 400, "malformed JSON"),
        (b"\xff\xfe", 400, "malformed JSON"),
        (b"42", 422, "the body must be one reading object or an array of readings"),
        (b'"text"', 422, "the body must be one reading object or an array of readings"),
        (b"[]", 422, "the array is empty: send at least one reading"),
    ],
)
def test_refusals_use_the_http_wording(payload: bytes, status: int, detail: str) -> None:
    with pytest.raises(Refusal) as refused:
        decode_message(TOPIC, payload, max_bytes=10_000)
    assert refused.value.status == status and refused.value.detail.startswith(detail)


def test_too_large_and_too_many() -> None:
    with pytest.raises(Refusal) as large:
        decode_message(TOPIC, b"[" + b" " * 2000 + b"]", max_bytes=1024)
    assert (large.value.status, large.value.detail) == (413, "the body exceeds 1024 bytes")
    many = orjson.dumps([{"value": 1, "timestamp": NOW}] * (MAX_BATCH_ITEMS + 1))
    with pytest.raises(Refusal) as too_many:
        decode_message(TOPIC, many, max_bytes=len(many))
    assert too_many.value.status == 413
    assert too_many.value.detail == f"{MAX_BATCH_ITEMS + 1} readings in one request; at most {MAX_BATCH_ITEMS}"


# --- notices ---------------------------------------------------------------------------------------------------
def test_notice_truncates_the_payload_and_sorts_the_rejected_readings() -> None:
    payload = ("é" * 50).encode() + b"\xff"
    notice = RejectionNotice.build(
        TOPIC.name,
        payload,
        status=422,
        detail="2 of 2 readings are invalid; none stored",
        rejected=[RejectedItem(index=1, reason="b"), RejectedItem(index=0, reason="a")],
        readings=2,
        kept=0,
        received_at=datetime(2026, 11, 1, tzinfo=UTC),
        max_chars=10,
    )
    body = orjson.loads(notice.to_json())
    assert body["payload"] == "é" * 10 and body["payload_truncated"] is True
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert body["topic"] == "sm/plant-1/pump-7/readings" and body["status"] == 422
    whole = RejectionNotice.build(TOPIC.name, b"\xff{", status=400, detail="x", rejected=[], readings=0, kept=0,
                                  received_at=datetime(2026, 11, 1, tzinfo=UTC), max_chars=10)  # fmt: skip
    assert whole.payload == "\ufffd{" and whole.payload_truncated is False


def test_partial_detail() -> None:
    assert partial_detail(1, 3, 2) == (202, "1 of 3 readings are invalid; the others were stored")
    assert partial_detail(3, 3, 0) == (422, "3 of 3 readings are invalid; none stored")
