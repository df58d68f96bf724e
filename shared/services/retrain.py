"""retrain: train, judge, and promote or reject; publish what happened.

One model (a model type, global or for a tenant) is retrained like this
(:meth:`RetrainService.retrain`):

1. take the model's **training lock** (a session-level advisory lock); if another retrain
   holds it, record a ``locked_out`` attempt and stop: production is untouched;
2. load the **history** (daily bars with a data version) and let the trainer validate it
   and run the **causality audit** of its features;
3. **train**: walk-forward out-of-sample metrics, the artifact, the feature schema;
4. **stage** the version (artifact to GCS with its SHA-256, lineage to Postgres);
5. **judge** it (:func:`shared.domain.registry.judge`): its contract, the schema of the
   running version, the artifact as stored (downloaded again and hashed), and the paired
   comparison with production on the same held-out slice;
6. **promote** (one SERIALIZABLE transaction flips the pointer) and publish
   ``model.promoted``, or **reject** and publish ``model.rejected``.

Bad training data, a failed audit, a training error: the attempt is recorded in
``training_attempts`` with the error, partial metrics and data version, ``retrain.failed``
is published, and production stays as it was.

Every training is tracked in MLflow when ``QS_MLFLOW_TRACKING_URI`` is set (params, the
data version, metrics, the artifact; the run id goes into the version's lineage). Tracking
is best effort: an MLflow outage is logged and the retrain goes on, since the registry,
not MLflow, decides what serves.

Scheduled runs retrain every model of the catalogue (or those the payload names);
``POST /train`` retrains one model and ``POST /rollback`` restores the previous production
version, both for operators (platform operators for global models).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.bus import Bus
from shared.adapters.db import Database
from shared.adapters.history_store import HistoryStore
from shared.adapters.principals import load_access
from shared.adapters.registry import Lineage, ModelRegistry
from shared.adapters.tracking import NullTracker, TrackedRun, Tracker
from shared.contracts import ModelPromotedV1, ModelRejectedV1, RetrainFailedV1
from shared.domain.models.trainers import (
    DirectionTrainer,
    EventImpactTrainer,
    HarVolTrainer,
    Trainer,
    WingTrainer,
)
from shared.domain.registry import NIGHTLY_CADENCE, Candidate, judge
from shared.errors import PermanentError, TransientError
from shared.runtime import HttpCall, Outcome, Runtime, ScheduledRun

logger = logging.getLogger(__name__)

__all__ = ["RetrainCommand", "RetrainResult", "RetrainService", "RollbackCommand",
           "TrainCommand", "default_trainers"]


def default_trainers() -> dict[str, Trainer]:
    """The global models the nightly retrain maintains, by model type."""
    from shared.costs import default_cost_schedule
    from shared.rules import scheduled_events

    trainers: list[Trainer] = [*(HarVolTrainer(horizon=h) for h in (1, 5, 22)),
                               DirectionTrainer(horizon=5),
                               EventImpactTrainer(events=scheduled_events()),
                               WingTrainer(sessions=simulated_sessions(),
                                           schedule=default_cost_schedule())]
    return {t.model_type: t for t in trainers}


def simulated_sessions(n: int = 600, seed: int = 1234) -> Callable[[], tuple[Any, str]]:
    """The wing model's sessions: ``n`` seeded simulated sessions (NIFTY and MIDCPNIFTY,
    entries on the expiry day and the one before), built once per process. Recorded
    sessions join when chain_poll has stored settled expiries (issue #10's replay)."""

    @lru_cache(maxsize=1)
    def build() -> tuple[Any, str]:
        import numpy as np

        from shared.adapters.providers import parse_payload
        from shared.adapters.providers.simulator import MarketSimulator
        from shared.domain.models.wings import sample_session_specs, simulate_sessions
        from shared.rules import default_calendar

        calendar = default_calendar()
        specs = sample_session_specs(np.random.default_rng(seed), n, calendar=calendar)
        sessions = tuple(simulate_sessions(specs, calendar=calendar, simulator=MarketSimulator,
                                           parse=parse_payload))
        return sessions, f"simulated:seed={seed}:n={n}:code={code_commit()}"

    return build


@lru_cache(maxsize=1)
def code_commit() -> str:
    """The deployed code's commit (``QS_CODE_COMMIT`` is set at deploy time; locally git)."""
    import os

    if commit := os.environ.get("QS_CODE_COMMIT"):
        return commit
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parents[2])
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class UnknownModel(PermanentError):
    reason_code = "unknown_model"
    http_status = 404


class RetrainCommand(BaseModel):
    """The scheduler's payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: Literal["global"] = "global"
    models: tuple[str, ...] | None = Field(None, description="default: the whole catalogue")
    symbol: str = Field("NIFTY", min_length=1, max_length=32)


class TrainCommand(BaseModel):
    """``POST /train``: retrain one model now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_type: str = Field(min_length=1, max_length=64)
    tenant_id: UUID | None = None
    symbol: str = Field("NIFTY", min_length=1, max_length=32)


