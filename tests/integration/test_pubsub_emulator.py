"""The local Pub/Sub emulator, driven by the real ``google-cloud-pubsub`` clients.

Every test talks gRPC to :class:`local.pubsub_emulator.PubSubEmulator` through
``PUBSUB_EMULATOR_HOST``; push subscriptions deliver to a local HTTP server that records
requests and answers with scripted status codes.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1

from local.pubsub_emulator import THREAD_PREFIX, PubSubEmulator, main

pytestmark = pytest.mark.integration

PROJECT = "qs-test"
REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 5.0  # generous upper bound for anything that should happen "soon"


def topic_path(topic: str) -> str:
    return f"projects/{PROJECT}/topics/{topic}"


def sub_path(sub: str) -> str:
    return f"projects/{PROJECT}/subscriptions/{sub}"


def token_for(audience: str) -> str:
    return f"token-for:{audience}"


# ---------------------------------------------------------------------- push endpoint


@dataclass
class PushRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class PushRecorder:
    """A local HTTP push endpoint recording requests; statuses are scripted per path."""

    port: int = 0
    requests: list[PushRequest] = field(default_factory=list)
    scripts: dict[str, deque[int]] = field(default_factory=dict)
    default_status: dict[str, int] = field(default_factory=dict)
    hold: threading.Event | None = None  # when set up, requests block until it is set
    cond: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *statuses: int, then: int = 204) -> None:
        with self.cond:
            self.scripts[path] = deque(statuses)
            self.default_status[path] = then

    def record(self, path: str, headers: dict[str, str], raw: bytes) -> int:
        with self.cond:
            self.requests.append(PushRequest(path, headers, json.loads(raw), time.monotonic()))
            self.cond.notify_all()
            queued = self.scripts.get(path)
            return queued.popleft() if queued else self.default_status.get(path, 204)

    def received(self, path: str) -> list[PushRequest]:
        with self.cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = WAIT) -> list[PushRequest]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(got := [r for r in self.requests if r.path == path]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{path}: {len(got)} of {count} pushes arrived")
                self.cond.wait(remaining)
            return got


class _PushHandler(BaseHTTPRequestHandler):
    server: _RecorderServer

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        recorder = self.server.recorder
        status = recorder.record(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
        if recorder.hold is not None:
            recorder.hold.wait(WAIT)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


class _RecorderServer(ThreadingHTTPServer):
    daemon_threads = True
    recorder: PushRecorder


@pytest.fixture
def push_server() -> Iterator[PushRecorder]:
    server = _RecorderServer(("127.0.0.1", 0), _PushHandler)
    recorder = PushRecorder(port=server.server_address[1])
    server.recorder = recorder
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield recorder
    if recorder.hold is not None:
        recorder.hold.set()
    server.shutdown()
    server.server_close()
    thread.join(WAIT)


# ---------------------------------------------------------------------- emulator + clients


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., PubSubEmulator]]:
    started: list[PubSubEmulator] = []

    def make(**kwargs: Any) -> PubSubEmulator:
        kwargs.setdefault("push_token", token_for)
        kwargs.setdefault("push_timeout", 5.0)
        emulator = PubSubEmulator(**kwargs)
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., PubSubEmulator]) -> PubSubEmulator:
    return make_emulator()


@dataclass
class Clients:
    publisher: pubsub_v1.PublisherClient
    subscriber: pubsub_v1.SubscriberClient

    def create_topic(self, topic: str) -> str:
        self.publisher.create_topic(name=topic_path(topic))
        return topic_path(topic)

    def create_sub(self, sub: str, topic: str, **fields: Any) -> str:
        self.subscriber.create_subscription(
            request={"name": sub_path(sub), "topic": topic_path(topic), **fields}
        )
        return sub_path(sub)

    def publish(self, topic: str, data: bytes, **attributes: str) -> str:
        return self.publisher.publish(topic_path(topic), data, **attributes).result(WAIT)

    def pull(self, sub: str, max_messages: int = 10, timeout: float = WAIT) -> list[Any]:
        response = self.subscriber.pull(
            request={"subscription": sub_path(sub), "max_messages": max_messages},
            timeout=timeout,
        )
        return list(response.received_messages)

    def ack(self, sub: str, received: list[Any]) -> None:
        self.subscriber.acknowledge(
            subscription=sub_path(sub), ack_ids=[m.ack_id for m in received]
        )


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[PubSubEmulator], Clients]]:
    opened: list[Clients] = []

    def connect_to(emulator: PubSubEmulator) -> Clients:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.address)
        clients = Clients(
            pubsub_v1.PublisherClient(
                batch_settings=pubsub_v1.types.BatchSettings(max_messages=50, max_latency=0.02)
            ),
            pubsub_v1.SubscriberClient(),
        )
        opened.append(clients)
        return clients

    yield connect_to
    for clients in opened:
        clients.publisher.stop()
        clients.publisher.transport.close()
        clients.subscriber.close()


@pytest.fixture
def clients(emulator: PubSubEmulator, connect: Callable[[PubSubEmulator], Clients]) -> Clients:
    return connect(emulator)


# ---------------------------------------------------------------------- admin


def test_topic_lifecycle(clients: Clients, emulator: PubSubEmulator) -> None:
    publisher = clients.publisher
    names = ["chain.snapshot", "qs.dead-letter", "risk.alerts", "a~b+c%d_e"]
    for name in names:
        created = publisher.create_topic(name=topic_path(name))
        assert created.name == topic_path(name)
    assert publisher.get_topic(topic=topic_path("chain.snapshot")).name == topic_path(
        "chain.snapshot"
    )
    listed = publisher.list_topics(request={"project": f"projects/{PROJECT}", "page_size": 3})
    assert sorted(t.name for t in listed) == sorted(topic_path(n) for n in names)
    assert list(publisher.list_topics(project="projects/other-project")) == []

    with pytest.raises(exceptions.AlreadyExists):
        publisher.create_topic(name=topic_path("chain.snapshot"))
    for bad in ("ab", "1starts-with-digit", "has space", "goog-reserved", "x" * 256):
        with pytest.raises(exceptions.InvalidArgument):
            publisher.create_topic(name=topic_path(bad))
    with pytest.raises(exceptions.InvalidArgument):
        publisher.create_topic(name="projects/qs-test/chain.snapshot")

    publisher.delete_topic(topic=topic_path("risk.alerts"))
    with pytest.raises(exceptions.NotFound):
        publisher.get_topic(topic=topic_path("risk.alerts"))
    with pytest.raises(exceptions.NotFound):
        publisher.delete_topic(topic=topic_path("risk.alerts"))
    with pytest.raises(exceptions.NotFound):
        clients.publish("risk.alerts", b"nobody home")
    with pytest.raises(exceptions.InvalidArgument):
        clients.publish("chain.snapshot", b"")  # no data and no attributes
    assert emulator.stats()["topics"] == 3


def test_subscription_lifecycle(clients: Clients, emulator: PubSubEmulator) -> None:
    subscriber = clients.subscriber
    clients.create_topic("chain.snapshot")
    clients.create_topic("qs.dead-letter")
    created = subscriber.create_subscription(
        name=sub_path("probe.chain-snapshot"), topic=topic_path("chain.snapshot")
    )
    assert created.ack_deadline_seconds == 10
    clients.create_sub(
        "risk.chain-snapshot",
        "chain.snapshot",
        ack_deadline_seconds=30,
        retry_policy={
            "minimum_backoff": timedelta(seconds=0.05),
            "maximum_backoff": timedelta(seconds=2),
        },
        dead_letter_policy={"dead_letter_topic": topic_path("qs.dead-letter")},
    )
    got = subscriber.get_subscription(subscription=sub_path("risk.chain-snapshot"))
    assert got.topic == topic_path("chain.snapshot")
    assert got.ack_deadline_seconds == 30
    assert got.retry_policy.minimum_backoff == timedelta(seconds=0.05)
    assert got.dead_letter_policy.max_delivery_attempts == 5  # the API's default

    listed = subscriber.list_subscriptions(project=f"projects/{PROJECT}")
    assert sorted(s.name for s in listed) == [
        sub_path("probe.chain-snapshot"),
        sub_path("risk.chain-snapshot"),
    ]
    on_topic = clients.publisher.list_topic_subscriptions(topic=topic_path("chain.snapshot"))
    assert sorted(on_topic) == [sub_path("probe.chain-snapshot"), sub_path("risk.chain-snapshot")]

    with pytest.raises(exceptions.AlreadyExists):
        clients.create_sub("probe.chain-snapshot", "chain.snapshot")
    with pytest.raises(exceptions.NotFound):
        clients.create_sub("orphan-sub", "no.such-topic")
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=sub_path("no.such-sub"))
    invalid: list[dict[str, Any]] = [
        {"ack_deadline_seconds": 5},
        {"ack_deadline_seconds": 601},
        {
            "dead_letter_policy": {
                "dead_letter_topic": topic_path("qs.dead-letter"),
                "max_delivery_attempts": 4,
            }
        },
        {
            "dead_letter_policy": {
                "dead_letter_topic": topic_path("qs.dead-letter"),
                "max_delivery_attempts": 101,
            }
        },
        {"dead_letter_policy": {"dead_letter_topic": "not-a-topic-name"}},
        {"push_config": {"push_endpoint": "ftp://example.com/push"}},
        {
            "retry_policy": {
                "minimum_backoff": timedelta(seconds=5),
                "maximum_backoff": timedelta(seconds=1),
            }
        },
    ]
    for fields in invalid:
        with pytest.raises(exceptions.InvalidArgument):
            clients.create_sub("bad-sub", "chain.snapshot", **fields)
    with pytest.raises(exceptions.InvalidArgument):
        clients.pull("probe.chain-snapshot", max_messages=0)

    # Deleting a topic detaches its subscriptions, as in Pub/Sub.
    clients.publisher.delete_topic(topic=topic_path("chain.snapshot"))
    detached = subscriber.get_subscription(subscription=sub_path("probe.chain-snapshot"))
    assert detached.topic == "_deleted-topic_"

    subscriber.delete_subscription(subscription=sub_path("probe.chain-snapshot"))
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=sub_path("probe.chain-snapshot"))
    with pytest.raises(exceptions.NotFound):
        subscriber.delete_subscription(subscription=sub_path("probe.chain-snapshot"))
    with pytest.raises(exceptions.NotFound):
        clients.pull("probe.chain-snapshot")
    assert emulator.stats()["subscriptions"] == 1


# ---------------------------------------------------------------------- pull


def test_batched_publish_then_pull_and_ack(clients: Clients, emulator: PubSubEmulator) -> None:
    clients.create_topic("chain.snapshot")
    clients.create_sub("probe.chain-snapshot", "chain.snapshot")
    clients.create_sub("risk.chain-snapshot", "chain.snapshot")
    before = datetime.now(UTC)
    futures = [
        clients.publisher.publish(
            topic_path("chain.snapshot"),
            f"snapshot {i}".encode(),
            seq=str(i),
            event="chain.snapshot",
        )
        for i in range(200)
    ]
    ids = [f.result(WAIT) for f in futures]
    assert len(set(ids)) == 200
    assert emulator.stats()["backlog"] == {
        sub_path("probe.chain-snapshot"): 200,
        sub_path("risk.chain-snapshot"): 200,
    }

    received: dict[str, Any] = {}
    while len(received) < 200:
        batch = clients.pull("probe.chain-snapshot", max_messages=100)
        assert batch
        assert len(batch) <= 100
        clients.ack("probe.chain-snapshot", batch)
        for m in batch:
            received[m.message.message_id] = m
    assert set(received) == set(ids)
    by_id = dict(zip(ids, range(200), strict=True))
    for message_id, m in received.items():
        i = by_id[message_id]
        assert m.message.data == f"snapshot {i}".encode()
        assert dict(m.message.attributes) == {"seq": str(i), "event": "chain.snapshot"}
        assert before - timedelta(seconds=1) <= m.message.publish_time <= datetime.now(UTC)
        assert m.delivery_attempt == 0  # no dead-letter policy: not reported

    assert emulator.wait_idle(WAIT, subscriptions=[sub_path("probe.chain-snapshot")])
    assert not emulator.wait_idle(0.05)  # the other subscription still holds all 200
    stats = emulator.stats()
    assert stats["published"] == 200
    assert stats["acked"] == 200
    assert stats["backlog"][sub_path("risk.chain-snapshot")] == 200
    json.dumps(stats)


def test_ack_deadline_expiry_and_nack_redeliver(clients: Clients, emulator: PubSubEmulator) -> None:
    clients.create_topic("chain.snapshot")
    clients.create_sub("probe.chain-snapshot", "chain.snapshot")
    message_id = clients.publish("chain.snapshot", b"lease me")

    [first] = clients.pull("probe.chain-snapshot")
    assert first.message.message_id == message_id
    # The real minimum subscription deadline is 10 s; shorten this lease to 1 s instead.
    clients.subscriber.modify_ack_deadline(
        subscription=sub_path("probe.chain-snapshot"),
        ack_ids=[first.ack_id],
        ack_deadline_seconds=1,
    )
    started = time.monotonic()
    [second] = clients.pull("probe.chain-snapshot")
    assert second.message.message_id == message_id
    assert second.ack_id != first.ack_id
    assert time.monotonic() - started >= 0.8

    clients.ack("probe.chain-snapshot", [first])  # stale ack id: ignored, not an error
    clients.subscriber.modify_ack_deadline(
        subscription=sub_path("probe.chain-snapshot"),
        ack_ids=[second.ack_id],
        ack_deadline_seconds=0,
    )  # a nack: redelivered at once (no retry policy)
    [third] = clients.pull("probe.chain-snapshot", timeout=1.0)
    assert third.message.message_id == message_id
    clients.ack("probe.chain-snapshot", [third])
    assert emulator.wait_idle(WAIT)
    assert clients.pull("probe.chain-snapshot", timeout=0.5) == []
    assert emulator.stats()["delivered"] == 3


def test_pull_dead_letters_after_nacks(clients: Clients, emulator: PubSubEmulator) -> None:
    clients.create_topic("chain.snapshot")
    clients.create_topic("qs.dead-letter")
    clients.create_sub("qs.dead-letter.inspect", "qs.dead-letter")
    clients.create_sub(
        "probe.chain-snapshot",
        "chain.snapshot",
        dead_letter_policy={
            "dead_letter_topic": topic_path("qs.dead-letter"),
            "max_delivery_attempts": 5,
        },
    )
    message_id = clients.publish("chain.snapshot", b"poison", kind="bad")
    for attempt in range(1, 6):
        [m] = clients.pull("probe.chain-snapshot")
        assert m.message.message_id == message_id
        assert m.delivery_attempt == attempt
        clients.subscriber.modify_ack_deadline(
            subscription=sub_path("probe.chain-snapshot"),
            ack_ids=[m.ack_id],
            ack_deadline_seconds=0,
        )
    [dead] = clients.pull("qs.dead-letter.inspect")
    assert dead.message.data == b"poison"
    assert dead.message.attributes["kind"] == "bad"
    assert dead.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert clients.pull("probe.chain-snapshot", timeout=0.5) == []
    assert emulator.stats()["backlog"][sub_path("probe.chain-snapshot")] == 0


# ---------------------------------------------------------------------- push


def test_push_envelope_shape_and_auth(
    clients: Clients, emulator: PubSubEmulator, push_server: PushRecorder
) -> None:
    clients.create_topic("chain.snapshot")
    clients.create_topic("qs.dead-letter")
    email = "push-invoker@qs-test.iam.gserviceaccount.com"
    clients.create_sub(
        "push.auth",
        "chain.snapshot",
        push_config={
            "push_endpoint": push_server.url("/auth"),
            "oidc_token": {"service_account_email": email, "audience": "https://qs.example/aud"},
        },
    )
    clients.create_sub(
        "push.endpoint-audience",
        "chain.snapshot",
        push_config={
            "push_endpoint": push_server.url("/endpoint-aud?x=1"),
            "oidc_token": {"service_account_email": email},
        },
    )
    clients.create_sub(
        "push.anonymous",
        "chain.snapshot",
        push_config={"push_endpoint": push_server.url("/anonymous")},
    )
    clients.create_sub(
        "push.with-dlq",
        "chain.snapshot",
        push_config={"push_endpoint": push_server.url("/dlq")},
        dead_letter_policy={"dead_letter_topic": topic_path("qs.dead-letter")},
    )
    clients.create_sub("later.push", "chain.snapshot")  # pull now, push after ModifyPushConfig

    ordered = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    try:
        data = b"\x00\xff binary \xe2\x82\xb9"
        message_id = ordered.publish(
            topic_path("chain.snapshot"),
            data,
            ordering_key="NIFTY",
            event="chain.snapshot",
            schema="v1",
        ).result(WAIT)
    finally:
        ordered.stop()
        ordered.transport.close()

    [auth] = push_server.wait_for("/auth", 1)
    assert set(auth.body) == {"message", "subscription"}
    assert auth.body["subscription"] == sub_path("push.auth")
    message = auth.body["message"]
    assert set(message) == {
        "data",
        "attributes",
        "messageId",
        "message_id",
        "publishTime",
        "publish_time",
        "orderingKey",
    }
    assert base64.b64decode(message["data"], validate=True) == data
    assert message["attributes"] == {"event": "chain.snapshot", "schema": "v1"}
    assert message["messageId"] == message["message_id"] == message_id
    assert message["orderingKey"] == "NIFTY"
    assert message["publishTime"] == message["publish_time"]
    assert message["publishTime"].endswith("Z")
    published = datetime.fromisoformat(message["publishTime"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - published) < timedelta(seconds=10)
    assert auth.headers["content-type"] == "application/json"
    assert auth.headers["authorization"] == "Bearer token-for:https://qs.example/aud"

    [by_endpoint] = push_server.wait_for("/endpoint-aud?x=1", 1)
    assert by_endpoint.headers["authorization"] == (
        f"Bearer token-for:{push_server.url('/endpoint-aud?x=1')}"
    )
    [anonymous] = push_server.wait_for("/anonymous", 1)
    assert "authorization" not in anonymous.headers
    assert "deliveryAttempt" not in anonymous.body
    [with_dlq] = push_server.wait_for("/dlq", 1)
    assert with_dlq.body["deliveryAttempt"] == 1
    assert with_dlq.body["message"]["messageId"] == message_id

    # A message without ordering key has no orderingKey; a pull subscription turned push.
    clients.subscriber.modify_push_config(
        subscription=sub_path("later.push"),
        push_config={"push_endpoint": push_server.url("/later")},
    )
    second_id = clients.publish("chain.snapshot", b"second")
    later = push_server.wait_for("/later", 2)
    assert {r.body["message"]["messageId"] for r in later} == {message_id, second_id}
    plain = next(
        r
        for r in push_server.wait_for("/anonymous", 2)
        if r.body["message"]["messageId"] == second_id
    )
    assert "orderingKey" not in plain.body["message"]
    assert emulator.wait_idle(WAIT)

    # And back to pull: nothing more is pushed.
    clients.subscriber.modify_push_config(subscription=sub_path("later.push"), push_config={})
    third_id = clients.publish("chain.snapshot", b"third")
    [pulled] = clients.pull("later.push")
    assert pulled.message.message_id == third_id
    assert len(push_server.received("/later")) == 2


def test_push_retries_with_exponential_backoff(
    clients: Clients, emulator: PubSubEmulator, push_server: PushRecorder
) -> None:
    clients.create_topic("chain.snapshot")
    push_server.script("/flaky", 500, 500, 503, then=200)
    clients.create_sub(
        "push.flaky",
        "chain.snapshot",
        push_config={"push_endpoint": push_server.url("/flaky")},
        retry_policy={
            "minimum_backoff": timedelta(seconds=0.05),
            "maximum_backoff": timedelta(seconds=1),
        },
    )
    message_id = clients.publish("chain.snapshot", b"retry me")
    pushes = push_server.wait_for("/flaky", 4)
    assert {p.body["message"]["messageId"] for p in pushes} == {message_id}
    assert all("deliveryAttempt" not in p.body for p in pushes)
    gaps = [b.at - a.at for a, b in zip(pushes, pushes[1:], strict=False)]
    for gap, expected in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert gap >= expected * 0.9, gaps
    assert emulator.wait_idle(WAIT)
    time.sleep(0.3)
    assert len(push_server.received("/flaky")) == 4  # acked by the 200: no more pushes
    stats = emulator.stats()
    assert (stats["delivered"], stats["acked"]) == (4, 1)


def test_push_dead_letters_after_max_delivery_attempts(
    clients: Clients, emulator: PubSubEmulator, push_server: PushRecorder
) -> None:
    clients.create_topic("chain.snapshot")
    clients.create_topic("qs.dead-letter")
    clients.create_sub("qs.dead-letter.inspect", "qs.dead-letter")
    push_server.script("/broken", then=500)
    clients.create_sub(
        "probe.chain-snapshot",
        "chain.snapshot",
        push_config={"push_endpoint": push_server.url("/broken")},
        retry_policy={
            "minimum_backoff": timedelta(seconds=0.02),
            "maximum_backoff": timedelta(seconds=0.05),
        },
        dead_letter_policy={
            "dead_letter_topic": topic_path("qs.dead-letter"),
            "max_delivery_attempts": 5,
        },
    )
    message_id = clients.publish("chain.snapshot", b"poison", event="chain.snapshot")

    [dead] = clients.pull("qs.dead-letter.inspect")
    pushes = push_server.received("/broken")
    assert [p.body["deliveryAttempt"] for p in pushes] == [1, 2, 3, 4, 5]
    assert {p.body["message"]["messageId"] for p in pushes} == {message_id}
    assert dead.message.data == b"poison"
    attributes = dict(dead.message.attributes)
    publish_time = attributes.pop("CloudPubSubDeadLetterSourceTopicPublishTime")
    assert attributes == {
        "event": "chain.snapshot",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": "probe.chain-snapshot",
        "CloudPubSubDeadLetterSourceSubscriptionProject": PROJECT,
    }
    assert publish_time == pushes[0].body["message"]["publishTime"]
    clients.ack("qs.dead-letter.inspect", [dead])

    assert emulator.wait_idle(WAIT)
    time.sleep(0.2)
    assert len(push_server.received("/broken")) == 5
    stats = emulator.stats()
    assert stats["dead_lettered"] == 1
    assert stats["backlog"] == {
        sub_path("qs.dead-letter.inspect"): 0,
        sub_path("probe.chain-snapshot"): 0,
    }


def test_missing_dead_letter_topic_keeps_retrying(
    clients: Clients,
    emulator: PubSubEmulator,
    push_server: PushRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clients.create_topic("chain.snapshot")
    push_server.script("/broken", then=503)
    clients.create_sub(
        "probe.chain-snapshot",
        "chain.snapshot",
        push_config={"push_endpoint": push_server.url("/broken")},
        retry_policy={
            "minimum_backoff": timedelta(seconds=0.01),
            "maximum_backoff": timedelta(seconds=0.02),
        },
        dead_letter_policy={
            "dead_letter_topic": topic_path("qs.no-such-dead-letter"),
            "max_delivery_attempts": 5,
        },
    )
    with caplog.at_level("WARNING", logger="local.pubsub_emulator"):
        clients.publish("chain.snapshot", b"poison")
        push_server.wait_for("/broken", 7)
    assert "does not exist" in caplog.text
    assert emulator.stats()["dead_lettered"] == 0
    assert not emulator.wait_idle(0.05)


def test_duplicate_deliveries(
    make_emulator: Callable[..., PubSubEmulator],
    connect: Callable[[PubSubEmulator], Clients],
    push_server: PushRecorder,
) -> None:
    emulator = make_emulator(duplicate_deliveries=3)
    clients = connect(emulator)
    clients.create_topic("chain.snapshot")
    clients.create_sub(
        "push.dup", "chain.snapshot", push_config={"push_endpoint": push_server.url("/dup")}
    )
    clients.create_sub("pull.dup", "chain.snapshot")
    message_id = clients.publish("chain.snapshot", b"at least once")

    pushes = push_server.wait_for("/dup", 3)
    assert [p.body["message"]["messageId"] for p in pushes] == [message_id] * 3
    pulled_ids = []
    for _ in range(3):
        [m] = clients.pull("pull.dup")
        pulled_ids.append(m.message.message_id)
        clients.ack("pull.dup", [m])
    assert pulled_ids == [message_id] * 3
    assert emulator.wait_idle(WAIT)
    assert clients.pull("pull.dup", timeout=0.5) == []
    time.sleep(0.1)
    assert len(push_server.received("/dup")) == 3
    assert emulator.stats()["acked"] == 6


# ---------------------------------------------------------------------- streaming pull


def test_streaming_pull_receives_and_acks(clients: Clients, emulator: PubSubEmulator) -> None:
    clients.create_topic("chain.snapshot")
    subscription = clients.create_sub("probe.chain-snapshot", "chain.snapshot")
    futures = [
        clients.publisher.publish(topic_path("chain.snapshot"), f"m{i}".encode(), seq=str(i))
        for i in range(30)
    ]
    ids = {f.result(WAIT) for f in futures}

    received: list[tuple[str, bytes, str]] = []
    lock = threading.Lock()
    done = threading.Event()

    def callback(message: Any) -> None:
        with lock:
            received.append((message.message_id, message.data, message.attributes["seq"]))
            if len(received) >= 40:
                done.set()
        message.ack()

    streaming = clients.subscriber.subscribe(subscription, callback)
    try:
        # 30 published before, 10 after the stream opened.
        ids |= {
            clients.publish("chain.snapshot", f"m{i}".encode(), seq=str(i)) for i in range(30, 40)
        }
        assert done.wait(WAIT * 2)
        assert emulator.wait_idle(WAIT)
    finally:
        streaming.cancel()
        streaming.result(WAIT)
    assert {r[0] for r in received} == ids
    assert sorted(r[1] for r in received) == sorted(f"m{i}".encode() for i in range(40))
    assert all(data == f"m{seq}".encode() for _, data, seq in received)
    assert emulator.stats()["acked"] == 40


# ---------------------------------------------------------------------- lifecycle


def _emulator_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)}


def test_stop_frees_port_and_threads(
    connect: Callable[[PubSubEmulator], Clients], push_server: PushRecorder
) -> None:
    emulator = PubSubEmulator(push_token=token_for)
    assert not emulator.address.endswith(":0") or emulator.port == 0
    others = _emulator_threads()  # emulators of other fixtures in this session
    with emulator:
        assert emulator.port > 0
        assert emulator.address == f"127.0.0.1:{emulator.port}"
        clients = connect(emulator)
        clients.create_topic("chain.snapshot")
        clients.create_sub("probe.chain-snapshot", "chain.snapshot")
        push_server.hold = threading.Event()  # the endpoint hangs: stop must not wait for it
        clients.create_sub(
            "push.hanging",
            "chain.snapshot",
            push_config={"push_endpoint": push_server.url("/hang")},
        )
        streaming = clients.subscriber.subscribe(
            sub_path("probe.chain-snapshot"), lambda m: m.ack()
        )
        clients.publish("chain.snapshot", b"x")
        push_server.wait_for("/hang", 1)
        streaming.cancel()
        streaming.result(WAIT)
        assert _emulator_threads() - others
        started = time.monotonic()
    assert time.monotonic() - started < 3.0
    assert _emulator_threads() - others == set()
    with socket.socket() as probe:  # the port is free again (TIME_WAIT leftovers allowed)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", emulator.port))
        probe.listen(1)
    emulator.stop()  # idempotent
    with pytest.raises(RuntimeError):
        emulator.start()


def test_constructor_rejects_non_loopback_and_bad_values() -> None:
    with pytest.raises(ValueError):
        PubSubEmulator("0.0.0.0")
    with pytest.raises(ValueError):
        PubSubEmulator(duplicate_deliveries=0)
    PubSubEmulator().stop()  # never started: a no-op


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out
    assert "PUBSUB_EMULATOR_HOST" in out


def test_cli_runs_until_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.pubsub_emulator", "--port", "0", "--log-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Pub/Sub emulator listening on 127.0.0.1:"), first
        address = first.rsplit(" ", 1)[1].strip()
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", address)
        publisher = pubsub_v1.PublisherClient()
        try:
            assert publisher.create_topic(name=topic_path("chain.snapshot")).name
        finally:
            publisher.transport.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=WAIT)
        assert process.returncode == 0, err
        assert "stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
