"""Experiment tracking: MLflow runs (params, metrics, artifacts) for every retrain.

MLflow *tracks*; the production layer (:mod:`shared.adapters.registry`) alone decides what
serves. The retrain service talks to a small :class:`Tracker` protocol:

.. code-block:: python

    with tracker.run("vol_har_1d", run_name="nightly", tags={"tenant": "global"}) as run:
        run.log_params({"horizon": 1, "window": 22})
        run.log_metrics({"oos_r2": 0.31})
        run.log_artifact_bytes("model.bin", artifact)
        lineage_run_id = run.run_id

A run that leaves the block normally ends ``FINISHED``; one left by an exception ends
``FAILED`` and the exception propagates unchanged (``KILLED`` for ``KeyboardInterrupt``
and other non-``Exception`` exits).

Two implementations:

* :class:`MlflowTracker`: the MLflow client API (``mlflow.tracking.MlflowClient``) with
  the SQLAlchemy backend store on PostgreSQL through **pg8000** (``postgresql+pg8000://``;
  psycopg2 is not a dependency) and artifacts in GCS (``gs://``; the emulator named by
  ``STORAGE_EMULATOR_HOST`` locally, where ``google-cloud-storage`` switches to anonymous
  credentials by itself). mlflow is imported **lazily**, on the first run: importing this
  module never imports mlflow or SQLAlchemy, so serving code keeps its cold start.
* :class:`NullTracker`: tracking not configured; records nothing, still hands out run ids.

The backend database
--------------------
MLflow owns its schema: on the first connection to an empty database its store creates the
tables and runs its alembic migrations (a few seconds), and every later process checks the
schema revision. It needs a **database of its own** (``mlflow``), owned by a role that may
create tables in it; the application role cannot create in ``quantsentinel``'s ``public``
schema (and must not). On PostgreSQL 15+ the ``public`` schema of a new database belongs to
the database owner, so ``CREATE DATABASE mlflow OWNER <role>`` is all it takes.

MLflow serialises its first-run migration with a file lock, which only protects one
machine: run :meth:`MlflowTracker.prepare` once (deploy step, local bootstrap) rather than
let two instances race on an empty database.

Errors
------
* :class:`TrackingUnavailable` (transient): the database or GCS cannot be reached, times
  out, or is restarting. Before MLflow's store is built, the database is probed with a
  short timeout: MLflow's own engine creation retries for about 100 s before giving up.
* :class:`TrackingMisconfigured` (permanent): wrong password, a database that does not
  exist, a role that may not create MLflow's tables, a missing bucket.
* :class:`TrackingRejected` (permanent): MLflow refused a call (e.g. a parameter logged
  twice with different values, a value too long).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qs, quote, urlsplit

from shared.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)

__all__ = [
    "MlflowTracker",
    "NullTracker",
    "TrackedRun",
    "Tracker",
    "TrackingMisconfigured",
    "TrackingRejected",
    "TrackingUnavailable",
    "sqlalchemy_tracking_uri",
    "tracker_from_settings",
]

RunStatus = Literal["FINISHED", "FAILED", "KILLED"]

# MLflow's batch limits (mlflow.utils.validation): params and tags per log_batch call,
# metrics per call.
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
# experiment names double as GCS prefixes: keep them path-safe
_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
_ARTIFACT_PART = re.compile(r"[A-Za-z0-9._-]+")

# SQLSTATEs: retry (connection, restart, resources, a race on MLflow's first migration) or
# fix the configuration (authorisation, missing database, privileges).
_TRANSIENT_SQLSTATES = ("08", "57P", "53", "40001", "40P01", "42P07", "23505")
_MISCONFIGURED_SQLSTATES = ("28", "3D000", "42501", "3F000")


class TrackingUnavailable(TransientError):
    """The tracking backend (database or artifact store) cannot be reached now."""

    reason_code = "tracking_unavailable"


class TrackingMisconfigured(PermanentError):
    """The tracking configuration is wrong; retrying cannot help until it is fixed."""

    reason_code = "tracking_misconfigured"


class TrackingRejected(PermanentError):
    """MLflow refused a tracking call (bad or conflicting value)."""

    reason_code = "tracking_rejected"


# ------------------------------------------------------------------------------ protocol
@runtime_checkable
class TrackedRun(Protocol):
    """One tracked run, open inside :meth:`Tracker.run`."""

    @property
    def run_id(self) -> str:
        """The run's id (MLflow's run id; a uuid4 hex for :class:`NullTracker`)."""
        ...

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values are stored as strings; a key logged twice must keep its
        value)."""
        ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metric values, optionally at a step (MLflow keeps every step's value)."""
        ...

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set (or overwrite) tags on the run."""
        ...

    def log_artifact_bytes(self, name: str, data: bytes) -> str | None:
        """Store ``data`` as the run's artifact ``name`` (``a/b.bin`` for a folder); returns
        the artifact's URI, or None when nothing is stored."""
        ...


class Tracker(Protocol):
    """Opens tracked runs; see the module docstring."""

    def run(self, experiment: str, run_name: str, tags: Mapping[str, str] | None = None
            ) -> contextlib.AbstractContextManager[TrackedRun]:
        """A run in ``experiment`` (created on first use), ended ``FINISHED`` when the block
        completes and ``FAILED`` when it raises (the exception propagates)."""
        ...


# ------------------------------------------------------------------------------ null
class _NullRun:
    def __init__(self) -> None:
        self._run_id = uuid.uuid4().hex

    @property
    def run_id(self) -> str:
        return self._run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass

    def log_artifact_bytes(self, name: str, data: bytes) -> str | None:
        _artifact_path(name)  # the same contract as the real tracker
        return None


class NullTracker:
    """Tracking not configured: runs record nothing but still have a run id (uuid4 hex)."""

    @contextlib.contextmanager
    def run(self, experiment: str, run_name: str, tags: Mapping[str, str] | None = None
            ) -> Iterator[TrackedRun]:
        _check_experiment(experiment)
        yield _NullRun()

    def __repr__(self) -> str:
        return "NullTracker()"


# ------------------------------------------------------------------------------ mlflow
class _MlflowRun:
    def __init__(self, tracker: MlflowTracker, client: Any, run_id: str, artifact_uri: str
                 ) -> None:
        self._tracker = tracker
        self._client = client
        self._run_id = run_id
        self._artifact_uri = artifact_uri.rstrip("/")

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def artifact_uri(self) -> str:
        """The run's artifact root (``gs://bucket/prefix/<experiment>/<run id>/artifacts``)."""
        return self._artifact_uri

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(str(k), str(v)) for k, v in params.items()]
        with self._tracker._errors(f"logging params to run {self._run_id}"):
            for i in range(0, len(items), _PARAMS_PER_BATCH):
                self._client.log_batch(self._run_id, params=items[i:i + _PARAMS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        at = int(time.time() * 1000)
        items = [Metric(str(k), float(v), at, int(step or 0)) for k, v in metrics.items()]
        with self._tracker._errors(f"logging metrics to run {self._run_id}"):
            for i in range(0, len(items), _METRICS_PER_BATCH):
                self._client.log_batch(self._run_id, metrics=items[i:i + _METRICS_PER_BATCH])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(str(k), str(v)) for k, v in tags.items()]
        with self._tracker._errors(f"tagging run {self._run_id}"):
            for i in range(0, len(items), _PARAMS_PER_BATCH):
                self._client.log_batch(self._run_id, tags=items[i:i + _PARAMS_PER_BATCH])

    def log_artifact_bytes(self, name: str, data: bytes) -> str:
        folder, filename = _artifact_path(name)
        with tempfile.TemporaryDirectory(prefix="qs-artifact-") as tmp:
            path = os.path.join(tmp, filename)
            with open(path, "wb") as f:
                f.write(data)
            with self._tracker._errors(f"uploading artifact {name!r} of run {self._run_id}"):
                self._client.log_artifact(self._run_id, path, artifact_path=folder)
        return f"{self._artifact_uri}/{name}"


class MlflowTracker:
    """Runs tracked in MLflow (see the module docstring).

    Parameters
    ----------
    tracking_uri
        The backend store. PostgreSQL as ``postgresql+pg8000://user:pw@host:port/mlflow``
        (a Unix socket: ``postgresql+pg8000://user:pw@/mlflow?unix_sock=/dir/.s.PGSQL.5432``);
        a libpq-style ``postgresql://`` URL is rewritten to that form
        (:func:`sqlalchemy_tracking_uri`). Other MLflow URIs (``sqlite:///``, ``http://``)
        are passed through untouched.
    artifact_root
        Where experiments created here keep their artifacts: experiment ``e`` gets
        ``{artifact_root}/e`` (``gs://bucket/prefix`` for GCS). Experiments that already
        exist keep the location they were created with.
    connect_timeout
        Seconds the database probe waits before the backend counts as unavailable.
    """

    def __init__(self, tracking_uri: str, artifact_root: str, *,
                 connect_timeout: float = 5.0) -> None:
        if not artifact_root or not artifact_root.strip("/"):
            raise ValueError("artifact_root must name a location, e.g. gs://bucket/mlflow")
        self._uri = sqlalchemy_tracking_uri(tracking_uri)
        self._artifact_root = artifact_root.rstrip("/")
        self._connect_timeout = connect_timeout
        self._client: Any = None
        self._experiments: dict[str, str] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ properties
    @property
    def tracking_uri(self) -> str:
        """The backend store URI as MLflow sees it (it holds a password: a secret)."""
        return self._uri

    @property
    def artifact_root(self) -> str:
        return self._artifact_root

    def __repr__(self) -> str:
        return f"MlflowTracker({_redact(self._uri)!r}, {self._artifact_root!r})"

    # ------------------------------------------------------------------ the client
    def client(self) -> Any:
        """The ``MlflowClient``, built on first use: probe the database, then let MLflow
        build its store (creating and migrating its schema on an empty database)."""
        with self._lock:
            if self._client is None:
                self._probe()
                with self._errors("opening the MLflow tracking store"):
                    from mlflow.tracking import MlflowClient

                    client = MlflowClient(tracking_uri=self._uri)
                    client.search_experiments(max_results=1)  # builds the store: fail here
                self._client = client
            return self._client

    def prepare(self) -> float:
        """Build the store now (schema creation and migrations on an empty database);
        returns the seconds it took. Run once per deployment, before concurrent use."""
        started = time.perf_counter()
        self.client()
        return time.perf_counter() - started

    def _probe(self) -> None:
        """Fail fast when the database cannot be reached (MLflow retries ~100 s)."""
        scheme = urlsplit(self._uri).scheme.lower()
        if not scheme.startswith("postgresql"):
            return
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = sqlalchemy.create_engine(self._uri, poolclass=NullPool,
                                          connect_args={"timeout": self._connect_timeout})
        try:
            with self._errors("connecting to the MLflow database"), engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
        finally:
            engine.dispose()

    def _experiment_id(self, client: Any, experiment: str) -> str:
        if (cached := self._experiments.get(experiment)) is not None:
            return cached
        from mlflow.exceptions import MlflowException

        with self._errors(f"looking up experiment {experiment!r}"):
            found = client.get_experiment_by_name(experiment)
            if found is None:
                location = f"{self._artifact_root}/{experiment}"
                try:
                    experiment_id = client.create_experiment(experiment,
                                                             artifact_location=location)
                    logger.info("created MLflow experiment %s (artifacts in %s)", experiment,
                                location)
                except MlflowException as exc:  # created concurrently by another process
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    found = client.get_experiment_by_name(experiment)
                    if found is None:
                        raise
            if found is not None:
                if found.lifecycle_stage != "active":
                    raise TrackingMisconfigured(
                        f"MLflow experiment {experiment!r} is deleted: restore it "
                        f"(mlflow experiments restore --experiment-id {found.experiment_id}) "
                        f"or remove it permanently (mlflow gc)")
                experiment_id = found.experiment_id
        self._experiments[experiment] = experiment_id
        return experiment_id

    # ------------------------------------------------------------------ runs
    @contextlib.contextmanager
    def run(self, experiment: str, run_name: str, tags: Mapping[str, str] | None = None
            ) -> Iterator[TrackedRun]:
        """See :meth:`Tracker.run`. The run is created on entry, so a tracking outage fails
        the caller before any work is done."""
        _check_experiment(experiment)
        client = self.client()
        experiment_id = self._experiment_id(client, experiment)
        with self._errors(f"starting a run in experiment {experiment!r}"):
            created = client.create_run(experiment_id, run_name=run_name,
                                        tags={str(k): str(v) for k, v in (tags or {}).items()})
        run = _MlflowRun(self, client, created.info.run_id, created.info.artifact_uri)
        status: RunStatus = "FINISHED"
        try:
            yield run
        except Exception:
            status = "FAILED"
            raise
        except BaseException:
            status = "KILLED"
            raise
        finally:
            self._end(client, run.run_id, status)

    def _end(self, client: Any, run_id: str, status: RunStatus) -> None:
        if status == "FINISHED":  # a failure to close a good run is the caller's failure
            with self._errors(f"ending run {run_id}"):
                client.set_terminated(run_id, status)
            return
        try:  # never mask the exception that ended the run
            with self._errors(f"ending run {run_id}"):
                client.set_terminated(run_id, status)
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not mark MLflow run %s %s: %s", run_id, status, exc)

    # ------------------------------------------------------------------ errors
    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate backend failures into the error taxonomy (:mod:`shared.errors`)."""
        try:
            yield
        except (TrackingUnavailable, TrackingMisconfigured, TrackingRejected):
            raise
        except Exception as exc:
            kind = _classify(exc)
            if kind is None:
                raise
            detail = _describe(exc)
            target = _redact(self._uri)
            if kind is TrackingRejected:
                raise TrackingRejected(f"MLflow refused {action}: {detail}") from exc
            hint = ""
            if kind is TrackingMisconfigured and "permission denied for schema" in detail:
                hint = (" (MLflow creates its own tables: give it a database of its own, "
                        "owned by the role in the tracking URI)")
            raise kind(f"{action} failed ({target}): {detail}{hint}") from exc


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes and contexts (MLflow wraps SQLAlchemy, which wraps pg8000)."""
    nodes: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and all(node is not n for n in nodes):
        nodes.append(node)
        node = node.__cause__ or node.__context__
    return nodes


def _classify(exc: BaseException) -> type[PermanentError] | type[TransientError] | None:
    """The tracking error ``exc`` amounts to, or None (not a backend failure: a bug).

    A server's SQLSTATE anywhere in the chain decides first: pg8000 may raise a "network
    error" while closing a connection the server refused (``database does not exist``),
    and that must not turn a configuration error into a transient one.
    """
    chain = _chain(exc)
    codes = [code for node in chain if (code := _sqlstate(node)) is not None]
    if any(code.startswith(_MISCONFIGURED_SQLSTATES) for code in codes):
        return TrackingMisconfigured
    if any(code.startswith(_TRANSIENT_SQLSTATES) for code in codes):
        return TrackingUnavailable
    rejected = False
    for node in chain:
        name = type(node).__name__
        module = type(node).__module__
        if module.startswith("sqlalchemy") and name in (
                "OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError"):
            return TrackingUnavailable
        if module.startswith("pg8000") and name == "InterfaceError":
            return TrackingUnavailable
        if module.startswith("google.api_core"):
            if name in ("NotFound", "Forbidden", "Unauthorized", "PermissionDenied"):
                return TrackingMisconfigured
            if name in ("TooManyRequests", "RequestTimeout", "ServiceUnavailable",
                        "InternalServerError", "BadGateway", "GatewayTimeout",
                        "ServerError", "RetryError"):
                return TrackingUnavailable
        if module.startswith(("requests", "urllib3")) and name.endswith(
                ("ConnectionError", "Timeout", "ProtocolError", "MaxRetryError")):
            return TrackingUnavailable
        if module.startswith("google.auth") and name in ("DefaultCredentialsError",
                                                         "RefreshError"):
            return TrackingMisconfigured
        if isinstance(node, (ConnectionError, TimeoutError)):
            return TrackingUnavailable
        if module.startswith("mlflow") and name == "MlflowException":
            error_code = getattr(node, "error_code", "")
            if error_code == "TEMPORARILY_UNAVAILABLE":
                return TrackingUnavailable
            if error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS",
                              "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE", "BAD_REQUEST"):
                rejected = True  # unless a cause says otherwise (MLflow wraps SQL errors)
    return TrackingRejected if rejected else None


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a pg8000 error (``args[0]['C']``), directly or under SQLAlchemy's
    ``orig``."""
    for candidate in (exc, getattr(exc, "orig", None)):
        args = getattr(candidate, "args", None)
        if args and isinstance(args[0], dict) and isinstance(args[0].get("C"), str):
            return args[0]["C"]
    return None


def _describe(exc: BaseException) -> str:
    """The most telling message in the chain: a server error's text, else the outermost."""
    for node in _chain(exc):
        for candidate in (node, getattr(node, "orig", None)):
            args = getattr(candidate, "args", None)
            if args and isinstance(args[0], dict) and "M" in args[0]:
                return f"{args[0]['M']} (SQLSTATE {args[0].get('C', '?')})"
    text = str(getattr(exc, "message", None) or exc)
    return text.splitlines()[0][:500] if text else type(exc).__name__


