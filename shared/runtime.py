"""What every function's entry point shares: auth, decoding, idempotency, error mapping.

A function's ``main.py`` builds one :class:`FunctionApp`, registers the one service that
handles its events (and, for some, its HTTP routes), and exposes ``entry = app.target()`` as
the functions-framework target. The app then does, for each request:

1. authenticate the caller (Google OIDC in production, harness tokens locally): 401/403;
2. read the event: a binary or structured CloudEvent (Eventarc) or a raw Pub/Sub push
   envelope, whichever arrives;
3. check the topic and decode the versioned contract;
4. drop (ack) events older than the function's max age;
5. call the service (``POST /``; scheduled runs arrive on ``POST /run``), and map the outcome: done or duplicate → 200; a
   :class:`~shared.errors.PermanentError` → rejection recorded, raw message sent to the
   dead-letter topic, 200 (ack); a :class:`~shared.errors.TransientError` → 503 (Pub/Sub
   retries); anything else → logged with its stack, 500 (retried, then dead-lettered by
   the subscription, so nothing loops forever).

Clients (database, Pub/Sub) are built on the first request and reused while the instance
is warm.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from shared.auth import Verifier, verifier_from_settings
from shared.config import Settings, load_settings
from shared.contracts import CONTRACTS, Message, decode
from shared.errors import (
    AuthError,
    MalformedEvent,
    PermanentError,
    QuantsentinelError,
    StaleEvent,
    TransientError,
    UnknownTopic,
)
from shared.logs import configure_logging, log_labels

logger = logging.getLogger(__name__)


# --- inbound events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A Pub/Sub message as delivered to a function, before its contract is checked."""

    event_id: str
    data: bytes
    attributes: dict[str, str]
    published_at: datetime | None
    delivery_attempt: int | None = None
    subscription: str | None = None

    @property
    def topic(self) -> str | None:
        return self.attributes.get("contract")


def _rfc3339(value: Any) -> datetime | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"publish time must be an RFC 3339 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"publish time is not RFC 3339: {value!r}") from None
    if parsed.tzinfo is None:
        raise MalformedEvent(f"publish time has no time zone: {value!r}")
    return parsed


def _from_push_body(body: Any, fallback_id: str | None) -> InboundEvent:
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise MalformedEvent("expected a Pub/Sub push body: {\"message\": {...}, \"subscription\": ...}")
    message = body["message"]
    event_id = message.get("messageId") or message.get("message_id") or fallback_id
    if not event_id or not isinstance(event_id, str):
        raise MalformedEvent("Pub/Sub message has no messageId")
    raw = message.get("data", "")
    try:
        data = base64.b64decode(raw, validate=True) if raw else b""
    except (binascii.Error, TypeError, ValueError):
        raise MalformedEvent("message.data is not valid base64") from None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise MalformedEvent("message.attributes must map strings to strings")
    attempt = body.get("deliveryAttempt")
    return InboundEvent(
        event_id=event_id,
        data=data,
        attributes=dict(attributes),
        published_at=_rfc3339(message.get("publishTime") or message.get("publish_time")),
        delivery_attempt=int(attempt) if isinstance(attempt, int | str) and str(attempt).isdigit() else None,
        subscription=body.get("subscription") if isinstance(body.get("subscription"), str) else None,
    )


def parse_push_request(headers: Any, body: bytes) -> InboundEvent:
    """Read a binary/structured CloudEvent or a raw Pub/Sub push envelope.

    Raises
    ------
    MalformedEvent
        The body is not JSON, or not one of the three shapes, or a field is invalid.
    """
    try:
        payload = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"request body is not JSON: {exc}") from None
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if headers.get("ce-specversion"):  # binary-mode CloudEvent: Eventarc's Pub/Sub trigger
        if not headers.get("ce-id") or not headers.get("ce-type") or not headers.get("ce-source"):
            raise MalformedEvent("CloudEvent is missing ce-id, ce-type or ce-source")
        return _from_push_body(payload, headers.get("ce-id"))
    if content_type == "application/cloudevents+json":  # structured-mode CloudEvent
        if not isinstance(payload, dict) or not {"id", "type", "source", "specversion"} <= payload.keys():
            raise MalformedEvent("structured CloudEvent is missing id, type, source or specversion")
        return _from_push_body(payload.get("data"), payload["id"])
    return _from_push_body(payload, None)


