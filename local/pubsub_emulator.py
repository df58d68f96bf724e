"""An in-process Google Cloud Pub/Sub emulator speaking the real gRPC API.

The official emulator cannot be installed here, so this module serves the parts of the
``google.pubsub.v1.Publisher`` and ``google.pubsub.v1.Subscriber`` gRPC services that
Quantsentinel uses. The unmodified ``google-cloud-pubsub`` client talks to it when
``PUBSUB_EMULATOR_HOST`` is set to :attr:`PubSubEmulator.address` (the client then uses an
insecure channel and no credentials).

What it does, following the real service:

* topics and subscriptions with name validation and NOT_FOUND / ALREADY_EXISTS /
  INVALID_ARGUMENT status codes;
* publish fans a message out to every subscription attached to the topic at publish time;
* pull delivery (``Pull``, ``StreamingPull``, ``Acknowledge``, ``ModifyAckDeadline``) with
  leases that expire after the ack deadline and are then redelivered;
* push delivery: background workers POST the standard push envelope to ``push_endpoint``,
  with an OIDC bearer token obtained from the ``push_token`` callable; 102/200/201/202/204
  acknowledge, anything else (or a network error, or a timeout) is retried with exponential
  backoff from the subscription's retry policy;
* dead-lettering after ``max_delivery_attempts`` with the ``CloudPubSubDeadLetter*``
  attributes;
* fault injection: ``duplicate_deliveries=k`` delivers every message ``k`` times (same
  message id), to exercise idempotent consumers.

Not emulated: snapshots, seek, schemas, filters, exactly-once delivery, ordered delivery
(ordering keys are kept and passed on, but delivery order is not guaranteed), message
retention and expiration policies, IAM.

Run standalone with ``python -m local.pubsub_emulator --port 8085``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import heapq
import http.client
import itertools
import json
import logging
import re
import signal
import socket
import ssl
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.pubsub_v1 import types

logger = logging.getLogger(__name__)

__all__ = ["PubSubEmulator", "main"]

#: Thread names of everything this module starts begin with this.
THREAD_PREFIX = "pubsub-emulator"

_RESOURCE_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")
_PROJECT_RE = re.compile(r"[^/\s]+")
_DELETED_TOPIC = "_deleted-topic_"

_DEFAULT_ACK_DEADLINE = 10
_MIN_ACK_DEADLINE = 10
_MAX_ACK_DEADLINE = 600
_DEFAULT_MIN_BACKOFF = 10.0
_DEFAULT_MAX_BACKOFF = 600.0
_MAX_BACKOFF_LIMIT = 600.0
_DEFAULT_MAX_DELIVERY_ATTEMPTS = 5
_MIN_DELIVERY_ATTEMPTS = 5
_MAX_DELIVERY_ATTEMPTS = 100
_MAX_MESSAGE_BYTES = 10 * 1024 * 1024
_MAX_ATTRIBUTE_KEY_BYTES = 256
_MAX_ATTRIBUTE_VALUE_BYTES = 1024
_MAX_ORDERING_KEY_BYTES = 1024
_DEFAULT_PAGE_SIZE = 100
_MAX_PAGE_SIZE = 1000
_STREAM_BATCH = 100

#: HTTP statuses a push endpoint answers to acknowledge a message.
_PUSH_ACK_STATUSES = frozenset({102, 200, 201, 202, 204})
#: Concurrent in-flight pushes per push subscription.
_PUSH_WORKERS_PER_SUBSCRIPTION = 4
#: Longest a blocking ``Pull`` waits for a message before returning an empty response.
_PULL_MAX_WAIT = 3.0
#: Upper bound of every condition wait: waiters re-check their state at least this often.
_WAIT_SLICE = 1.0
_GRPC_WORKERS = 64
_GRPC_MAX_MESSAGE = 32 * 1024 * 1024
_PUSH_USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"


class _RpcAbort(Exception):
    """Raised inside a handler to end the RPC with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _invalid(details: str) -> _RpcAbort:
    return _RpcAbort(grpc.StatusCode.INVALID_ARGUMENT, details)


def _not_found(resource: str) -> _RpcAbort:
    return _RpcAbort(grpc.StatusCode.NOT_FOUND, f"Resource not found (resource={resource}).")


def _already_exists(resource: str) -> _RpcAbort:
    return _RpcAbort(
        grpc.StatusCode.ALREADY_EXISTS,
        f"Resource already exists in the project (resource={resource}).",
    )


def _parse_resource(name: str, collection: str, field_name: str) -> tuple[str, str]:
    """Split ``projects/{project}/{collection}/{id}`` and validate it like the real API."""
    parts = name.split("/")
    if (
        len(parts) != 4
        or parts[0] != "projects"
        or parts[2] != collection
        or not _PROJECT_RE.fullmatch(parts[1])
        or not _RESOURCE_ID_RE.fullmatch(parts[3])
        or parts[3].lower().startswith("goog")
    ):
        raise _invalid(
            f"Invalid [{collection}] name: ({field_name}={name}). Resource ids start with a "
            "letter and hold 3-255 letters, digits or -_.~+% characters (not starting 'goog')."
        )
    return parts[1], parts[3]