class RollbackCommand(BaseModel):
    """``POST /rollback``: restore the previous production version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_type: str = Field(min_length=1, max_length=64)
    tenant_id: UUID | None = None
    reason: str = Field(min_length=3, max_length=500)


@dataclass(frozen=True, slots=True)
class RetrainResult:
    """What one model's retrain did."""

    model_type: str
    status: Literal["promoted", "rejected", "failed", "locked_out"]
    version: int | None
    reason: str
    metrics: Mapping[str, float]
    health: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"model_type": self.model_type, "status": self.status, "version": self.version,
                "reason": self.reason,
                "metrics": {k: round(v, 6) for k, v in self.metrics.items()},
                "health": None if self.health is None else dict(self.health)}


class RetrainService:
    """See the module docstring."""

    def __init__(self, *, db: Database, registry: ModelRegistry, bus: Bus,
                 history: HistoryStore, trainers: Mapping[str, Trainer] | None = None,
                 tracker: Tracker | None = None) -> None:
        self._db = db
        self._registry = registry
        self._bus = bus
        self._history = history
        self._trainers = dict(trainers or default_trainers())
        self._tracker = tracker or NullTracker()
        self._drift_cache: dict[tuple[str, int], Any] = {}

    @classmethod
    def from_runtime(cls, rt: Runtime) -> RetrainService:
        from shared.adapters.blobs import GcsBlobStore
        from shared.adapters.history_store import history_store
        from shared.adapters.tracking import tracker_from_settings

        settings = rt.settings
        blobs = GcsBlobStore(settings.project_id,
                             emulator=settings.storage_emulator_host is not None)
        uri = settings.mlflow_tracking_uri
        tracker = tracker_from_settings(
            uri.get_secret_value() if uri else None,
            settings.mlflow_artifact_root or f"gs://{settings.models_bucket}/mlflow")
        return cls(db=rt.database, registry=ModelRegistry(rt.database, blobs,
                                                          settings.models_bucket),
                   bus=rt.bus, history=history_store(settings.history_uri, blobs),
                   tracker=tracker)

    # ---------------------------------------------------------------- entry points
    def __call__(self, run: ScheduledRun, now: datetime) -> Outcome:
        try:
            cmd = RetrainCommand.model_validate(run.payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise PermanentError(f"retrain payload: {'.'.join(map(str, first['loc']))}: "
                                 f"{first['msg']}", reason_code="bad_payload") from None
        names = cmd.models or tuple(self._trainers)
        unknown = [m for m in names if m not in self._trainers]
        if unknown:
            raise UnknownModel(f"unknown model types {unknown}; known: {sorted(self._trainers)}")
        results = [self.retrain(m, None, run_id=run.run_id, symbol=cmd.symbol, now=now)
                   for m in names]
        return Outcome.done(results=[r.as_dict() for r in results])

    def train_api(self, cmd: TrainCommand, call: HttpCall) -> dict[str, Any]:
        load_access(self._db, call.caller).require_operator(cmd.tenant_id)
        if cmd.model_type not in self._trainers:
            raise UnknownModel(f"unknown model type {cmd.model_type!r}; known: "
                               f"{sorted(self._trainers)}")
        run_id = f"api:{call.caller}@{call.now.isoformat()}"
        return self.retrain(cmd.model_type, cmd.tenant_id, run_id=run_id, symbol=cmd.symbol,
                            now=call.now).as_dict()

    def rollback_api(self, cmd: RollbackCommand, call: HttpCall) -> dict[str, Any]:
        load_access(self._db, call.caller).require_operator(cmd.tenant_id)
        previous = self._registry.production(cmd.model_type, cmd.tenant_id)
        restored = self._registry.rollback(cmd.model_type, cmd.tenant_id, now=call.now,
                                           reason=f"rolled back by {call.caller}: {cmd.reason}")
        self._bus.publish(ModelPromotedV1(
            model_type=cmd.model_type, model_version=restored.version, tenant_id=cmd.tenant_id,
            metrics=dict(restored.metrics), at=call.now,
            previous_model_version=previous.version if previous else None))
        return {"model_type": cmd.model_type, "restored_version": restored.version,
                "rolled_back_version": previous.version if previous else None}

    # ------------------------------------------------------------------- one model
    def retrain(self, model_type: str, tenant_id: UUID | None, *, run_id: str, symbol: str,
                now: datetime) -> RetrainResult:
        trainer = self._trainers[model_type]
        with self._registry.training_lock(model_type, tenant_id) as mine:
            if not mine:
                reason = f"another retrain of {model_type} holds the training lock"
                self._registry.record_failure(model_type, tenant_id, run_id=run_id,
                                              reason_code="training_locked", error=reason,
                                              started_at=now, status="locked_out")
                logger.info("%s: %s", model_type, reason)
                return RetrainResult(model_type, "locked_out", None, reason, {})
            data_version: str | None = None
            loaded = None
            try:
                loaded = self._history.daily(symbol)
                data_version = loaded.data_version
                result = self._train_and_judge(trainer, tenant_id, loaded, run_id, now)
                return dataclasses.replace(
                    result, health=self._check_health(model_type, tenant_id, loaded, now))
            except TransientError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is recorded, then reported
                code = getattr(exc, "reason_code", type(exc).__name__)
                error = f"{type(exc).__name__}: {exc}"
                self._registry.record_failure(model_type, tenant_id, run_id=run_id,
                                              reason_code=code, error=error, started_at=now,
                                              data_version=data_version)
                self._bus.publish(RetrainFailedV1(model_type=model_type, tenant_id=tenant_id,
                                                  error=error[:2000], data_version=data_version,
                                                  at=now))
                if not isinstance(exc, PermanentError):
                    logger.exception("retrain of %s failed", model_type)
                else:
                    logger.warning("retrain of %s failed: %s", model_type, error)
                # the model in production ages: its health is still checked (staleness)
                health = self._check_health(model_type, tenant_id, loaded, now)
                return RetrainResult(model_type, "failed", None, error, {}, health)

    def _check_health(self, model_type: str, tenant_id: UUID | None, loaded: Any,
                      now: datetime) -> dict[str, Any] | None:
        """Stale (not retrained within 2 x :data:`NIGHTLY_CADENCE`) or drifted (inputs
        unlike the training history's own windows: :func:`calibrated_drift`): flagged on the
        pointer for the model-staleness kill switch. None when nothing is in production."""
        from shared.domain.features import compute_features, default_features
        from shared.domain.models.drift import calibrated_drift, model_health
        from shared.domain.models.trainers import panel_of

        try:
            production = self._registry.production(model_type, tenant_id)
            if production is None:
                return None
            drift = None
            if loaded is not None:
                key = (loaded.data_version, len(loaded.bars))
                if key not in self._drift_cache:
                    matrix = compute_features(panel_of(loaded.bars), default_features())
                    rows = matrix.values[matrix.complete_rows]
                    self._drift_cache[key] = calibrated_drift(rows, matrix.names)
                drift = self._drift_cache[key]
            if tenant_id is None:
                ic, ic_record = live_ic_of(self._db, model_type, production.version, now)
            else:  # decide serves global models only: no served forecast of this one
                ic, ic_record = None, {"note": "decide serves global models only"}
            health = model_health(now=now, last_trained_at=production.promoted_at,
                                  cadence=NIGHTLY_CADENCE, drift=drift, ic=ic)
            record = {"stale": health.stale, "drifted": health.drifted,
                      "decayed": health.decayed, "flagged": health.flagged,
                      "reasons": list(health.reasons),
                      "drifted_features": list(health.drifted_features),
                      "notes": list(health.notes), "version": production.version,
                      "ic": ic_record}
            self._registry.record_health(model_type, tenant_id, flagged=health.flagged,
                                         health=record, now=now)
            if health.flagged:
                logger.warning("%s v%d flagged: %s", model_type, production.version,
                               "; ".join(health.reasons))
            return record
        except (ValueError, ArithmeticError, TransientError) as exc:  # never fails a retrain
            logger.warning("health of %s not checked: %s", model_type, exc)
            return None

    @contextlib.contextmanager
    def _tracked(self, model_type: str, run_id: str, tags: Mapping[str, str]
                 ) -> Iterator[TrackedRun]:
        """An MLflow run, or a null one when tracking is down (logged, never fatal)."""
        with contextlib.ExitStack() as stack:
            try:
                run = stack.enter_context(
                    self._tracker.run(model_type, run_id.replace("/", "_"), tags))
            except (TransientError, PermanentError) as exc:
                logger.warning("tracking unavailable for %s, training untracked: %s",
                               model_type, exc)
                run = stack.enter_context(NullTracker().run(model_type, run_id, tags))
            yield run

    @staticmethod
    def _quietly(what: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except (TransientError, PermanentError) as exc:
            logger.warning("tracking: could not %s: %s", what, exc)

    def _train_and_judge(self, trainer: Trainer, tenant_id: UUID | None, loaded: Any,
                         run_id: str, now: datetime) -> RetrainResult:
        model_type = trainer.model_type
        production = self._registry.production(model_type, tenant_id)
        tags = {"run_id": run_id, "tenant": str(tenant_id or "global"),
                "code_commit": code_commit(), "data_version": loaded.data_version}
        with self._tracked(model_type, run_id, tags) as tracked:
            params = {"data_end": loaded.data_end.isoformat(), "rows": len(loaded.bars),
                      **(dataclasses.asdict(trainer) if dataclasses.is_dataclass(trainer)
                         else {})}
            self._quietly("log params", lambda: tracked.log_params(params))
            trained = trainer.train(loaded.bars)
            self._quietly("log metrics", lambda: tracked.log_metrics(trained.metrics))
            self._quietly("log the artifact",
                          lambda: tracked.log_artifact_bytes("model.bin", trained.artifact))
            result = self._stage_and_judge(trainer, tenant_id, loaded, run_id, now, production,
                                           trained, tracked.run_id)
            self._quietly("tag the run", lambda: tracked.set_tags(
                {"registry_version": str(result.version), "registry_status": result.status}))
        return result

    def _stage_and_judge(self, trainer: Trainer, tenant_id: UUID | None, loaded: Any,
                         run_id: str, now: datetime, production: Any, trained: Any,
                         tracking_run_id: str) -> RetrainResult:
        model_type = trainer.model_type
        staged = self._registry.stage(
            model_type, tenant_id, trained.artifact, trained.feature_schema, trained.metrics,
            Lineage(code_commit=code_commit(),
                    data_version=trained.data_version or loaded.data_version,
                    data_end=loaded.data_end, run_id=run_id,
                    parent_version=production.version if production else None,
                    tracking_run_id=tracking_run_id))
        try:
            stored = self._registry.fetch(staged.artifact_uri, staged.sha256)
            paired = None
            if production is not None:
                paired = trainer.paired(trained, self._registry.fetch(production.artifact_uri,
                                                                      production.sha256),
                                        loaded.bars)
        except Exception as exc:
            # the candidate cannot be judged: it never serves (the error is recorded above)
            self._registry.reject(model_type, tenant_id, staged.version,
                                  judgement=f"not judged: {type(exc).__name__}: {exc}",
                                  paired=None, now=now)
            raise
        verdict = judge(trainer.contract,
                        Candidate(model_type, trained.metrics, trained.feature_schema,
                                  len(stored), hashlib.sha256(stored).hexdigest(),
                                  staged.sha256),
                        production_schema=production.feature_schema if production else None,
                        paired=paired)
        numbers = dict(verdict.numbers)
        if verdict.promote:
            self._registry.promote(model_type, tenant_id, staged.version,
                                   judgement=verdict.explain(), paired=numbers, now=now)
            self._bus.publish(ModelPromotedV1(
                model_type=model_type, model_version=staged.version, tenant_id=tenant_id,
                metrics=dict(trained.metrics), at=now,
                previous_model_version=production.version if production else None))
            status: Literal["promoted", "rejected"] = "promoted"
        else:
            self._registry.reject(model_type, tenant_id, staged.version,
                                  judgement=verdict.explain(), paired=numbers, now=now)
            self._bus.publish(ModelRejectedV1(
                model_type=model_type, model_version=staged.version, tenant_id=tenant_id,
                metrics=dict(trained.metrics), at=now, reason=verdict.explain()[:2000]))
            status = "rejected"
        logger.info("%s v%d %s: %s", model_type, staged.version, status, verdict.explain())
        return RetrainResult(model_type, status, staged.version, verdict.explain(),
                             trained.metrics)


def live_ic_of(db: Database, model_type: str, version: int, now: datetime
               ) -> tuple[Any, dict[str, Any]]:
    """The IC decay of the forecasts decide served from this version, per underlying
    (:mod:`shared.domain.models.live_ic`): the verdict of the first underlying that
    decayed, else of the first one with enough evidence; None (noted) without any."""
    from shared.adapters.decide_state import load_spot_history, served_forecasts
    from shared.domain.models.live_ic import live_ic, model_kind

    kind = model_kind(model_type)
    if kind is None:
        return None, {}
    verdict, record = None, {}
    with db.system() as s:
        served = served_forecasts(s, model_type, version)
        bars = {symbol: load_spot_history(s, symbol, now, sessions=400)[0]
                for symbol in served}
    for symbol, (days, values) in served.items():
        b = bars[symbol]
        out = live_ic(days, values, [d.astype(object) for d in b.dates], b.open, b.high,
                      b.low, b.close, kind=kind[0], horizon=kind[1])
        d = out.decay
        record[symbol] = {"pairs": out.pairs, "reason": out.reason or (d and d.reason),
                          "reference_ic": d.reference_mean if d else None,
                          "recent_ic": d.recent_mean if d else None,
                          "decayed": bool(d and d.decayed)}
        # the first decayed underlying wins; else the first determined one
        if d is not None and d.determined and (
                verdict is None or (d.decayed and not verdict.decayed)):
            verdict = d
    return verdict, record