# --- outcomes and context ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventContext:
    """What a service may know about the event besides its message."""

    event_id: str
    topic: str
    attributes: dict[str, str]
    published_at: datetime | None
    delivery_attempt: int | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a service did with an event, for the log line and the HTTP body."""

    status: Literal["done", "duplicate", "skipped", "rejected"]
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def done(cls, **detail: Any) -> Outcome:
        return cls("done", detail)

    @classmethod
    def duplicate(cls, **detail: Any) -> Outcome:
        return cls("duplicate", detail)

    @classmethod
    def skipped(cls, **detail: Any) -> Outcome:
        return cls("skipped", detail)

    @classmethod
    def rejected(cls, **detail: Any) -> Outcome:
        """Bad input, recorded with its reason and acknowledged (not retried)."""
        return cls("rejected", detail)


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """One Cloud Scheduler firing, as the scheduled service sees it."""

    job: str
    scheduled_for: datetime
    payload: dict[str, Any]
    caller: str

    @property
    def run_id(self) -> str:
        """Stable id of this firing (job + schedule time): the idempotency key of a run."""
        return f"{self.job}@{self.scheduled_for.astimezone(UTC).isoformat()}"


EventHandler = Callable[[Message, EventContext], Outcome]
ScheduleHandler = Callable[[ScheduledRun, datetime], Outcome]


@dataclass(frozen=True, slots=True)
class HttpCall:
    """An authenticated API call, as an HTTP service sees it."""

    caller: str  # the verified email of the caller (service account, operator, tenant app)
    now: datetime


ApiHandler = Callable[[Any, HttpCall], dict[str, Any]]


# --- per-instance wiring ---------------------------------------------------------------


class Runtime:
    """Settings and lazily built clients for one function instance."""

    def __init__(self, function_name: str, settings: Settings | None = None) -> None:
        self.function_name = function_name
        self.settings = settings or load_settings()

    @cached_property
    def verifier(self) -> Verifier:
        return verifier_from_settings(self.settings)

    @cached_property
    def database(self):  # -> shared.adapters.db.Database
        from shared.adapters.db import Database, connector_from_settings

        return Database(connector_from_settings(self.settings))

    @cached_property
    def _file_clock(self):  # -> shared.adapters.replay_clock.FileClock
        from shared.adapters.replay_clock import FileClock

        return FileClock(self.settings.clock_file)

    @cached_property
    def bus(self):  # -> shared.adapters.bus.Bus
        from shared.adapters.bus import PubSubBus

        return PubSubBus(self.settings.project_id)

    def now(self) -> datetime:
        """The functions' clock: UTC now; in a local replay, the session clock of
        ``QS_CLOCK_FILE`` or UTC now shifted by ``QS_CLOCK_OFFSET_S``."""
        if self.settings.clock_file is not None:
            return self._file_clock.now()
        offset = self.settings.clock_offset_s
        return datetime.now(UTC) + timedelta(seconds=offset) if offset else datetime.now(UTC)


_MAX_ATTRIBUTES = 100  # Pub/Sub limits
_MAX_KEY_BYTES = 256
_MAX_VALUE_BYTES = 1024


def _clip(text: str, limit: int) -> str:
    """``text`` without NUL characters, cut to at most ``limit`` UTF-8 bytes."""
    raw = text.replace("\x00", "").encode()[:limit]
    return raw.decode(errors="ignore")


def dead_letter_attributes(attributes: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """Attributes for a dead-lettered copy that Pub/Sub will accept: our ``extra`` first,
    then as many of the original ones as fit, keys and values clipped to the limits."""
    out = {_clip(k, _MAX_KEY_BYTES): _clip(v, _MAX_VALUE_BYTES) for k, v in extra.items()}
    for key, value in attributes.items():
        if len(out) >= _MAX_ATTRIBUTES:
            break
        key = _clip(key, _MAX_KEY_BYTES)
        if key and not key.startswith("goog") and key not in out:
            out[key] = _clip(value, _MAX_VALUE_BYTES)
    return out


class Rejections:
    """Records an acked bad input and sends the raw message to the dead-letter topic."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def reject(self, event: InboundEvent | None, error: PermanentError, *, body: bytes,
               dead_letter: bool = True) -> None:
        """Record and dead-letter; raises :class:`TransientError` if either cannot be done."""
        event_id = event.event_id if event else f"malformed-{time.time_ns()}"
        attributes = event.attributes if event else {}
        payload = event.data if event else body
        try:
            with self._rt.database.system() as s:
                s.execute(
                    "INSERT INTO rejections (consumer, event_id, topic, reason_code, reason, attributes, payload) "
                    "VALUES (:consumer, :event_id, :topic, :code, :reason, CAST(:attrs AS jsonb), :payload) "
                    "ON CONFLICT (consumer, event_id) DO NOTHING",
                    consumer=self._rt.function_name, event_id=_clip(event_id, 500),
                    topic=_clip(event.topic, 255) if event and event.topic else None,
                    code=error.reason_code, reason=_clip(error.reason, 2000),
                    attrs=json.dumps({_clip(k, 256): _clip(v, 1024) for k, v in attributes.items()}),
                    payload=payload,
                )
            if dead_letter:
                self._rt.bus.publish_raw(
                    self._rt.settings.dead_letter_topic,
                    payload,
                    dead_letter_attributes(attributes, {
                        "qs_rejected_by": self._rt.function_name,
                        "qs_reason_code": error.reason_code,
                        "qs_reason": error.reason,
                        "qs_source_event_id": event_id,
                    }),
                )
        except TransientError:
            raise
        except Exception as exc:  # a bug in recording must not turn into an ack
            logger.exception("could not record a rejection")
            raise TransientError(f"could not record the rejection: {exc}") from exc