# ------------------------------------------------------------------------------ helpers
def _check_experiment(experiment: str) -> None:
    if len(experiment) > 200 or not _EXPERIMENT_NAME.fullmatch(experiment):
        raise ValueError(f"experiment name {experiment!r}: use letters, digits, '.', '_', '-' "
                         f"(and '/' between parts), at most 200 characters")


def _artifact_path(name: str) -> tuple[str | None, str]:
    """(folder or None, file name) of a relative artifact name; refuses ``..`` and absolute
    names."""
    parts = name.split("/")
    if not name or any(not _ARTIFACT_PART.fullmatch(p) or p in (".", "..") for p in parts):
        raise ValueError(f"artifact name {name!r}: a relative path of letters, digits, "
                         f"'.', '_', '-' parts ('a/b.bin'), without '..'")
    return ("/".join(parts[:-1]) or None), parts[-1]


def _redact(uri: str) -> str:
    """``uri`` without its password."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def sqlalchemy_tracking_uri(uri: str) -> str:
    """The MLflow backend-store URI for ``uri``, on the pg8000 driver for PostgreSQL.

    ``postgresql://`` (or ``postgres://``) would make SQLAlchemy load psycopg2, which is
    not installed; libpq's ``?host=/socket/dir`` is not a pg8000 argument. Both are
    rewritten: ``postgresql+pg8000://user:pw@host:port/db`` for TCP,
    ``postgresql+pg8000://user:pw@/db?unix_sock=/dir/.s.PGSQL.<port>`` for a Unix socket
    (pgserver locally; ``/cloudsql/<instance>`` on Cloud Run). A ``postgresql+pg8000://``
    URI without ``host=`` and any non-PostgreSQL URI are returned unchanged.

    Raises
    ------
    TrackingMisconfigured
        ``sslmode=require`` (or stricter): pg8000 takes TLS only as an ``ssl_context``
        object, which a URL cannot carry; use the Cloud SQL socket or a private address.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("postgresql", "postgres", "postgresql+pg8000"):
        return uri
    query = parse_qs(parts.query)
    if scheme == "postgresql+pg8000" and "host" not in query:
        return uri
    from shared.adapters.db import parse_database_url  # lazy: keeps this module light

    params = parse_database_url(uri)
    if params.ssl:
        raise TrackingMisconfigured(
            "the tracking URI asks for sslmode=require, which pg8000 cannot take from a URL: "
            "connect through the Cloud SQL Unix socket (?host=/cloudsql/<instance>) instead")
    auth = quote(params.user, safe="")
    if params.password:
        auth += ":" + quote(params.password, safe="")
    database = quote(params.database, safe="")
    if params.unix_sock is not None:
        return (f"postgresql+pg8000://{auth}@/{database}"
                f"?unix_sock={quote(params.unix_sock, safe='/:')}")
    host = f"[{params.host}]" if params.host and ":" in params.host else params.host
    return f"postgresql+pg8000://{auth}@{host}:{params.port}/{database}"


def tracker_from_settings(tracking_uri: str | None, artifact_root: str) -> Tracker:
    """:class:`MlflowTracker` when a tracking URI is configured, else :class:`NullTracker`.

    Building the tracker imports nothing of mlflow; the first run does.
    """
    if not tracking_uri or not tracking_uri.strip():
        return NullTracker()
    return MlflowTracker(tracking_uri.strip(), artifact_root)