def _parse_project(name: str) -> str:
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "projects" or not _PROJECT_RE.fullmatch(parts[1]):
        raise _invalid(f"Invalid [projects] name: (project={name}).")
    return parts[1]


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def _rfc3339(value: datetime) -> str:
    """``2024-05-01T09:15:00.123456Z``: the RFC 3339 UTC form used in push envelopes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _paginate(names: list[str], page_size: int, page_token: str) -> tuple[list[str], str]:
    """One page of sorted ``names``; the token is the last name of the previous page."""
    if page_size < 0:
        raise _invalid("page_size must not be negative.")
    size = _DEFAULT_PAGE_SIZE if page_size == 0 else min(page_size, _MAX_PAGE_SIZE)
    remaining = [n for n in names if n > page_token] if page_token else names
    page = remaining[:size]
    token = page[-1] if len(remaining) > size else ""
    return page, token


@dataclass(frozen=True)
class _Message:
    """A published message, shared by all the subscriptions it fanned out to."""

    message_id: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str
    publish_time: datetime

    def to_proto(self) -> types.PubsubMessage:
        return types.PubsubMessage(
            data=self.data,
            attributes=self.attributes,
            message_id=self.message_id,
            publish_time=self.publish_time,
            ordering_key=self.ordering_key,
        )

    def to_push_json(self) -> dict[str, Any]:
        published = _rfc3339(self.publish_time)
        body: dict[str, Any] = {
            "data": base64.b64encode(self.data).decode("ascii"),
            "attributes": dict(self.attributes),
            "messageId": self.message_id,
            "message_id": self.message_id,
            "publishTime": published,
            "publish_time": published,
        }
        if self.ordering_key:
            body["orderingKey"] = self.ordering_key
        return body


class _State(Enum):
    READY = "ready"  # waiting to be handed out
    DELAYED = "delayed"  # in retry backoff
    LEASED = "leased"  # handed to a pull subscriber, waiting for ack until its deadline
    PUSHING = "pushing"  # an HTTP push is in flight
    DONE = "done"  # acked (all copies) or dead-lettered


@dataclass(eq=False)
class _Delivery:
    """The delivery state of one message in one subscription."""

    message: _Message
    state: _State = _State.READY
    attempts: int = 0  # deliveries so far (what deliveryAttempt reports)
    unacked_attempts: int = 0  # deliveries since the last acked copy (dead-letter counter)
    failures: int = 0  # consecutive nacks/expiries/push failures (backoff exponent)
    copies_acked: int = 0  # acked copies (duplicate_deliveries fault injection)
    ack_id: str | None = None
    lease_expiry: float = 0.0
    ready_at: float = 0.0


@dataclass(eq=False)
class _Stream:
    """Per-StreamingPull state."""

    ack_deadline: float
    max_outstanding: int
    outstanding: set[str] = field(default_factory=set)
    closed: bool = False
    error: _RpcAbort | None = None


class _Subscription:
    """A subscription's configuration and message backlog. Guarded by the emulator lock."""

    def __init__(self, config: types.Subscription, lock: threading.RLock) -> None:
        self.config = config
        self.name: str = config.name
        self.project, self.subscription_id = _parse_resource(config.name, "subscriptions", "name")
        self.available = threading.Condition(lock)  # ready messages, deletion, stop
        self.deliveries: dict[str, _Delivery] = {}  # message id -> delivery, until done
        self.ready: deque[_Delivery] = deque()
        self.delayed: list[tuple[float, int, _Delivery]] = []  # heap on ready_at
        self.leases: dict[str, _Delivery] = {}  # ack id -> leased delivery
        self.lease_heap: list[tuple[float, int, str]] = []  # heap on lease expiry
        self.push_active = False
        self.push_generation = 0
        self.deleted = False

    @property
    def is_push(self) -> bool:
        return bool(self.config.push_config.push_endpoint)

    @property
    def ack_deadline(self) -> float:
        return float(self.config.ack_deadline_seconds or _DEFAULT_ACK_DEADLINE)

    @property
    def dead_letter(self) -> tuple[str, int] | None:
        """``(dead_letter_topic, max_delivery_attempts)`` when the policy is set."""
        if "dead_letter_policy" not in self.config:
            return None
        policy = self.config.dead_letter_policy
        if not policy.dead_letter_topic:
            return None
        return (
            policy.dead_letter_topic,
            policy.max_delivery_attempts or _DEFAULT_MAX_DELIVERY_ATTEMPTS,
        )

    def backoff(self, failures: int) -> float:
        """Seconds to wait before redelivering after the ``failures``-th consecutive failure.

        Push subscriptions always back off (default 10 s doubling to 600 s); pull
        subscriptions only when they have a retry policy, else redeliver at once.
        """
        has_policy = "retry_policy" in self.config
        if not has_policy and not self.is_push:
            return 0.0
        policy = self.config.retry_policy
        minimum = _DEFAULT_MIN_BACKOFF
        maximum = _DEFAULT_MAX_BACKOFF
        if has_policy and "minimum_backoff" in policy:
            minimum = _seconds(policy.minimum_backoff)
        if has_policy and "maximum_backoff" in policy:
            maximum = _seconds(policy.maximum_backoff)
        maximum = max(maximum, minimum)
        return min(maximum, minimum * 2 ** max(0, failures - 1))


_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


def _unary(
    method: Callable[[PubSubEmulator, _Req, grpc.ServicerContext], _Resp],
) -> Callable[[PubSubEmulator, _Req, grpc.ServicerContext], _Resp]:
    """Turn :class:`_RpcAbort` raised by a unary handler into the RPC's status."""

    @functools.wraps(method)
    def handler(self: PubSubEmulator, request: _Req, context: grpc.ServicerContext) -> _Resp:
        try:
            return method(self, request, context)
        except _RpcAbort as exc:
            logger.debug("%s -> %s: %s", method.__name__, exc.code.name, exc.details)
            context.abort(exc.code, exc.details)
            raise  # unreachable: abort raises

    return handler


def _empty(_response: object) -> bytes:
    """Serialise ``google.protobuf.Empty``."""
    return b""


