import base64
import json
from pathlib import Path

import pytest

from shared.errors import MalformedEvent
from shared.runtime import parse_push_request

GOLDEN = Path(__file__).parent / "golden"


def envelope(**message_over):
    message = {
        "data": base64.b64encode(b'{"x": 1}').decode(),
        "attributes": {"contract": "local.probe", "contract_version": "1"},
        "messageId": "1234567890",
        "message_id": "1234567890",
        "publishTime": "2026-11-20T04:00:00.123Z",
        "publish_time": "2026-11-20T04:00:00.123Z",
    }
    message.update(message_over)
    return {"message": message, "subscription": "projects/p/subscriptions/local.probe--probe"}


def test_raw_pubsub_push_golden_envelope():
    body = (GOLDEN / "pubsub_push_envelope.json").read_bytes()
    event = parse_push_request({"Content-Type": "application/json"}, body)
    assert event.event_id == "11475939874213"
    assert event.topic == "local.probe"
    assert event.delivery_attempt == 2
    assert event.subscription == "projects/quantsentinel-local/subscriptions/local.probe--probe"
    assert json.loads(event.data)["behaviour"] == "ok"
    assert event.published_at.isoformat() == "2026-11-20T04:00:01.250000+00:00"


def test_binary_cloudevent_uses_ce_id():
    headers = {
        "ce-specversion": "1.0", "ce-id": "ce-42", "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/local.probe", "Content-Type": "application/json",
    }
    body = envelope(messageId=None, message_id=None)
    event = parse_push_request(headers, json.dumps(body).encode())
    assert event.event_id == "ce-42"
    assert event.data == b'{"x": 1}'


def test_structured_cloudevent():
    ce = {"specversion": "1.0", "id": "ce-7", "type": "google.cloud.pubsub.topic.v1.messagePublished",
          "source": "//pubsub.googleapis.com/projects/p/topics/t", "data": envelope()}
    event = parse_push_request({"Content-Type": "application/cloudevents+json"}, json.dumps(ce).encode())
    assert event.event_id == "1234567890"


@pytest.mark.parametrize(
    ("headers", "body", "match"),
    [
        ({}, b"not json", "not JSON"),
        ({}, b"[]", "push body"),
        ({}, json.dumps({"message": "x"}).encode(), "push body"),
        ({}, json.dumps(envelope(data="@@not base64@@")).encode(), "base64"),
        ({}, json.dumps(envelope(messageId=None, message_id=None)).encode(), "messageId"),
        ({}, json.dumps(envelope(attributes={"a": 1})).encode(), "attributes"),
        ({}, json.dumps(envelope(publishTime="yesterday", publish_time=None)).encode(), "RFC 3339"),
        ({}, json.dumps(envelope(publishTime="2026-11-20T04:00:00", publish_time=None)).encode(), "time zone"),
        ({"ce-specversion": "1.0"}, json.dumps(envelope()).encode(), "ce-id"),
        ({"Content-Type": "application/cloudevents+json"}, json.dumps({"id": "x"}).encode(), "structured"),
    ],
)
def test_malformed_requests_say_why(headers, body, match):
    with pytest.raises(MalformedEvent, match=match):
        parse_push_request(headers, body)


def test_dead_letter_attributes_respect_pubsub_limits():
    from shared.runtime import dead_letter_attributes

    original = {f"k{i}": "v" for i in range(150)} | {"bad\x00key": "x\x00y", "googreserved": "z"}
    out = dead_letter_attributes(original, {"qs_reason": "é" * 2000, "qs_reason_code": "c"})
    assert len(out) == 100
    assert out["qs_reason_code"] == "c"
    assert len(out["qs_reason"].encode()) <= 1024
    assert all("\x00" not in k + v for k, v in out.items())
    assert not any(k.startswith("goog") for k in out)
