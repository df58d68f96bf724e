"""The local cloud: embedded Postgres, GCS and Pub/Sub emulators, the scheduler, and every
function served by functions-framework on its own 127.0.0.1 port.

>>> with LocalCloud(CloudConfig(state_dir=Path(".local"))) as cloud:   # doctest: +SKIP
...     print(cloud.health().render())

Start order: Postgres (migrated) → GCS → Pub/Sub → functions (in parallel) → topics and
push subscriptions (OIDC-signed, with retry policy and dead-letter topic, as in
``shared.topology``) → scheduler. Stop is the reverse, and kills each child's process group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from local.gcs import GcsEmulator
from local.postgres import EmbeddedPostgres, LocalDatabase, start_database
from local.processes import ManagedProcess, free_port
from local.pubsub_emulator import PubSubEmulator
from local.scheduler import LocalScheduler
from shared.adapters.db import Database, DirectConnector
from shared.auth import LocalTokenIssuer
from shared.contracts import Message, ProbePingV1, encode
from shared.schedules import load_schedules
from shared.topology import (
    DEAD_LETTER_TOPIC,
    DEFAULT_RETRY,
    FUNCTIONS,
    PROBE,
    FunctionSpec,
    RetryPolicy,
    all_topics,
    subscription_id,
)

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
OPERATOR_DLQ_SUBSCRIPTION = f"{DEAD_LETTER_TOPIC}--operator"


@dataclass(frozen=True)
class CloudConfig:
    """How to run the local cloud. Defaults are ``make run``'s."""

    state_dir: Path = REPO_ROOT / ".local"
    fresh: bool = False
    project_id: str = "quantsentinel-local"
    functions: tuple[FunctionSpec, ...] = (*FUNCTIONS, PROBE)
    schedules_dir: Path = REPO_ROOT / "schedules"
    retry: RetryPolicy = DEFAULT_RETRY
    duplicate_deliveries: int = 1
    # An already running emulator (e.g. Google's official one) to use instead of ours. It
    # attaches no OIDC tokens to pushes, so push endpoints then carry a harness token in
    # their query string (accepted in local auth mode only).
    external_pubsub: str | None = None
    scheduler_clock: bool = False  # fire jobs on the wall clock in a background thread
    log_level: str = "INFO"
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    ok: bool
    detail: str
    latency_ms: float | None = None


@dataclass(frozen=True)
class Health:
    started_in_s: float
    components: tuple[ComponentHealth, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.components)

    def render(self) -> str:
        lines = [f"local cloud {'healthy' if self.ok else 'UNHEALTHY'} (started in {self.started_in_s:.2f} s)"]
        for c in self.components:
            latency = f"{c.latency_ms:8.1f} ms" if c.latency_ms is not None else " " * 11
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.name:<22} {latency}  {c.detail}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "started_in_s": round(self.started_in_s, 3),
            "components": [c.__dict__ for c in self.components],
        }


def _duration(delta: timedelta) -> Any:
    from google.protobuf import duration_pb2

    proto = duration_pb2.Duration()
    proto.FromTimedelta(delta)
    return proto


