"""Functions under test through ``functions_framework.create_app(...).test_client()``,
against the real embedded PostgreSQL and the Pub/Sub emulator (for the dead-letter path)."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.auth import LocalTokenIssuer
from shared.contracts import Message, encode

ROOT = Path(__file__).resolve().parents[2]
SECRET = "functions-test-secret-0123456789abcdef"
PROJECT = "qs-functions-test"


@pytest.fixture(scope="session")
def pubsub():
    from google.cloud import pubsub_v1

    from local.pubsub_emulator import PubSubEmulator

    with PubSubEmulator() as emulator:
        mp = pytest.MonkeyPatch()
        mp.setenv("PUBSUB_EMULATOR_HOST", emulator.address)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        dlq = f"projects/{PROJECT}/topics/qs.dead-letter"
        publisher.create_topic(name=dlq)
        subscriber.create_subscription(name=f"projects/{PROJECT}/subscriptions/dlq-reader", topic=dlq)
        yield emulator, subscriber
        subscriber.close()
        mp.undo()


@pytest.fixture
def function_env(monkeypatch, pg, pubsub):
    monkeypatch.setenv("DATABASE_URL", pg.app_url)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub[0].address)
    monkeypatch.setenv("QS_PROJECT_ID", PROJECT)
    monkeypatch.setenv("QS_AUTH_MODE", "local")
    monkeypatch.setenv("QS_LOCAL_AUTH_SECRET", SECRET)
    monkeypatch.delenv("QS_ALLOWED_INVOKERS", raising=False)


@pytest.fixture
def client_for(function_env):
    import functions_framework

    def make(source: str):
        app = functions_framework.create_app("entry", str(ROOT / source / "main.py"))
        return app.test_client()

    return make


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": LocalTokenIssuer(SECRET).header("http://localhost/", "push@qs.local")}


def cloudevent(message: Message | None = None, *, data: bytes | None = None,
               attributes: dict[str, str] | None = None, event_id: str | None = None,
               published: datetime | None = None) -> tuple[dict[str, str], bytes]:
    """A binary-mode CloudEvent as Eventarc delivers a Pub/Sub message: (headers, body)."""
    if message is not None:
        data, attributes = encode(message)
    event_id = event_id or str(uuid.uuid4().int)[:16]
    published = published or datetime.now(UTC)
    body = {
        "message": {
            "data": base64.b64encode(data or b"").decode(),
            "attributes": attributes or {},
            "messageId": event_id,
            "publishTime": published.isoformat().replace("+00:00", "Z"),
        },
        "subscription": f"projects/{PROJECT}/subscriptions/test",
    }
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{(attributes or {}).get('contract', 'x')}",
        "ce-time": published.isoformat(),
        "Content-Type": "application/json",
    }
    return headers, json.dumps(body).encode()


@contextlib.contextmanager
def topic_listener(pubsub, topics: tuple[str, ...], tag: str):
    """Pull subscriptions on ``topics`` (created if missing) for the duration; yields
    ``pull(topic) -> [decoded messages]``, acknowledging what it returns."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    from shared.contracts import decode

    _, subscriber = pubsub
    publisher = pubsub_v1.PublisherClient()
    subs = {}
    for topic in topics:
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(name=f"projects/{PROJECT}/topics/{topic}")
        name = f"projects/{PROJECT}/subscriptions/{topic}-{tag}-{uuid.uuid4().hex[:8]}"
        subscriber.create_subscription(name=name, topic=f"projects/{PROJECT}/topics/{topic}")
        subs[topic] = name

    def pull(topic: str) -> list:
        response = subscriber.pull(subscription=subs[topic], max_messages=20, timeout=5)
        if response.received_messages:
            subscriber.acknowledge(subscription=subs[topic],
                                   ack_ids=[m.ack_id for m in response.received_messages])
        return [decode(m.message.data, dict(m.message.attributes))
                for m in response.received_messages]

    try:
        yield pull
    finally:
        for name in subs.values():
            subscriber.delete_subscription(subscription=name)


def pull_dead_letters(subscriber, max_messages: int = 50) -> list:
    response = subscriber.pull(subscription=f"projects/{PROJECT}/subscriptions/dlq-reader",
                               max_messages=max_messages, timeout=5)
    if response.received_messages:
        subscriber.acknowledge(subscription=f"projects/{PROJECT}/subscriptions/dlq-reader",
                               ack_ids=[m.ack_id for m in response.received_messages])
    return [m.message for m in response.received_messages]


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """The GCS emulator with the buckets chain_poll writes to."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from local.gcs import GcsEmulator

    emulator = GcsEmulator(tmp_path_factory.mktemp("gcs") / "gcs.log")
    emulator.start()
    mp = pytest.MonkeyPatch()
    mp.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    client.create_bucket("qs-raw-snapshots")
    yield emulator, client
    mp.undo()
    emulator.stop()


# The risk_check fixtures (a stored NIFTY chain, a client with a fixed clock, signal pulls)
# are shared by its event and API tests.
from tests.functions.risk_support import (  # noqa: E402, F401
    previous_snapshot,
    risk_check,
    signals,
    snapshot,
)