class PubSubEmulator:
    """A Pub/Sub emulator serving the real gRPC API on ``127.0.0.1``.

    Parameters
    ----------
    host:
        Interface to bind; only loopback addresses are accepted.
    port:
        Port to bind; 0 picks a free one (read it from :attr:`port` after :meth:`start`).
    push_token:
        Given an OIDC audience, returns a bearer token for push requests of subscriptions
        whose push config has an ``oidc_token``. Without it, no Authorization header is sent.
    duplicate_deliveries:
        Fault injection: every message is delivered (and must be acked) this many times,
        one copy after the other, always with the same message id.
    push_timeout:
        Seconds to wait for a push endpoint before counting the attempt as failed.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        push_token: Callable[[str], str] | None = None,
        duplicate_deliveries: int = 1,
        push_timeout: float = 30.0,
    ) -> None:
        if host == "localhost":
            host = "127.0.0.1"
        if not host.startswith("127."):
            raise ValueError(f"the emulator binds only to loopback addresses, not {host!r}")
        if duplicate_deliveries < 1:
            raise ValueError("duplicate_deliveries must be at least 1")
        if push_timeout <= 0:
            raise ValueError("push_timeout must be positive")
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port}")
        self.host = host
        self.port = port
        self._push_token = push_token
        self._duplicates = duplicate_deliveries
        self._push_timeout = push_timeout

        self._lock = threading.RLock()
        self._timer_wakeup = threading.Condition(self._lock)
        self._idle_changed = threading.Condition(self._lock)
        self._topics: dict[str, types.Topic] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._message_ids = itertools.count(1)
        self._ack_ids = itertools.count(1)
        self._sequence = itertools.count()
        self._thread_names = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._connections: set[http.client.HTTPConnection] = set()
        self._published = 0
        self._delivered = 0
        self._acked = 0
        self._dead_lettered = 0
        self._started = False
        self._stopping = False
        self._stopped = False
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC server: the value for ``PUBSUB_EMULATOR_HOST``."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start the gRPC server and the background threads; sets :attr:`port`."""
        with self._lock:
            if self._started:
                raise RuntimeError("the emulator was already started (it cannot be restarted)")
            self._started = True
        self._executor = ThreadPoolExecutor(
            max_workers=_GRPC_WORKERS, thread_name_prefix=f"{THREAD_PREFIX}-grpc"
        )
        server = grpc.server(
            self._executor,
            handlers=self._generic_handlers(),
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", _GRPC_MAX_MESSAGE),
                ("grpc.max_send_message_length", _GRPC_MAX_MESSAGE),
            ],
        )
        try:
            bound = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as exc:
            bound = 0
            cause: Exception | None = exc
        else:
            cause = None
        if not bound:
            server.stop(None)
            self._executor.shutdown(wait=True)
            with self._lock:
                self._stopped = True
            raise OSError(f"cannot bind the Pub/Sub emulator to {self.host}:{self.port}") from cause
        self.port = bound
        self._server = server
        server.start()
        self._spawn(self._timer_loop, "timer")
        logger.info("Pub/Sub emulator listening on %s", self.address)

    def stop(self, grace: float = 1.0) -> None:
        """Stop the server and every thread; safe to call more than once."""
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
            self._stopping = True
            self._timer_wakeup.notify_all()
            self._idle_changed.notify_all()
            for sub in self._subscriptions.values():
                sub.available.notify_all()
            connections = list(self._connections)
        for connection in connections:  # wake pushes blocked on a slow endpoint
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._server is not None:
            self._server.stop(grace).wait(grace + 5.0)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + grace + 5.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("emulator thread %s did not stop in time", thread.name)
        logger.info("Pub/Sub emulator on %s stopped", self.address)

    def __enter__(self) -> PubSubEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection

    def stats(self) -> dict[str, Any]:
        """Counters and the per-subscription backlog, as a JSON-able dict.

        ``published`` counts messages accepted by Publish; ``delivered`` counts delivery
        attempts (pull leases handed out and pushes made); ``acked`` counts acknowledged
        deliveries (pull acks and successful pushes); ``dead_lettered`` counts messages
        forwarded to a dead-letter topic; ``backlog`` maps each subscription to its
        messages not yet done (ready, leased, in flight or waiting to be retried).
        """
        with self._lock:
            return {
                "topics": len(self._topics),
                "subscriptions": len(self._subscriptions),
                "published": self._published,
                "delivered": self._delivered,
                "acked": self._acked,
                "dead_lettered": self._dead_lettered,
                "backlog": {name: len(sub.deliveries) for name, sub in self._subscriptions.items()},
            }

    def wait_idle(self, timeout: float, *, subscriptions: Iterable[str] | None = None) -> bool:
        """Wait until no subscription has undelivered, unacked or in-retry messages.

        ``subscriptions`` (full names) restricts the check to those subscriptions, e.g. to
        ignore a dead-letter inspection subscription nobody drains. Returns False on timeout.
        """
        wanted = set(subscriptions) if subscriptions is not None else None
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                busy = [
                    sub
                    for name, sub in self._subscriptions.items()
                    if sub.deliveries and (wanted is None or name in wanted)
                ]
                if not busy:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    return False
                self._idle_changed.wait(min(remaining, _WAIT_SLICE))

    # ------------------------------------------------------------------ gRPC wiring

    def _generic_handlers(self) -> list[grpc.GenericRpcHandler]:
        def unary(
            fn: Callable[[Any, grpc.ServicerContext], Any],
            request_type: Any,
            response_serializer: Callable[[Any], bytes],
        ) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn,
                request_deserializer=request_type.deserialize,
                response_serializer=response_serializer,
            )

        publisher = {
            "CreateTopic": unary(self._create_topic, types.Topic, types.Topic.serialize),
            "GetTopic": unary(self._get_topic, types.GetTopicRequest, types.Topic.serialize),
            "ListTopics": unary(
                self._list_topics, types.ListTopicsRequest, types.ListTopicsResponse.serialize
            ),
            "DeleteTopic": unary(self._delete_topic, types.DeleteTopicRequest, _empty),
            "Publish": unary(self._publish, types.PublishRequest, types.PublishResponse.serialize),
            "ListTopicSubscriptions": unary(
                self._list_topic_subscriptions,
                types.ListTopicSubscriptionsRequest,
                types.ListTopicSubscriptionsResponse.serialize,
            ),
        }
        subscriber = {
            "CreateSubscription": unary(
                self._create_subscription, types.Subscription, types.Subscription.serialize
            ),
            "GetSubscription": unary(
                self._get_subscription, types.GetSubscriptionRequest, types.Subscription.serialize
            ),
            "ListSubscriptions": unary(
                self._list_subscriptions,
                types.ListSubscriptionsRequest,
                types.ListSubscriptionsResponse.serialize,
            ),
            "DeleteSubscription": unary(
                self._delete_subscription, types.DeleteSubscriptionRequest, _empty
            ),
            "ModifyPushConfig": unary(
                self._modify_push_config, types.ModifyPushConfigRequest, _empty
            ),
            "Pull": unary(self._pull, types.PullRequest, types.PullResponse.serialize),
            "Acknowledge": unary(self._acknowledge, types.AcknowledgeRequest, _empty),
            "ModifyAckDeadline": unary(
                self._modify_ack_deadline, types.ModifyAckDeadlineRequest, _empty
            ),
            "StreamingPull": grpc.stream_stream_rpc_method_handler(
                self._streaming_pull,
                request_deserializer=types.StreamingPullRequest.deserialize,
                response_serializer=types.StreamingPullResponse.serialize,
            ),
        }
        return [
            grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", publisher),
            grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", subscriber),
        ]

    # ------------------------------------------------------------------ Publisher RPCs

    @_unary
    def _create_topic(self, request: types.Topic, context: grpc.ServicerContext) -> types.Topic:
        _parse_resource(request.name, "topics", "name")
        with self._lock:
            if request.name in self._topics:
                raise _already_exists(request.name)
            self._topics[request.name] = request
            logger.debug("created topic %s", request.name)
            return request

    @_unary
    def _get_topic(
        self, request: types.GetTopicRequest, context: grpc.ServicerContext
    ) -> types.Topic:
        _parse_resource(request.topic, "topics", "topic")
        with self._lock:
            return self._topic_locked(request.topic)

    @_unary
    def _list_topics(
        self, request: types.ListTopicsRequest, context: grpc.ServicerContext
    ) -> types.ListTopicsResponse:
        project = _parse_project(request.project)
        prefix = f"projects/{project}/topics/"
        with self._lock:
            names = sorted(n for n in self._topics if n.startswith(prefix))
            page, token = _paginate(names, request.page_size, request.page_token)
            return types.ListTopicsResponse(
                topics=[self._topics[n] for n in page], next_page_token=token
            )

    @_unary
    def _delete_topic(
        self, request: types.DeleteTopicRequest, context: grpc.ServicerContext
    ) -> None:
        _parse_resource(request.topic, "topics", "topic")
        with self._lock:
            self._topic_locked(request.topic)
            del self._topics[request.topic]
            for sub in self._subscriptions.values():  # subscriptions survive, detached
                if sub.config.topic == request.topic:
                    sub.config.topic = _DELETED_TOPIC
            logger.debug("deleted topic %s", request.topic)
        return None

    @_unary
    def _publish(
        self, request: types.PublishRequest, context: grpc.ServicerContext
    ) -> types.PublishResponse:
        _parse_resource(request.topic, "topics", "topic")
        if not request.messages:
            raise _invalid("The request contains no messages.")
        for message in request.messages:
            self._validate_message(message)
        with self._lock:
            self._topic_locked(request.topic)
            ids = [
                self._publish_locked(
                    request.topic, m.data, dict(m.attributes), m.ordering_key
                ).message_id
                for m in request.messages
            ]
            self._published += len(ids)
        logger.debug("published %d message(s) to %s", len(ids), request.topic)
        return types.PublishResponse(message_ids=ids)

    @_unary
    def _list_topic_subscriptions(
        self, request: types.ListTopicSubscriptionsRequest, context: grpc.ServicerContext
    ) -> types.ListTopicSubscriptionsResponse:
        _parse_resource(request.topic, "topics", "topic")
        with self._lock:
            self._topic_locked(request.topic)
            names = sorted(
                name
                for name, sub in self._subscriptions.items()
                if sub.config.topic == request.topic
            )
        page, token = _paginate(names, request.page_size, request.page_token)
        return types.ListTopicSubscriptionsResponse(subscriptions=page, next_page_token=token)

    # ------------------------------------------------------------------ Subscriber RPCs

    @_unary
    def _create_subscription(
        self, request: types.Subscription, context: grpc.ServicerContext
    ) -> types.Subscription:
        _parse_resource(request.name, "subscriptions", "name")
        _parse_resource(request.topic, "topics", "topic")
        config = request
        deadline = config.ack_deadline_seconds or _DEFAULT_ACK_DEADLINE
        if not _MIN_ACK_DEADLINE <= deadline <= _MAX_ACK_DEADLINE:
            raise _invalid(
                f"Invalid ack_deadline_seconds {deadline}: it must be between "
                f"{_MIN_ACK_DEADLINE} and {_MAX_ACK_DEADLINE} seconds."
            )
        config.ack_deadline_seconds = deadline
        self._validate_push_config(config.push_config)
        if "push_config" in config and not config.push_config.push_endpoint:
            config.push_config = None  # an empty push config means pull
        self._normalise_retry_policy(config)
        self._normalise_dead_letter_policy(config)
        if config.filter:
            logger.warning(
                "subscription %s: filters are not emulated, ignoring %r", config.name, config.filter
            )
        config.state = types.Subscription.State.ACTIVE
        with self._lock:
            if request.name in self._subscriptions:
                raise _already_exists(request.name)
            self._topic_locked(request.topic)
            sub = _Subscription(config, self._lock)
            self._subscriptions[sub.name] = sub
            self._sync_push_workers_locked(sub)
            logger.debug("created subscription %s on %s", sub.name, request.topic)
            return config

    @_unary
    def _get_subscription(
        self, request: types.GetSubscriptionRequest, context: grpc.ServicerContext
    ) -> types.Subscription:
        _parse_resource(request.subscription, "subscriptions", "subscription")
        with self._lock:
            return self._subscription_locked(request.subscription).config

    @_unary
    def _list_subscriptions(
        self, request: types.ListSubscriptionsRequest, context: grpc.ServicerContext
    ) -> types.ListSubscriptionsResponse:
        project = _parse_project(request.project)
        prefix = f"projects/{project}/subscriptions/"
        with self._lock:
            names = sorted(n for n in self._subscriptions if n.startswith(prefix))
            page, token = _paginate(names, request.page_size, request.page_token)
            return types.ListSubscriptionsResponse(
                subscriptions=[self._subscriptions[n].config for n in page],
                next_page_token=token,
            )

    @_unary
    def _delete_subscription(
        self, request: types.DeleteSubscriptionRequest, context: grpc.ServicerContext
    ) -> None:
        _parse_resource(request.subscription, "subscriptions", "subscription")
        with self._lock:
            sub = self._subscription_locked(request.subscription)
            del self._subscriptions[sub.name]
            sub.deleted = True
            for delivery in sub.deliveries.values():
                delivery.state = _State.DONE
            sub.deliveries.clear()
            sub.ready.clear()
            sub.leases.clear()
            self._sync_push_workers_locked(sub)
            sub.available.notify_all()
            self._idle_changed.notify_all()
            logger.debug("deleted subscription %s", sub.name)
        return None

    @_unary
    def _modify_push_config(
        self, request: types.ModifyPushConfigRequest, context: grpc.ServicerContext
    ) -> None:
        _parse_resource(request.subscription, "subscriptions", "subscription")
        self._validate_push_config(request.push_config)
        with self._lock:
            sub = self._subscription_locked(request.subscription)
            if request.push_config.push_endpoint:
                sub.config.push_config = request.push_config
            else:
                sub.config.push_config = None
            self._sync_push_workers_locked(sub)
        return None

    @_unary
    def _pull(
        self, request: types.PullRequest, context: grpc.ServicerContext
    ) -> types.PullResponse:
        _parse_resource(request.subscription, "subscriptions", "subscription")
        if request.max_messages <= 0:
            raise _invalid("max_messages must be a positive integer.")
        wait = 0.0 if request.return_immediately else _PULL_MAX_WAIT
        remaining = context.time_remaining()
        if remaining is not None:
            wait = max(0.0, min(wait, remaining - 0.1))
        deadline = time.monotonic() + wait
        with self._lock:
            sub = self._subscription_locked(request.subscription)
            while True:
                if sub.deleted:
                    raise _not_found(request.subscription)
                batch = self._take_locked(sub, request.max_messages, sub.ack_deadline)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._stopping or not context.is_active():
                    break
                sub.available.wait(min(remaining, _WAIT_SLICE))
            received = [self._received_locked(sub, d) for d in batch]
        return types.PullResponse(received_messages=received)

    @_unary
    def _acknowledge(
        self, request: types.AcknowledgeRequest, context: grpc.ServicerContext
    ) -> None:
        _parse_resource(request.subscription, "subscriptions", "subscription")
        if not request.ack_ids:
            raise _invalid("No ack ids specified.")
        with self._lock:
            sub = self._subscription_locked(request.subscription)
            self._ack_locked(sub, request.ack_ids)
        return None

    @_unary
    def _modify_ack_deadline(
        self, request: types.ModifyAckDeadlineRequest, context: grpc.ServicerContext
    ) -> None:
        _parse_resource(request.subscription, "subscriptions", "subscription")
        if not request.ack_ids:
            raise _invalid("No ack ids specified.")
        self._validate_modack_seconds(request.ack_deadline_seconds)
        with self._lock:
            sub = self._subscription_locked(request.subscription)
            self._modack_locked(sub, request.ack_ids, request.ack_deadline_seconds)
        return None

    def _streaming_pull(
        self, requests: Iterator[types.StreamingPullRequest], context: grpc.ServicerContext
    ) -> Iterator[types.StreamingPullResponse]:
        """Bidirectional StreamingPull: a reader thread applies acks/modacks from the client
        while this generator leases ready messages and sends them down the stream."""
        try:
            yield from self._streaming_pull_inner(requests, context)
        except _RpcAbort as exc:
            logger.debug("StreamingPull -> %s: %s", exc.code.name, exc.details)
            context.abort(exc.code, exc.details)

    def _streaming_pull_inner(
        self, requests: Iterator[types.StreamingPullRequest], context: grpc.ServicerContext
    ) -> Iterator[types.StreamingPullResponse]:
        try:
            first = next(requests)
        except (StopIteration, grpc.RpcError):
            return
        if not first.subscription:
            raise _invalid("The first StreamingPullRequest must name a subscription.")
        _parse_resource(first.subscription, "subscriptions", "subscription")
        self._validate_stream_deadline(first.stream_ack_deadline_seconds)
        stream = _Stream(
            ack_deadline=float(first.stream_ack_deadline_seconds),
            max_outstanding=max(0, first.max_outstanding_messages),
        )
        with self._lock:
            sub = self._subscription_locked(first.subscription)
            self._apply_stream_request_locked(sub, stream, first)

        def on_done() -> None:
            with self._lock:
                stream.closed = True
                sub.available.notify_all()

        context.add_callback(on_done)
        self._spawn(self._stream_reader, "stream", sub, stream, requests)
        logger.debug("StreamingPull opened on %s", sub.name)
        while True:
            with self._lock:
                while True:
                    if stream.error is not None:
                        raise stream.error
                    if self._stopping:
                        raise _RpcAbort(grpc.StatusCode.UNAVAILABLE, "The emulator is stopping.")
                    if stream.closed or not context.is_active():
                        logger.debug("StreamingPull closed on %s", sub.name)
                        return
                    if sub.deleted:
                        raise _not_found(sub.name)
                    room = _STREAM_BATCH
                    if stream.max_outstanding:
                        stream.outstanding.intersection_update(sub.leases)
                        room = min(room, stream.max_outstanding - len(stream.outstanding))
                    batch = self._take_locked(sub, room, stream.ack_deadline) if room > 0 else []
                    if batch:
                        break
                    sub.available.wait(_WAIT_SLICE)
                received = [self._received_locked(sub, d) for d in batch]
                stream.outstanding.update(m.ack_id for m in received)
            yield types.StreamingPullResponse(received_messages=received)

    def _stream_reader(
        self,
        sub: _Subscription,
        stream: _Stream,
        requests: Iterator[types.StreamingPullRequest],
    ) -> None:
        """Apply the client's follow-up StreamingPull requests until the stream ends."""
        try:
            for request in requests:
                with self._lock:
                    if stream.closed or sub.deleted:
                        break
                    self._apply_stream_request_locked(sub, stream, request)
        except grpc.RpcError:
            pass  # the RPC was cancelled or ended
        except _RpcAbort as exc:
            with self._lock:
                stream.error = exc
        finally:
            with self._lock:
                stream.closed = True
                sub.available.notify_all()

    def _apply_stream_request_locked(
        self, sub: _Subscription, stream: _Stream, request: types.StreamingPullRequest
    ) -> None:
        if request.subscription and request.subscription != sub.name:
            raise _invalid("Only the first StreamingPullRequest may name the subscription.")
        if request.stream_ack_deadline_seconds:
            self._validate_stream_deadline(request.stream_ack_deadline_seconds)
            stream.ack_deadline = float(request.stream_ack_deadline_seconds)
        if len(request.modify_deadline_ack_ids) != len(request.modify_deadline_seconds):
            raise _invalid(
                "modify_deadline_ack_ids and modify_deadline_seconds must have the same length."
            )
        for seconds in request.modify_deadline_seconds:
            self._validate_modack_seconds(seconds)
        if request.ack_ids:
            self._ack_locked(sub, request.ack_ids)
        for ack_id, seconds in zip(
            request.modify_deadline_ack_ids, request.modify_deadline_seconds, strict=True
        ):
            self._modack_locked(sub, [ack_id], seconds)

    # ------------------------------------------------------------------ validation

    @staticmethod
    def _validate_message(message: types.PubsubMessage) -> None:
        if not message.data and not message.attributes:
            raise _invalid("Some messages are empty: a message needs data or attributes.")
        if len(message.data) > _MAX_MESSAGE_BYTES:
            raise _invalid("Message data is larger than 10 MB.")
        for key, value in message.attributes.items():
            if not key or len(key.encode()) > _MAX_ATTRIBUTE_KEY_BYTES:
                raise _invalid(f"Invalid attribute key {key!r}: 1-256 bytes.")
            if key.lower().startswith("goog"):
                raise _invalid(f"Invalid attribute key {key!r}: keys must not start with 'goog'.")
            if len(value.encode()) > _MAX_ATTRIBUTE_VALUE_BYTES:
                raise _invalid(f"Value of attribute {key!r} is longer than 1024 bytes.")
        if len(message.ordering_key.encode()) > _MAX_ORDERING_KEY_BYTES:
            raise _invalid("The ordering key is longer than 1024 bytes.")

    @staticmethod
    def _validate_push_config(push_config: types.PushConfig) -> None:
        endpoint = push_config.push_endpoint
        if not endpoint:
            if "oidc_token" in push_config:
                raise _invalid("An oidc_token needs a push_endpoint.")
            return
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise _invalid(f"Invalid push_endpoint {endpoint!r}: an http(s) URL is required.")
        try:
            parsed.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise _invalid(f"Invalid push_endpoint {endpoint!r}: bad port.") from None

    @staticmethod
    def _normalise_retry_policy(config: types.Subscription) -> None:
        if "retry_policy" not in config:
            return
        policy = config.retry_policy
        values = {}
        for name in ("minimum_backoff", "maximum_backoff"):
            if name in policy:
                seconds = _seconds(getattr(policy, name))
                if not 0 <= seconds <= _MAX_BACKOFF_LIMIT:
                    raise _invalid(f"Invalid retry_policy.{name}: it must be between 0 and 600s.")
                values[name] = seconds
        if values.get("minimum_backoff", _DEFAULT_MIN_BACKOFF) > values.get(
            "maximum_backoff", _DEFAULT_MAX_BACKOFF
        ):
            raise _invalid("retry_policy.minimum_backoff must not exceed maximum_backoff.")

    @staticmethod
    def _normalise_dead_letter_policy(config: types.Subscription) -> None:
        if "dead_letter_policy" not in config:
            return
        policy = config.dead_letter_policy
        if not policy.dead_letter_topic:
            if policy.max_delivery_attempts:
                raise _invalid("dead_letter_policy.dead_letter_topic is required.")
            config.dead_letter_policy = None
            return
        _parse_resource(policy.dead_letter_topic, "topics", "dead_letter_topic")
        attempts = policy.max_delivery_attempts or _DEFAULT_MAX_DELIVERY_ATTEMPTS
        if not _MIN_DELIVERY_ATTEMPTS <= attempts <= _MAX_DELIVERY_ATTEMPTS:
            raise _invalid(
                f"Invalid max_delivery_attempts {attempts}: it must be between "
                f"{_MIN_DELIVERY_ATTEMPTS} and {_MAX_DELIVERY_ATTEMPTS}."
            )
        policy.max_delivery_attempts = attempts

    @staticmethod
    def _validate_modack_seconds(seconds: int) -> None:
        if not 0 <= seconds <= _MAX_ACK_DEADLINE:
            raise _invalid(f"Invalid ack deadline {seconds}: it must be between 0 and 600 seconds.")

    @staticmethod
    def _validate_stream_deadline(seconds: int) -> None:
        if not _MIN_ACK_DEADLINE <= seconds <= _MAX_ACK_DEADLINE:
            raise _invalid(
                f"Invalid stream_ack_deadline_seconds {seconds}: it must be between "
                f"{_MIN_ACK_DEADLINE} and {_MAX_ACK_DEADLINE}."
            )

    # ------------------------------------------------------------------ state (lock held)

    def _topic_locked(self, name: str) -> types.Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise _not_found(name)
        return topic

    def _subscription_locked(self, name: str) -> _Subscription:
        sub = self._subscriptions.get(name)
        if sub is None:
            raise _not_found(name)
        return sub

    def _publish_locked(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str
    ) -> _Message:
        message = _Message(
            message_id=str(next(self._message_ids)),
            data=data,
            attributes=attributes,
            ordering_key=ordering_key,
            publish_time=datetime.now(UTC),
        )
        for sub in self._subscriptions.values():
            if sub.config.topic == topic:
                delivery = _Delivery(message)
                sub.deliveries[message.message_id] = delivery
                self._ready_locked(sub, delivery)
        return message

    def _ready_locked(self, sub: _Subscription, delivery: _Delivery) -> None:
        delivery.state = _State.READY
        sub.ready.append(delivery)
        sub.available.notify_all()

    def _take_locked(
        self, sub: _Subscription, limit: int, lease_seconds: float | None
    ) -> list[_Delivery]:
        """Hand out up to ``limit`` ready messages: leased for pull, or marked in flight
        for push when ``lease_seconds`` is None."""
        taken: list[_Delivery] = []
        now = time.monotonic()
        while sub.ready and len(taken) < limit:
            delivery = sub.ready.popleft()
            if delivery.state is not _State.READY:
                continue
            delivery.attempts += 1
            delivery.unacked_attempts += 1
            self._delivered += 1
            if lease_seconds is None:
                delivery.state = _State.PUSHING
            else:
                delivery.state = _State.LEASED
                self._lease_locked(
                    sub,
                    delivery,
                    f"{sub.subscription_id}-{next(self._ack_ids)}",
                    now + lease_seconds,
                )
            taken.append(delivery)
        return taken

    def _lease_locked(
        self, sub: _Subscription, delivery: _Delivery, ack_id: str, expiry: float
    ) -> None:
        delivery.ack_id = ack_id
        delivery.lease_expiry = expiry
        sub.leases[ack_id] = delivery
        heapq.heappush(sub.lease_heap, (expiry, next(self._sequence), ack_id))
        self._timer_wakeup.notify_all()

    def _received_locked(self, sub: _Subscription, delivery: _Delivery) -> types.ReceivedMessage:
        assert delivery.ack_id is not None
        return types.ReceivedMessage(
            ack_id=delivery.ack_id,
            message=delivery.message.to_proto(),
            delivery_attempt=delivery.attempts if sub.dead_letter else 0,
        )

    def _release_lease_locked(self, sub: _Subscription, delivery: _Delivery) -> None:
        if delivery.ack_id is not None:
            sub.leases.pop(delivery.ack_id, None)
            delivery.ack_id = None

    def _ack_locked(self, sub: _Subscription, ack_ids: Iterable[str]) -> None:
        for ack_id in ack_ids:
            delivery = sub.leases.get(ack_id)
            if delivery is not None:  # unknown or expired ack ids are ignored, as in Pub/Sub
                self._succeeded_locked(sub, delivery)

    def _modack_locked(self, sub: _Subscription, ack_ids: Iterable[str], seconds: int) -> None:
        now = time.monotonic()
        for ack_id in ack_ids:
            delivery = sub.leases.get(ack_id)
            if delivery is None:
                continue
            if seconds == 0:
                self._failed_locked(sub, delivery, "nacked")
            else:
                delivery.lease_expiry = now + seconds
                heapq.heappush(
                    sub.lease_heap, (delivery.lease_expiry, next(self._sequence), ack_id)
                )
                self._timer_wakeup.notify_all()

    def _succeeded_locked(self, sub: _Subscription, delivery: _Delivery) -> None:
        """An acked pull lease or a successful push."""
        self._release_lease_locked(sub, delivery)
        self._acked += 1
        delivery.copies_acked += 1
        delivery.unacked_attempts = 0
        delivery.failures = 0
        if delivery.copies_acked < self._duplicates:
            self._ready_locked(sub, delivery)  # fault injection: deliver another copy
        else:
            self._done_locked(sub, delivery)

    def _failed_locked(self, sub: _Subscription, delivery: _Delivery, reason: str) -> None:
        """A nack, an expired lease or a failed push: dead-letter or schedule a retry."""
        self._release_lease_locked(sub, delivery)
        delivery.failures += 1
        policy = sub.dead_letter
        if policy is not None and delivery.unacked_attempts >= policy[1]:
            topic, _ = policy
            if topic in self._topics:
                self._dead_letter_locked(sub, delivery, topic)
                return
            logger.warning(
                "message %s on %s reached %d delivery attempts but dead-letter topic %s "
                "does not exist; retrying",
                delivery.message.message_id,
                sub.name,
                delivery.attempts,
                topic,
            )
        delay = sub.backoff(delivery.failures)
        logger.debug(
            "message %s on %s %s; retry in %.3fs",
            delivery.message.message_id,
            sub.name,
            reason,
            delay,
        )
        if delay <= 0:
            self._ready_locked(sub, delivery)
            return
        delivery.state = _State.DELAYED
        delivery.ready_at = time.monotonic() + delay
        heapq.heappush(sub.delayed, (delivery.ready_at, next(self._sequence), delivery))
        self._timer_wakeup.notify_all()

    def _dead_letter_locked(self, sub: _Subscription, delivery: _Delivery, topic: str) -> None:
        original = delivery.message
        attributes = dict(original.attributes)
        attributes.update(
            {
                "CloudPubSubDeadLetterSourceDeliveryCount": str(delivery.attempts),
                "CloudPubSubDeadLetterSourceSubscription": sub.subscription_id,
                "CloudPubSubDeadLetterSourceSubscriptionProject": sub.project,
                "CloudPubSubDeadLetterSourceTopicPublishTime": _rfc3339(original.publish_time),
            }
        )
        forwarded = self._publish_locked(topic, original.data, attributes, original.ordering_key)
        self._dead_lettered += 1
        logger.info(
            "dead-lettered message %s from %s to %s as %s after %d attempts",
            original.message_id,
            sub.name,
            topic,
            forwarded.message_id,
            delivery.attempts,
        )
        self._done_locked(sub, delivery)

    def _done_locked(self, sub: _Subscription, delivery: _Delivery) -> None:
        delivery.state = _State.DONE
        sub.deliveries.pop(delivery.message.message_id, None)
        sub.available.notify_all()  # frees flow-control room on streams
        if not sub.deliveries:
            self._idle_changed.notify_all()

    def _process_timers_locked(self, sub: _Subscription, now: float) -> float | None:
        """Release due retries and expire due leases; return the next due time."""
        while sub.delayed and sub.delayed[0][0] <= now:
            ready_at, _, delivery = heapq.heappop(sub.delayed)
            if delivery.state is _State.DELAYED and delivery.ready_at == ready_at:
                self._ready_locked(sub, delivery)
        while sub.lease_heap and sub.lease_heap[0][0] <= now:
            expiry, _, ack_id = heapq.heappop(sub.lease_heap)
            delivery = sub.leases.get(ack_id)
            if delivery is not None and delivery.lease_expiry == expiry:
                self._failed_locked(sub, delivery, "ack deadline expired")
        heads = [h[0][0] for h in (sub.delayed, sub.lease_heap) if h]
        return min(heads) if heads else None

    # ------------------------------------------------------------------ threads

    def _spawn(self, target: Callable[..., None], role: str, *args: Any) -> None:
        thread = threading.Thread(
            target=target,
            args=args,
            name=f"{THREAD_PREFIX}-{role}-{next(self._thread_names)}",
            daemon=True,
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _timer_loop(self) -> None:
        """Move retries whose backoff has elapsed to ready, and expire pull leases."""
        with self._lock:
            while not self._stopping:
                now = time.monotonic()
                due = [
                    self._process_timers_locked(s, now) for s in list(self._subscriptions.values())
                ]
                upcoming = [t for t in due if t is not None]
                timeout = _WAIT_SLICE
                if upcoming:
                    timeout = min(timeout, max(0.001, min(upcoming) - time.monotonic()))
                self._timer_wakeup.wait(timeout)

    def _sync_push_workers_locked(self, sub: _Subscription) -> None:
        """Start push workers when a subscription becomes push, retire them otherwise."""
        wanted = sub.is_push and not sub.deleted and not self._stopping
        if wanted == sub.push_active:
            return
        sub.push_active = wanted
        sub.push_generation += 1
        sub.available.notify_all()
        if wanted:
            for _ in range(_PUSH_WORKERS_PER_SUBSCRIPTION):
                self._spawn(self._push_worker, "push", sub, sub.push_generation)

    def _push_worker(self, sub: _Subscription, generation: int) -> None:
        """Deliver ready messages of one push subscription, one at a time."""
        while True:
            with self._lock:
                while True:
                    if self._stopping or sub.deleted or sub.push_generation != generation:
                        return
                    taken = self._take_locked(sub, 1, None)
                    if taken:
                        break
                    sub.available.wait(_WAIT_SLICE)
                delivery = taken[0]
                push_config = sub.config.push_config
                endpoint = push_config.push_endpoint
                audience = None
                if "oidc_token" in push_config:
                    audience = push_config.oidc_token.audience or endpoint
                envelope: dict[str, Any] = {
                    "message": delivery.message.to_push_json(),
                    "subscription": sub.name,
                }
                if sub.dead_letter is not None:
                    envelope["deliveryAttempt"] = delivery.attempts
            ok, outcome = self._push(endpoint, audience, envelope)
            with self._lock:
                if delivery.state is not _State.PUSHING or sub.deleted:
                    continue
                if ok:
                    self._succeeded_locked(sub, delivery)
                else:
                    self._failed_locked(sub, delivery, f"push failed ({outcome})")

    def _push(
        self, endpoint: str, audience: str | None, envelope: dict[str, Any]
    ) -> tuple[bool, str]:
        """POST one envelope; return (acked, description of the outcome)."""
        headers = {"Content-Type": "application/json", "User-Agent": _PUSH_USER_AGENT}
        if audience is not None and self._push_token is not None:
            try:
                headers["Authorization"] = f"Bearer {self._push_token(audience)}"
            except Exception:
                logger.exception("push_token(%r) failed", audience)
                return False, "no token"
        body = json.dumps(envelope).encode()
        try:
            status = self._post(endpoint, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            logger.debug("push to %s failed: %r", endpoint, exc)
            return False, type(exc).__name__
        return status in _PUSH_ACK_STATUSES, f"HTTP {status}"

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        parts = urllib.parse.urlsplit(url)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname or "",
                parts.port,
                timeout=self._push_timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=self._push_timeout
            )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        with self._lock:
            if self._stopping:
                raise ConnectionAbortedError("the emulator is stopping")
            self._connections.add(connection)
        try:
            connection.connect()
            with self._lock:
                if self._stopping:  # stop() may have missed this socket while connecting
                    raise ConnectionAbortedError("the emulator is stopping")
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()
            with self._lock:
                self._connections.discard(connection)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: run the emulator until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m local.pubsub_emulator",
        description=(
            "Run a local Google Cloud Pub/Sub emulator (gRPC) on 127.0.0.1. Point the "
            "google-cloud-pubsub client at it with PUBSUB_EMULATOR_HOST=<printed address>."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8085,
        help="port to listen on, 0 for any free port (default: %(default)s)",
    )
    parser.add_argument(
        "--push-token",
        metavar="TOKEN",
        default=None,
        help="static bearer token sent to push endpoints whose subscription "
        "has an oidc_token (default: no Authorization header)",
    )
    parser.add_argument(
        "--duplicate-deliveries",
        type=int,
        default=1,
        metavar="K",
        help="fault injection: deliver every message K times (default: 1)",
    )
    parser.add_argument(
        "--push-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="timeout of one push request (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    token = args.push_token
    try:
        emulator = PubSubEmulator(
            args.host,
            args.port,
            push_token=(lambda _audience: token) if token else None,
            duplicate_deliveries=args.duplicate_deliveries,
            push_timeout=args.push_timeout,
        )
        emulator.start()
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    print(f"Pub/Sub emulator listening on {emulator.address}")
    print(f"export PUBSUB_EMULATOR_HOST={emulator.address}", flush=True)
    try:
        while not stop.wait(_WAIT_SLICE):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        print("Pub/Sub emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