class LocalCloud:
    def __init__(self, config: CloudConfig | None = None) -> None:
        self.config = config or CloudConfig()
        self.secret = secrets.token_urlsafe(32)
        self.issuer = LocalTokenIssuer(self.secret)
        self.database: LocalDatabase | None = None
        self._pg: EmbeddedPostgres | None = None
        self.gcs: GcsEmulator | None = None
        self.pubsub: PubSubEmulator | None = None
        self.pubsub_address = ""
        self.functions: dict[str, ManagedProcess] = {}
        self.urls: dict[str, str] = {}
        self.scheduler: LocalScheduler | None = None
        self._stop = threading.Event()
        self._scheduler_thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self._publisher: Any = None
        self._app_db: Database | None = None
        self.started_in_s = 0.0

    # lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> LocalCloud:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalCloud:
        t0 = time.perf_counter()
        cfg = self.config
        logs = cfg.state_dir / "logs"
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("pgserver").setLevel(logging.WARNING)

        self.database, self._pg = start_database(cfg.state_dir / "pgdata", fresh=cfg.fresh)
        self.gcs = GcsEmulator(logs / "gcs.log")
        self.gcs.start()
        if cfg.external_pubsub:
            self.pubsub_address = cfg.external_pubsub
            self._check_reachable(cfg.external_pubsub)
        else:
            self.pubsub = PubSubEmulator(push_token=self.issuer.token,
                                         duplicate_deliveries=cfg.duplicate_deliveries)
            self.pubsub.start()
            self.pubsub_address = self.pubsub.address
        self._set_env({"PUBSUB_EMULATOR_HOST": self.pubsub_address,
                       "STORAGE_EMULATOR_HOST": self.gcs.host})

        for spec in cfg.functions:
            port = free_port()
            self.urls[spec.name] = f"http://127.0.0.1:{port}"
            proc = ManagedProcess(
                spec.name,
                [sys.executable, "-m", "functions_framework", "--target", spec.entry_point,
                 "--source", str(REPO_ROOT / spec.source / "main.py"),
                 "--host", "127.0.0.1", "--port", str(port)],
                env=self.function_env(spec.name),
                log_path=logs / f"{spec.name}.log",
                cwd=REPO_ROOT,
            )
            proc.start()
            self.functions[spec.name] = proc
        for name, proc in self.functions.items():
            proc.wait_ready(lambda n=name: self._function_ready(n), timeout=60)

        self._create_buckets()
        self._create_topology()
        jobs = [j for j in load_schedules(cfg.schedules_dir) if j.target in self.urls]
        self.scheduler = LocalScheduler(jobs, self.urls, self.issuer)
        if cfg.scheduler_clock:
            self._scheduler_thread = threading.Thread(
                target=self.scheduler.run, args=(self._stop,), name="local-scheduler", daemon=True
            )
            self._scheduler_thread.start()
        self.started_in_s = time.perf_counter() - t0
        logger.info("local cloud started in %.2f s", self.started_in_s)
        return self

    def stop(self) -> None:
        """Stop everything, in reverse order; one failing step never skips the others.

        Idempotent: what has been stopped is forgotten.
        """
        self._stop.set()
        steps: list[tuple[str, Any]] = []
        if self._scheduler_thread is not None:
            steps.append(("scheduler thread", lambda t=self._scheduler_thread: t.join(timeout=5)))
        if self.scheduler is not None:
            steps.append(("scheduler", self.scheduler.close))
        if self.pubsub is not None:  # stop pushes before the functions go away
            steps.append(("pubsub", self.pubsub.stop))
        if self._publisher is not None:
            steps.append(("publisher", lambda p=self._publisher: p.stop()))
        steps += [(f"function {name}", proc.stop) for name, proc in self.functions.items()]
        if self.gcs is not None:
            steps.append(("gcs", self.gcs.stop))
        if self._app_db is not None:
            steps.append(("app db pool", self._app_db.close))
        if self._pg is not None:
            steps.append(("postgres", self._pg.stop))
        for name, step in steps:
            try:
                step()
            except Exception:
                logger.exception("stopping %s failed; carrying on with the rest", name)
        self._scheduler_thread = self.scheduler = self.pubsub = self._publisher = None
        self.gcs = self._app_db = self._pg = None
        self.functions = {}
        self._restore_env()

    # wiring ------------------------------------------------------------------------------
    def function_env(self, name: str) -> dict[str, str]:
        """The environment a function process gets (as Cloud Run would give it)."""
        assert self.database is not None and self.pubsub_address and self.gcs is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QS_", "DATABASE_URL"))}
        env.update({
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "DATABASE_URL": self.database.app_url,
            "PUBSUB_EMULATOR_HOST": self.pubsub_address,
            "STORAGE_EMULATOR_HOST": self.gcs.host,
            "QS_ENVIRONMENT": "local",
            "QS_PROJECT_ID": self.config.project_id,
            "QS_FUNCTION_NAME": name,
            "QS_AUTH_MODE": "local",
            "QS_LOCAL_AUTH_SECRET": self.secret,
            "QS_LOG_LEVEL": self.config.log_level,
            "THREADS": "4",
        })
        if name == "retrain":  # MLflow tracking, in its own database
            env["QS_MLFLOW_TRACKING_URI"] = self.database.mlflow_url
        env.update(self.config.extra_env)
        return env

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    @staticmethod
    def _check_reachable(address: str) -> None:
        import grpc

        channel = grpc.insecure_channel(address)
        try:
            grpc.channel_ready_future(channel).result(timeout=3)
        except grpc.FutureTimeoutError:
            raise RuntimeError(
                f"PUBSUB_EMULATOR_HOST={address} is set but nothing answers there: start that "
                "emulator, or unset the variable to use the built-in one"
            ) from None
        finally:
            channel.close()

    def _function_ready(self, name: str) -> bool:
        try:
            return requests.get(f"{self.urls[name]}/health", timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    def _create_buckets(self) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project=self.config.project_id, credentials=AnonymousCredentials())
        for bucket in ("qs-raw-snapshots", "qs-model-artifacts", "qs-index-history"):
            with contextlib.suppress(Exception):  # already exists
                client.create_bucket(bucket)
        # retrain's daily history: the kit's NIFTY 2000-2019 file when it sits beside the
        # checkout (a development convenience; in the cloud, operators upload history)
        kit = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "index_history"
        daily = kit / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv"
        if daily.is_file():
            blob = client.bucket("qs-index-history").blob("daily/NIFTY.csv")
            if not blob.exists():
                blob.upload_from_filename(str(daily), content_type="text/csv")

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.config.project_id}/topics/{topic}"

    def subscription_path(self, sub: str) -> str:
        return f"projects/{self.config.project_id}/subscriptions/{sub}"

    def _create_topology(self) -> None:
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import pubsub_v1

        publisher = self.publisher()
        subscriber = pubsub_v1.SubscriberClient()

        def create_subscription(request: dict[str, Any]) -> None:
            try:
                subscriber.create_subscription(request=request)
            except AlreadyExists:  # a long-running external emulator from an earlier run
                subscriber.delete_subscription(subscription=request["name"])
                subscriber.create_subscription(request=request)

        try:
            for topic in all_topics():
                with contextlib.suppress(AlreadyExists):
                    publisher.create_topic(name=self.topic_path(topic))
            create_subscription({
                "name": self.subscription_path(OPERATOR_DLQ_SUBSCRIPTION),
                "topic": self.topic_path(DEAD_LETTER_TOPIC), "ack_deadline_seconds": 60,
            })
            retry = self.config.retry
            for spec in self.config.functions:
                for topic in spec.consumes:
                    create_subscription({
                        "name": self.subscription_path(subscription_id(topic, spec.name)),
                        "topic": self.topic_path(topic),
                        "ack_deadline_seconds": max(10, min(spec.timeout_s, 600)),
                        "push_config": {
                            "push_endpoint": self._push_endpoint(spec.name),
                            "oidc_token": {
                                "service_account_email": f"pubsub-push@{self.config.project_id}.local",
                                "audience": self.urls[spec.name] + "/",
                            },
                        },
                        "retry_policy": {
                            "minimum_backoff": _duration(retry.minimum_backoff),
                            "maximum_backoff": _duration(retry.maximum_backoff),
                        },
                        "dead_letter_policy": {
                            "dead_letter_topic": self.topic_path(DEAD_LETTER_TOPIC),
                            "max_delivery_attempts": retry.max_delivery_attempts,
                        },
                    })
        finally:
            subscriber.close()

    def _push_endpoint(self, function: str) -> str:
        url = self.urls[function] + "/"
        if self.pubsub is None:  # an external emulator sends no Authorization header
            return f"{url}?token={self.issuer.token(url, 'pubsub-push@local', ttl_seconds=7 * 86400)}"
        return url

    def warm(self, timeout: float = 120.0) -> dict[str, Any]:
        """``GET /warmup`` on every function at once (imports and services built ahead of
        the first event, as a startup probe or min instances would); name → its answer."""
        from concurrent.futures import ThreadPoolExecutor

        def one(name: str) -> tuple[str, Any]:
            try:
                response = requests.get(f"{self.urls[name]}/warmup", timeout=timeout)
                return name, response.json()
            except (requests.RequestException, ValueError) as exc:
                return name, {"error": str(exc)}

        with ThreadPoolExecutor(max_workers=len(self.urls) or 1) as pool:
            return dict(pool.map(one, self.urls))

    # clients for people and tests ----------------------------------------------------
    def publisher(self) -> Any:
        if self._publisher is None:
            from google.cloud import pubsub_v1

            self._publisher = pubsub_v1.PublisherClient()
        return self._publisher

    def publish(self, message: Message, **extra_attributes: str) -> str:
        """Publish a contract message with the real client; returns the message id."""
        data, attributes = encode(message)
        future = self.publisher().publish(self.topic_path(message.topic), data,
                                          **{**attributes, **extra_attributes})
        return future.result(timeout=10)

    def app_db(self) -> Database:
        """A pool on the app role (RLS applies), as the functions use."""
        assert self.database is not None
        if self._app_db is None:
            self._app_db = Database(DirectConnector(self.database.app))
        return self._app_db

    def owner_db(self) -> Database:
        assert self.database is not None
        return Database(DirectConnector(self.database.owner))

    # health ------------------------------------------------------------------------------
    def health(self, canary_timeout: float = 10.0) -> Health:
        comps: list[ComponentHealth] = [self._pg_health(), self._gcs_health(), self._pubsub_health()]
        for name in self.functions:
            t0 = time.perf_counter()
            ok = self.functions[name].alive and self._function_ready(name)
            comps.append(ComponentHealth(f"function {name}", ok, self.urls[name],
                                         (time.perf_counter() - t0) * 1e3))
        if self.scheduler is not None:
            now = datetime.now(UTC)
            upcoming = sorted(
                (t, j.name) for j in self.scheduler.jobs.values()
                for t in j.fire_times(now, now + timedelta(days=7))[:1]
            )
            nxt = f"next: {upcoming[0][1]} at {upcoming[0][0].isoformat()}" if upcoming else "nothing due this week"
            comps.append(ComponentHealth("scheduler", True, f"{len(self.scheduler.jobs)} jobs; {nxt}"))
        if PROBE.name in self.functions:
            comps.append(self.canary(canary_timeout))
        return Health(self.started_in_s, tuple(comps))

    def _pg_health(self) -> ComponentHealth:
        t0 = time.perf_counter()
        try:
            with self.app_db().system() as s:  # the role the functions use
                version = s.execute("SHOW server_version").scalar()
            owner = self.owner_db()
            with owner.system() as s:
                migrations = s.execute("SELECT max(version) FROM schema_migrations").scalar()
            owner.close()
        except Exception as exc:
            return ComponentHealth("postgres", False, str(exc))
        kind = "embedded" if self.database and self.database.embedded else "DATABASE_URL"
        return ComponentHealth("postgres", True, f"PostgreSQL {version} ({kind}), schema v{migrations}",
                               (time.perf_counter() - t0) * 1e3)

    def _gcs_health(self) -> ComponentHealth:
        from shared.adapters.blobs import GcsBlobStore, content_key

        t0 = time.perf_counter()
        try:
            store = GcsBlobStore(self.config.project_id, emulator=True)
            data = f"health {uuid.uuid4()}".encode()
            key = content_key("health", data)
            store.put("qs-raw-snapshots", key, data)
            assert store.get("qs-raw-snapshots", key) == data
        except Exception as exc:
            return ComponentHealth("gcs", False, f"write/read failed: {exc}")
        assert self.gcs is not None
        return ComponentHealth("gcs", True, f"{self.gcs.host}, write+read round trip",
                               (time.perf_counter() - t0) * 1e3)

    def _pubsub_health(self) -> ComponentHealth:
        if self.pubsub is None:
            t0 = time.perf_counter()
            try:
                topics = list(self.publisher().list_topics(project=f"projects/{self.config.project_id}"))
            except Exception as exc:
                return ComponentHealth("pubsub", False, f"external emulator {self.pubsub_address}: {exc}")
            return ComponentHealth("pubsub", True, f"external emulator {self.pubsub_address}, "
                                   f"{len(topics)} topics", (time.perf_counter() - t0) * 1e3)
        stats = self.pubsub.stats()
        return ComponentHealth("pubsub", True, f"{self.pubsub.address}, {stats['topics']} topics, "
                               f"{stats['subscriptions']} subscriptions")

    def canary(self, timeout: float = 10.0) -> ComponentHealth:
        """Publish a probe ping and wait for its heartbeat row: the whole path, measured."""
        ping = ProbePingV1(probe_id=uuid.uuid4(), sent_at=datetime.now(UTC))
        t0 = time.perf_counter()
        try:
            event_id = self.publish(ping)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with self.app_db().system() as s:
                    if s.execute("SELECT 1 FROM heartbeats WHERE event_id = :e", e=event_id).rows:
                        return ComponentHealth("canary", True, "publish → push → probe → postgres",
                                               (time.perf_counter() - t0) * 1e3)
                time.sleep(0.01)
        except Exception as exc:
            return ComponentHealth("canary", False, f"failed: {exc}")
        return ComponentHealth("canary", False, f"no heartbeat within {timeout:.0f}s")