def _json(status: int, body: dict[str, Any]):
    import flask

    return flask.Response(json.dumps(body, default=str), status=status, mimetype="application/json")


class FunctionApp:
    """One function's entry point: registers its event service and builds the target.

    Parameters
    ----------
    name
        The function name, used in logs, rejections and idempotency claims.
    max_age
        Events published longer ago than this are dropped (acked) unprocessed.
    runtime_factory
        Builds the per-instance :class:`Runtime`; tests may pass settings through it.
    warmup
        What the first event would otherwise pay for, done ahead of it by ``GET /warmup``:
        module names to import, or ``"module:function"`` to call (pure, no I/O; notify:
        draw a tiny figure so matplotlib's fonts are loaded). ``GET /warmup`` also builds every registered service, so
        the first real event of an instance pays no import or construction: what a
        startup probe or a min-instances ping does in production, and ``make run`` before
        its session.
    """

    def __init__(self, name: str, *, max_age: timedelta = timedelta(minutes=10),
                 runtime_factory: Callable[[str], Runtime] | None = None,
                 warmup: tuple[str, ...] = ()) -> None:
        self.name = name
        self.max_age = max_age
        self.warmup_modules = warmup
        self._runtime_factory = runtime_factory or Runtime
        self._event_services: dict[str, Callable[[Runtime], EventHandler]] = {}
        self._scheduled: Callable[[Runtime], ScheduleHandler] | None = None
        self._api: dict[str, tuple[type[Any], Callable[[Runtime], ApiHandler]]] = {}
        self._lock = threading.Lock()
        self._runtime: Runtime | None = None
        self._handlers: dict[str, Any] = {}

    # registration -------------------------------------------------------------------
    def on_event(self, contract: type[Message], service: Callable[[Runtime], EventHandler]) -> None:
        """Handle pushes of ``contract``'s topic with the service built by ``service(runtime)``."""
        if contract.topic not in CONTRACTS:
            raise ValueError(f"{contract.topic} has no registered contract")
        self._event_services[contract.topic] = service

    def on_schedule(self, service: Callable[[Runtime], ScheduleHandler]) -> None:
        """Handle Cloud Scheduler calls (POST /run): the service gets the run and ``now``."""
        self._scheduled = service

    def on_http(self, path: str, command: type[Any], service: Callable[[Runtime], ApiHandler]
                ) -> None:
        """Serve ``POST path``: the JSON body is validated as the pydantic ``command`` (400
        with the first problem otherwise) and handed, with the verified caller, to the
        service built by ``service(runtime)``; its dict is the 200 response. Any verified
        identity reaches the service (no invoker allow-list): the service must authorise
        the caller itself (risk_check: per-tenant grants). Permanent
        errors answer with their status and reason, transient ones 503."""
        if not path.startswith("/") or path in ("/", "/run", "/health", "/warmup"):
            raise ValueError(f"{path!r} is not a free API path")
        self._api[path] = (command, service)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self._event_services)

    # wiring --------------------------------------------------------------------------
    def runtime(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                self._runtime = self._runtime_factory(self.name)
                configure_logging(self.name, self._runtime.settings.log_level)
            return self._runtime

    def _handler(self, key: str, build: Callable[[Runtime], Any]) -> Any:
        with self._lock:
            handler = self._handlers.get(key)
        if handler is None:
            built = build(self.runtime())
            with self._lock:  # if another thread won the race, use (and keep) its handler
                handler = self._handlers.setdefault(key, built)
        return handler

    # the functions-framework target ---------------------------------------------------
    def target(self) -> Callable[[Any], Any]:
        """The functions-framework target (it must be a plain function, not a method)."""

        def entry(request):  # noqa: ANN001 - flask.Request
            return self.handle(request)

        entry.__doc__ = f"HTTP entry point of the {self.name} function."
        return entry

    def handle(self, request):  # noqa: ANN001 - flask.Request
        """Serve one request: ``GET /health``; ``POST /`` for events (push or Eventarc);
        ``POST /run`` for Cloud Scheduler; ``POST /<api>`` for the routes of :meth:`on_http`."""
        path = request.path.rstrip("/") or "/"
        if request.method == "GET" and path == "/health":
            return _json(200, {"function": self.name, "status": "ok", "topics": list(self.topics),
                               "scheduled": self._scheduled is not None,
                               **({"api": sorted(self._api)} if self._api else {})})
        if request.method == "GET" and path == "/warmup":
            return self._warm()
        routes = {"/": bool(self._event_services), "/run": self._scheduled is not None,
                  **{api: True for api in self._api}}
        if not routes.get(path):
            return _json(404, {"error": "not_found", "reason": f"{self.name} has no route {path}"})
        if request.method != "POST":
            return _json(405, {"error": "method_not_allowed", "reason": f"use POST {path}"})
        rt = self.runtime()
        authorization = request.headers.get("Authorization")
        if authorization is None and rt.settings.auth_mode == "local" and "token" in request.args:
            # Local harness only: an external Pub/Sub emulator cannot attach OIDC tokens, so
            # its push endpoints carry the signed harness token in the query string.
            authorization = f"Bearer {request.args['token']}"
        try:
            # API routes authorise each caller per tenant (the service's grants), so any
            # verified identity may reach them; events and schedules keep the invoker list.
            principal = rt.verifier.verify(authorization, allowlist=path not in self._api)
        except AuthError as exc:
            logger.warning("refused %s: %s", path, exc.reason, extra={"reason_code": exc.reason_code})
            return _json(exc.http_status, {"error": exc.reason_code, "reason": exc.reason})
        except TransientError as exc:  # e.g. Google's certificates unreachable
            logger.warning("cannot authenticate now, will retry: %s", exc.reason)
            return _json(503, {"error": exc.reason_code, "reason": exc.reason})
        body = request.get_data(cache=False)
        if path == "/run":
            return self._handle_schedule(rt, request.headers, body, principal.email)
        if path in self._api:
            return self._handle_api(rt, path, body, principal.email)
        return self._handle_event(rt, request.headers, body)

    def _warm(self):
        """``GET /warmup``: import the declared modules, build every service, fill the
        connection pool and build the Pub/Sub publisher. Idempotent and side-effect free (nothing is read or written); a
        failure is reported, not raised, since a warm-up must never take an instance down."""
        import importlib
        import time as _time

        t0 = _time.perf_counter()
        built: list[str] = []
        try:
            for spec in self.warmup_modules:
                module, _, function = spec.partition(":")
                loaded = importlib.import_module(module)
                if function:
                    getattr(loaded, function)()
            for topic, build in self._event_services.items():
                self._handler(topic, build)
                built.append(topic)
            if self._scheduled is not None:
                self._handler("schedule", self._scheduled)
                built.append("/run")
            for path, (_, build) in self._api.items():
                self._handler(f"api:{path}", build)
                built.append(path)
            connections = self.runtime().database.prewarm()
            self.runtime().bus.warm()
        except Exception as exc:  # reported to the caller; the instance stays up
            logger.warning("warm-up failed: %r", exc)
            return _json(503, {"error": "warmup_failed", "reason": repr(exc)})
        return _json(200, {"function": self.name, "modules": list(self.warmup_modules),
                           "built": built, "connections_opened": connections,
                           "ms": round((_time.perf_counter() - t0) * 1e3, 1)})

    def _handle_api(self, rt: Runtime, path: str, body: bytes, caller: str):
        from pydantic import ValidationError

        model, build = self._api[path]
        try:
            command = model.model_validate_json(body or b"{}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<body>"
            return _json(400, {"error": "bad_request", "reason": f"{where}: {first['msg']}"})
        with log_labels(route=path, caller=caller):
            try:
                result = self._handler(f"api:{path}", build)(command, HttpCall(caller, rt.now()))
            except PermanentError as exc:
                logger.info("api call refused: %s", exc.reason, extra={"reason_code": exc.reason_code})
                status = exc.http_status if 400 <= exc.http_status < 500 else 422
                return _json(status, {"error": exc.reason_code, "reason": exc.reason})
            except TransientError as exc:
                logger.warning("api call failed, retry later: %s", exc.reason)
                return _json(503, {"error": exc.reason_code, "reason": exc.reason})
            except Exception:
                logger.exception("api call crashed")
                return _json(500, {"error": "internal", "reason": "unexpected error; see logs"})
        return _json(200, result)

    def _handle_schedule(self, rt: Runtime, headers: Any, body: bytes, caller: str):
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("payload must be a JSON object")
            when = _rfc3339(headers.get("X-CloudScheduler-ScheduleTime")) or rt.now()
        except (ValueError, MalformedEvent) as exc:
            return _json(400, {"error": "bad_request", "reason": f"scheduler call: {exc}"})
        run = ScheduledRun(headers.get("X-CloudScheduler-JobName") or "manual", when, payload, caller)
        with log_labels(job=run.job, run_id=run.run_id):
            try:
                service = self._handler("schedule", self._scheduled)  # type: ignore[arg-type]
                outcome = service(run, rt.now())
            except PermanentError as exc:
                logger.warning("scheduled run refused: %s", exc.reason, extra={"reason_code": exc.reason_code})
                return _json(exc.http_status, {"error": exc.reason_code, "reason": exc.reason})
            except TransientError as exc:
                logger.warning("scheduled run failed, will retry: %s", exc.reason)
                return _json(503, {"error": exc.reason_code, "reason": exc.reason})
            except Exception:
                logger.exception("scheduled run crashed")
                return _json(500, {"error": "internal", "reason": "unexpected error; see logs"})
        logger.info("scheduled run %s", outcome.status, extra={"outcome": outcome.detail})
        return _json(200, {"status": outcome.status, **outcome.detail})

    def _handle_event(self, rt: Runtime, headers: Any, body: bytes):
        event: InboundEvent | None = None
        rejections = Rejections(rt)
        try:
            try:
                event = parse_push_request(headers, body)
            except PermanentError as exc:  # malformed: there is no event to speak of
                return self._reject(rejections, None, exc, body)
            with log_labels(event_id=event.event_id, topic=event.topic):
                return self._dispatch(rt, event, rejections, body)
        except TransientError as exc:  # the rejection itself could not be recorded
            logger.warning("could not record a rejection, will retry: %s", exc.reason)
            return _json(503, {"error": exc.reason_code, "reason": exc.reason})

    def _dispatch(self, rt: Runtime, event: InboundEvent, rejections: Rejections, body: bytes):
        try:
            topic = event.topic
            if topic not in self._event_services:
                raise UnknownTopic(
                    f"{self.name} does not consume topic {topic!r} (consumes: {sorted(self._event_services)})"
                )
            message = decode(event.data, event.attributes)
            now = rt.now()
            if event.published_at is not None and now - event.published_at > self.max_age:
                age = (now - event.published_at).total_seconds()
                stale = StaleEvent(f"event is {age:.0f}s old, max age is {self.max_age.total_seconds():.0f}s")
                logger.info("dropped stale event: %s", stale.reason)
                rejections.reject(event, stale, body=body, dead_letter=False)
                return _json(200, {"status": "dropped", "reason": stale.reason})
            context = EventContext(event.event_id, topic, event.attributes, event.published_at,
                                   event.delivery_attempt, now)
            service = self._handler(topic, self._event_services[topic])
            outcome = service(message, context)
        except PermanentError as exc:
            return self._reject(rejections, event, exc, body)
        except TransientError as exc:
            logger.warning("transient failure, will retry (attempt %s): %s",
                           event.delivery_attempt, exc.reason, extra={"reason_code": exc.reason_code})
            return _json(503, {"error": exc.reason_code, "reason": exc.reason})
        except QuantsentinelError as exc:
            logger.exception("unclassified error")
            return _json(500, {"error": exc.reason_code, "reason": exc.reason})
        except Exception:
            logger.exception("unexpected error handling event; it will be retried, then dead-lettered")
            return _json(500, {"error": "internal", "reason": "unexpected error; see logs"})
        logger.info("event %s", outcome.status, extra={"outcome": outcome.detail})
        return _json(200, {"status": outcome.status, **outcome.detail})

    def _reject(self, rejections: Rejections, event: InboundEvent | None, exc: PermanentError, body: bytes):
        logger.warning("rejected event: %s", exc.reason, extra={"reason_code": exc.reason_code})
        rejections.reject(event, exc, body=body)
        return _json(200, {"status": "rejected", "error": exc.reason_code, "reason": exc.reason})
