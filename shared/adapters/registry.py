"""The model registry's production layer: versions, the production pointer, failed attempts
and the training lock, in Postgres (migration 0006), with the artifacts in GCS.

MLflow tracks the experiments; this layer alone decides what serves. It does not import
mlflow, so serving code (decide) can load production models with a small cold start
(:class:`ProductionModels`).

* :meth:`ModelRegistry.stage` uploads the artifact to
  ``gs://<bucket>/models/<type>/<tenant|global>/v<NNNN>-<sha16>.bin`` and records a staged
  version with its SHA-256, size, feature schema, metrics and lineage.
* :meth:`ModelRegistry.promote` archives the current production version, promotes the
  candidate and flips the pointer in one SERIALIZABLE transaction; a concurrent promotion
  of the same model fails with a serialization error and retries as a transient error.
* :meth:`ModelRegistry.rollback` restores the version that was production before the
  current one, in one transaction.
* :meth:`ModelRegistry.fetch` downloads an artifact and refuses it
  (:class:`ArtifactCorrupted`) when its SHA-256 is not the recorded one.
* :meth:`ModelRegistry.training_lock` is a session-level advisory lock per (model type,
  tenant): a second retrain of the same model finds it held.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from shared.adapters.blobs import BlobStore
from shared.adapters.db import Database, Session
from shared.domain.registry import ModelState, can_move
from shared.errors import PermanentError

__all__ = [
    "ArtifactCorrupted",
    "Lineage",
    "ModelRegistry",
    "ModelVersion",
    "NoProductionModel",
    "ProductionModels",
    "RegistryConflict",
]


class ArtifactCorrupted(PermanentError):
    reason_code = "artifact_corrupted"


class RegistryConflict(PermanentError):
    reason_code = "registry_conflict"
    http_status = 409


class NoProductionModel(PermanentError):
    reason_code = "no_production_model"
    http_status = 404


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a version came from."""

    code_commit: str
    data_version: str
    data_end: date
    run_id: str
    parent_version: int | None = None
    tracking_run_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One row of ``model_versions``."""

    model_type: str
    tenant_id: UUID | None
    version: int
    state: ModelState
    artifact_uri: str
    sha256: str
    size_bytes: int
    feature_schema: tuple[str, ...]
    metrics: Mapping[str, float]
    judgement: str | None
    lineage: Lineage
    promoted_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelVersion:
        def js(v: Any) -> Any:
            return json.loads(v) if isinstance(v, str) else v

        return cls(model_type=row["model_type"], tenant_id=row["tenant_id"],
                   version=row["version"], state=ModelState(row["state"]),
                   artifact_uri=row["artifact_uri"], sha256=row["sha256"],
                   size_bytes=row["size_bytes"], feature_schema=tuple(js(row["feature_schema"])),
                   metrics=dict(js(row["metrics"])), judgement=row["judgement"],
                   lineage=Lineage(row["code_commit"], row["data_version"], row["data_end"],
                                   row["run_id"], row["parent_version"],
                                   row["tracking_run_id"]),
                   promoted_at=row["promoted_at"])


_COLUMNS = ("model_type, tenant_id, version, state, artifact_uri, sha256, size_bytes, "
            "feature_schema, metrics, judgement, code_commit, data_version, data_end, run_id, "
            "parent_version, tracking_run_id, promoted_at")


def _split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        raise ArtifactCorrupted(f"not a gs:// artifact URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class ModelRegistry:
    """See the module docstring. ``tenant_id`` None is a global model (a session without a
    tenant); otherwise the tenant's session, so row-level security scopes every statement."""

    def __init__(self, db: Database, blobs: BlobStore, bucket: str) -> None:
        self._db = db
        self._blobs = blobs
        self._bucket = bucket

    def _session(self, tenant_id: UUID | None, *, isolation: str | None = None
                 ) -> contextlib.AbstractContextManager[Session]:
        if tenant_id is None:
            return self._db.system(isolation=isolation)
        return self._db.tenant(tenant_id, isolation=isolation)

    # ---------------------------------------------------------------------------- locks
    @contextlib.contextmanager
    def training_lock(self, model_type: str, tenant_id: UUID | None) -> Iterator[bool]:
        """Whether this process may train the model now (see the module docstring)."""
        with self._db.advisory_lock(f"retrain:{model_type}:{tenant_id or 'global'}") as taken:
            yield taken

    # ------------------------------------------------------------------------- versions
    def stage(self, model_type: str, tenant_id: UUID | None, artifact: bytes,
              feature_schema: tuple[str, ...], metrics: Mapping[str, float],
              lineage: Lineage) -> ModelVersion:
        """Upload the artifact and record a staged version (the next version number)."""
        sha = hashlib.sha256(artifact).hexdigest()
        with self._session(tenant_id) as s:
            version = int(s.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model_type = :m "
                "AND tenant_key = :k", m=model_type, k=str(tenant_id or "")).scalar())
            key = (f"models/{model_type}/{tenant_id or 'global'}/v{version:04d}-{sha[:16]}.bin")
            uri = self._blobs.put(self._bucket, key, artifact)
            rows = s.execute(
                f"INSERT INTO model_versions (model_type, tenant_id, version, state, artifact_uri, "
                f"sha256, size_bytes, feature_schema, metrics, code_commit, data_version, "
                f"data_end, run_id, parent_version, tracking_run_id) VALUES (:m, :t, :v, "
                f"'staged', :uri, :sha, :size, CAST(:schema AS jsonb), CAST(:metrics AS jsonb), "
                f":commit, :data, :end, :run, :parent, :tracking) RETURNING {_COLUMNS}",
                m=model_type, t=tenant_id, v=version, uri=uri, sha=sha, size=len(artifact),
                schema=json.dumps(list(feature_schema)),
                metrics=json.dumps({k: float(v) for k, v in metrics.items()}),
                commit=lineage.code_commit, data=lineage.data_version, end=lineage.data_end,
                run=lineage.run_id, parent=lineage.parent_version,
                tracking=lineage.tracking_run_id).dicts()
        return ModelVersion.from_row(rows[0])

    def get(self, model_type: str, tenant_id: UUID | None, version: int) -> ModelVersion | None:
        with self._session(tenant_id) as s:
            rows = s.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE model_type = :m "
                             f"AND tenant_key = :k AND version = :v", m=model_type,
                             k=str(tenant_id or ""), v=version).dicts()
        return ModelVersion.from_row(rows[0]) if rows else None

    def production(self, model_type: str, tenant_id: UUID | None) -> ModelVersion | None:
        with self._session(tenant_id) as s:
            rows = s.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE model_type = :m "
                             f"AND tenant_key = :k AND state = 'production'",
                             m=model_type, k=str(tenant_id or "")).dicts()
        return ModelVersion.from_row(rows[0]) if rows else None

    def _move(self, s: Session, model_type: str, tenant_id: UUID | None, version: int,
              new: ModelState, now: datetime, *, judgement: str | None = None,
              paired: Mapping[str, float] | None = None, promoted: bool = False
              ) -> dict[str, Any]:
        rows = s.execute(f"SELECT {_COLUMNS} FROM model_versions WHERE model_type = :m AND "
                         f"tenant_key = :k AND version = :v FOR UPDATE", m=model_type,
                         k=str(tenant_id or ""), v=version).dicts()
        if not rows:
            raise RegistryConflict(f"{model_type} v{version} does not exist")
        old = ModelState(rows[0]["state"])
        if not can_move(old, new):
            raise RegistryConflict(f"{model_type} v{version} is {old.value}: it cannot become "
                                   f"{new.value}")
        return s.execute(
            f"UPDATE model_versions SET state = :new, state_changed_at = :at, "
            f"judgement = coalesce(:j, judgement), paired = coalesce(CAST(:p AS jsonb), paired), "
            f"promoted_at = CASE WHEN :promoted THEN :at ELSE promoted_at END "
            f"WHERE model_type = :m AND tenant_key = :k AND version = :v RETURNING {_COLUMNS}",
            new=new.value, at=now, j=judgement, p=json.dumps(dict(paired)) if paired else None,
            promoted=promoted,
            m=model_type, k=str(tenant_id or ""), v=version).dicts()[0]

    def _point(self, s: Session, row: dict[str, Any], now: datetime) -> None:
        s.execute(
            "INSERT INTO model_pointers (model_type, tenant_id, version, sha256, artifact_uri, "
            "updated_at) VALUES (:m, :t, :v, :sha, :uri, :at) ON CONFLICT (model_type, "
            "tenant_key) DO UPDATE SET version = EXCLUDED.version, sha256 = EXCLUDED.sha256, "
            "artifact_uri = EXCLUDED.artifact_uri, updated_at = EXCLUDED.updated_at",
            m=row["model_type"], t=row["tenant_id"], v=row["version"], sha=row["sha256"],
            uri=row["artifact_uri"], at=now)

    def promote(self, model_type: str, tenant_id: UUID | None, version: int, *,
                judgement: str, paired: Mapping[str, float] | None, now: datetime
                ) -> ModelVersion:
        """Make ``version`` production: archive the current one, flip the pointer, all in
        one SERIALIZABLE transaction."""
        with self._session(tenant_id, isolation="SERIALIZABLE") as s:
            current = s.execute("SELECT version FROM model_versions WHERE model_type = :m AND "
                                "tenant_key = :k AND state = 'production'", m=model_type,
                                k=str(tenant_id or "")).scalar()
            if current is not None:
                self._move(s, model_type, tenant_id, current, ModelState.ARCHIVED, now)
            row = self._move(s, model_type, tenant_id, version, ModelState.PRODUCTION, now,
                             judgement=judgement, paired=paired, promoted=True)
            self._point(s, row, now)
        return ModelVersion.from_row(row)

    def reject(self, model_type: str, tenant_id: UUID | None, version: int, *,
               judgement: str, paired: Mapping[str, float] | None, now: datetime
               ) -> ModelVersion:
        with self._session(tenant_id) as s:
            row = self._move(s, model_type, tenant_id, version, ModelState.REJECTED, now,
                             judgement=judgement, paired=paired)
        return ModelVersion.from_row(row)

    def rollback(self, model_type: str, tenant_id: UUID | None, *, now: datetime,
                 reason: str = "rolled back") -> ModelVersion:
        """Restore the version that was production before the current one (by promotion
        time: a rollback keeps the restored version's original promotion time, so a second
        rollback goes further back, never forward to the version just rolled back)."""
        with self._session(tenant_id, isolation="SERIALIZABLE") as s:
            current = s.execute(
                "SELECT version, promoted_at FROM model_versions WHERE model_type = :m AND "
                "tenant_key = :k AND state = 'production'", m=model_type,
                k=str(tenant_id or "")).rows
            if not current:
                raise NoProductionModel(f"{model_type} has no production version to roll back")
            version, promoted_at = current[0]
            previous = s.execute(
                "SELECT version FROM model_versions WHERE model_type = :m AND tenant_key = :k "
                "AND state = 'archived' AND promoted_at < :p ORDER BY promoted_at DESC LIMIT 1",
                m=model_type, k=str(tenant_id or ""), p=promoted_at).scalar()
            if previous is None:
                raise RegistryConflict(f"{model_type} v{version} has no earlier production "
                                       f"version to roll back to")
            self._move(s, model_type, tenant_id, version, ModelState.ARCHIVED, now,
                       judgement=f"{reason} (v{previous} restored)")
            row = self._move(s, model_type, tenant_id, previous, ModelState.PRODUCTION, now)
            self._point(s, row, now)
        return ModelVersion.from_row(row)

    # -------------------------------------------------------------------------- failures
    def record_failure(self, model_type: str, tenant_id: UUID | None, *, run_id: str,
                       reason_code: str, error: str, started_at: datetime,
                       partial_metrics: Mapping[str, float] | None = None,
                       data_version: str | None = None, status: str = "failed") -> int:
        """Append a failed (or locked-out) attempt; returns its id."""
        with self._session(tenant_id) as s:
            return int(s.execute(
                "INSERT INTO training_attempts (model_type, tenant_id, run_id, status, "
                "reason_code, error, partial_metrics, data_version, started_at) VALUES (:m, :t, "
                ":r, :st, :code, :err, CAST(:pm AS jsonb), :dv, :at) RETURNING attempt_id",
                m=model_type, t=tenant_id, r=run_id, st=status, code=reason_code,
                err=error[:4000], pm=json.dumps({k: float(v) for k, v in
                                                 (partial_metrics or {}).items()}),
                dv=data_version, at=started_at).scalar())

    # ------------------------------------------------------------------------- artifacts
    def fetch(self, artifact_uri: str, sha256: str) -> bytes:
        """The artifact's bytes, verified against the recorded SHA-256."""
        bucket, key = _split_uri(artifact_uri)
        data = self._blobs.get(bucket, key)
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise ArtifactCorrupted(f"{artifact_uri}: sha256 {got[:16]}… is not the recorded "
                                    f"{sha256[:16]}…; refusing to load it")
        return data

    def record_health(self, model_type: str, tenant_id: UUID | None, *, flagged: bool,
                      health: Mapping[str, Any], now: datetime) -> bool:
        """Store the production model's health on its pointer; False without a pointer."""
        with self._session(tenant_id) as s:
            return bool(s.execute(
                "UPDATE model_pointers SET health = CAST(:h AS jsonb), flagged = :f, "
                "health_checked_at = :at WHERE model_type = :m AND tenant_key = :k "
                "RETURNING 1", h=json.dumps(dict(health), default=str), f=flagged, at=now,
                m=model_type, k=str(tenant_id or "")).rows)

    def pointer(self, model_type: str, tenant_id: UUID | None) -> tuple[int, str, str] | None:
        """(version, sha256, artifact URI) of production, from the pointer (one row)."""
        with self._session(tenant_id) as s:
            rows = s.execute("SELECT version, sha256, artifact_uri FROM model_pointers WHERE "
                             "model_type = :m AND tenant_key = :k", m=model_type,
                             k=str(tenant_id or "")).rows
        return (int(rows[0][0]), rows[0][1], rows[0][2]) if rows else None


T = TypeVar("T")


class ProductionModels(Generic[T]):
    """Serving's view of production models: loads the pointer's artifact, verifies its
    SHA-256, deserialises it with ``load`` and caches it; rechecks the pointer at most every
    ``recheck_seconds`` and loads a new version when the pointer moved (no restart)."""

    def __init__(self, registry: ModelRegistry, load: Callable[[bytes], T], *,
                 recheck_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._registry = registry
        self._load = load
        self._recheck = recheck_seconds
        self._clock = clock
        self._cache: dict[tuple[str, UUID | None], tuple[int, T, float]] = {}
        self._lock = threading.Lock()

    def get(self, model_type: str, tenant_id: UUID | None = None) -> tuple[int, T]:
        """(version, model) of production; raises :class:`NoProductionModel`."""
        key = (model_type, tenant_id)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[2] < self._recheck:
            return cached[0], cached[1]
        pointer = self._registry.pointer(model_type, tenant_id)
        if pointer is None:
            raise NoProductionModel(f"no production {model_type} model")
        version, sha, uri = pointer
        if cached is not None and cached[0] == version:
            model = cached[1]
        else:
            model = self._load(self._registry.fetch(uri, sha))
        with self._lock:
            self._cache[key] = (version, model, now)
        return version, model
