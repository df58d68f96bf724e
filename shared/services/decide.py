"""decide: one ``chain.snapshot`` → a decision per active tenant → ``decision.proposed``.

For each snapshot event:

1. **Market stage, once** (one system transaction): the stored snapshot is re-read and
   re-analysed exactly as chain_poll analysed it (:func:`~shared.services.chain_poll.analyse_snapshot`);
   the IV history, the spot bars and today's spots come from the stored snapshots; the
   production models (vol HAR and direction, from the registry's pointer, SHA-256
   verified, cached, new pointers noticed without a restart) forecast from the bars; the
   runs older than the scoring horizon are scored against this spot and fold into the
   symbol's learning state (row-locked); then :meth:`DecisionEngine.market` runs layers
   1-2 and builds every admissible structure at one lot. The run is stored with the state
   it used, so a redelivery (after a partial failure) decides the remaining tenants the
   same way.
2. **Tenant stage, per active tenant** (one tenant transaction each, row-level security):
   a tenant that already has a decision for this snapshot is skipped (idempotent on the
   snapshot); otherwise its expired paper positions are settled at the expiry-day spot,
   settled outcomes of decide's proposals are credited to its bandit, the open book is
   marked on this snapshot, and :meth:`DecisionEngine.for_tenant` proposes or records a
   no-trade with its reason. The decision row (the outbox) and an audit row commit together.
3. **Publish**: every unpublished proposal of this snapshot is published as
   ``decision.proposed`` and marked published (a publish failure is retried; the retry finds
   the decisions and only publishes).

A tenant whose settings are invalid gets a recorded no-trade naming the setting; it never
stops the other tenants. A transient failure of one tenant is retried with the event after
the others are done.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.adapters.bus import Bus
from shared.adapters.db import Database, Session
from shared.adapters.decide_state import (
    SnapshotPending,
    TenantView,
    credit_settled,
    decision_for,
    insert_decision,
    insert_market_run,
    jsonb_value,
    load_chain,
    load_iv_history,
    load_signal_state,
    load_spot_history,
    mark_published,
    mark_scored,
    market_run,
    proposal_of,
    save_bandit,
    save_signal_state,
    settle_expired,
    settlement_spot,
    tenant_view,
    unscored_runs,
)
from shared.adapters.risk_state import TenantSettingsInvalid, load_portfolio, tenant_from_row
from shared.contracts import ChainSnapshotV1, DecisionProposedV1, Structure
from shared.domain.calendar import MarketCalendar, ist_day_start
from shared.domain.decide.engine import (
    DecisionEngine,
    MarketDecision,
    NoTrade,
    TenantDecision,
    TenantInputs,
    market_view_of,
)
from shared.domain.decide.forecasts import Forecast, SpotBars
from shared.domain.decide.learning import SignalState, score_runs
from shared.domain.decide.sizing import RiskAppetite
from shared.domain.decide.structures import NoUsableExpiry, choose_expiry
from shared.domain.risk.inputs import MarketView, Portfolio
from shared.errors import PermanentError, TransientError
from shared.runtime import EventContext, HttpCall, Outcome, Runtime

logger = logging.getLogger(__name__)
IST = ZoneInfo("Asia/Kolkata")

ACTOR = "decide"
VOL_MODELS = {1: "vol_har_1d", 5: "vol_har_5d", 22: "vol_har_22d"}
DIRECTION_MODEL = "direction_lgbm_5d"
WING_MODEL = "wing_select"
DEFAULT_APPETITE = RiskAppetite(target_annual_vol=0.25, confidence_power=0.5)
"""A tenant without ``settings.decide.appetite``: a 25 % annual vol target for the whole
book, confidence applied as its square root (doubt shrinks the size, but a moderate view
still trades a lot of a defined-risk structure on the default capital)."""


# --------------------------------------------------------------------------- models


class ModelSource:
    """The production models decide serves, from the registry (see
    :class:`shared.adapters.registry.ProductionModels`); never imports mlflow or lightgbm."""

    def __init__(self, production_of: Callable[[str], tuple[int, Any] | None]) -> None:
        self._get = production_of

    @classmethod
    def from_registry(cls, registry: Any) -> ModelSource:
        from shared.adapters.registry import NoProductionModel, ProductionModels
        from shared.domain.models.direction import DirectionPredictor
        from shared.domain.models.trainers import HarVolTrainer

        def wing_fit(data: bytes) -> Any:  # xgboost is imported only if a wing model serves
            from shared.domain.models.wings import WingFit

            return WingFit.from_bytes(data)

        loaders = {DIRECTION_MODEL: ProductionModels(registry, DirectionPredictor.from_bytes),
                   WING_MODEL: ProductionModels(registry, wing_fit)}
        har = ProductionModels(registry, HarVolTrainer.load)
        for name in VOL_MODELS.values():
            loaders[name] = har

        def get(model_type: str) -> tuple[int, Any] | None:
            try:
                return loaders[model_type].get(model_type)
            except NoProductionModel:
                return None

        return cls(get)

    @classmethod
    def none(cls) -> ModelSource:
        """No models (tests of the pure path, a registry that is not there yet)."""
        return cls(lambda m: None)

    def get(self, model_type: str) -> tuple[int, Any] | None:
        return self._get(model_type)


@dataclass(frozen=True, slots=True)
class Forecasts:
    vol: float | None
    p_up: float | None
    models: dict[str, int]
    reasons: dict[str, str]


def forecasts(models: ModelSource, bars: SpotBars, t_years: float | None) -> Forecasts:
    """The vol forecast (the HAR horizon nearest the option's, in trading days) and P(up)."""
    from shared.domain.decide.forecasts import direction_probability, har_vol_forecast

    used: dict[str, int] = {}
    reasons: dict[str, str] = {}
    days = 5.0 if t_years is None or not math.isfinite(t_years) else t_years * 252.0
    horizon = min(VOL_MODELS, key=lambda h: abs(math.log(max(days, 0.5) / h)))
    name = VOL_MODELS[horizon]
    vol: float | None = None
    got = models.get(name)
    if got is None:
        reasons["vol_forecast"] = f"no production {name} model"
    else:
        fc: Forecast = har_vol_forecast(got[1], bars)
        if fc.value is None:
            reasons["vol_forecast"] = f"{name} v{got[0]}: {fc.reason}"
        else:
            vol, used[name] = fc.value, got[0]
    p_up: float | None = None
    got = models.get(DIRECTION_MODEL)
    if got is None:
        reasons["p_up"] = f"no production {DIRECTION_MODEL} model"
    else:
        fc = direction_probability(got[1], bars)
        if fc.value is None:
            reasons["p_up"] = f"{DIRECTION_MODEL} v{got[0]}: {fc.reason}"
        else:
            p_up, used[DIRECTION_MODEL] = fc.value, got[0]
    return Forecasts(vol, p_up, used, reasons)


def appetite_from_settings(settings: dict[str, Any]) -> RiskAppetite:
    """``settings.decide.appetite`` as a :class:`RiskAppetite` (:data:`DEFAULT_APPETITE`
    when absent)."""
    section = (settings.get("decide") or {}).get("appetite")
    if section is None:
        return DEFAULT_APPETITE
    if not isinstance(section, dict):
        raise TenantSettingsInvalid("tenant settings: decide.appetite must be an object")
    try:
        return RiskAppetite(**section)
    except (TypeError, ValueError) as exc:
        raise TenantSettingsInvalid(f"tenant settings: decide.appetite: {exc}") from None


# --------------------------------------------------------------------------- service


@dataclass(frozen=True, slots=True)
class MarketStage:
    """The market stage's result: the decision and the castle's view of the snapshot (the
    tenants' open books are marked on it)."""

    decision: MarketDecision
    view: MarketView


@dataclass(frozen=True, slots=True)
class TenantResult:
    """One tenant's outcome; ``proposal`` is set when it is to be published."""

    tenant_id: uuid.UUID
    status: str  # proposed | no_trade | duplicate | error
    detail: str = ""
    decision_id: uuid.UUID | None = None
    proposal: DecisionProposedV1 | None = None


class DecideService:
    """One snapshot → decisions for every active tenant (see the module docstring)."""

    def __init__(self, *, db: Database, bus: Bus, calendar: MarketCalendar,
                 rate_on: Callable[[date], float], models: ModelSource,
                 engine: DecisionEngine | None = None,
                 score_horizon: timedelta = timedelta(days=1), workers: int = 4) -> None:
        self._db = db
        self._bus = bus
        self._calendar = calendar
        self._rate_on = rate_on
        self._models = models
        self._engine = engine or DecisionEngine()
        self._horizon = score_horizon
        self._workers = workers

    @classmethod
    def from_runtime(cls, rt: Runtime) -> DecideService:
        from shared.adapters.blobs import UrlBlobReader
        from shared.adapters.registry import ModelRegistry
        from shared.rules import default_calendar, risk_free_rate

        settings = rt.settings
        registry = ModelRegistry(rt.database,
                                 UrlBlobReader(emulator_host=settings.storage_emulator_host),
                                 settings.models_bucket)
        return cls(db=rt.database, bus=rt.bus, calendar=default_calendar(),
                   rate_on=risk_free_rate, models=ModelSource.from_registry(registry))

    # ----------------------------------------------------------------------- event
    def __call__(self, message: ChainSnapshotV1, ctx: EventContext) -> Outcome:
        stage = self.market(message, ctx.event_id)
        market = stage.decision
        results = self.decide_tenants(stage, ctx.event_id, self._db.active_tenants())
        published = self.publish(results)
        counts = {k: sum(r.status == k for r in results)
                  for k in ("proposed", "no_trade", "duplicate", "error")}
        transient = [r for r in results if r.status == "error"]
        if transient:
            raise TransientError(f"{len(transient)} tenant(s) failed transiently, first: "
                                 f"{transient[0].detail}")
        logger.info("snapshot %s: %s", market.snapshot_id, counts)
        return Outcome.done(snapshot_id=str(market.snapshot_id), tenants=len(results),
                            published=published,
                            regime=market.regime.label if market.regime else None,
                            market_no_trade=market.no_trade.reason if market.no_trade else None,
                            **counts)

    # ----------------------------------------------------------------------- market
    def market(self, message: ChainSnapshotV1, event_id: str) -> MarketStage:
        """The market stage (see the module docstring).

        An event can overtake chain_poll's record of its own publication (the outbox marks
        ``published_at`` just after the publish): a snapshot still pending is re-read for
        up to :attr:`publish_wait_s` before the event is handed back for a retry.
        """
        from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

        for attempt in Retrying(stop=stop_after_delay(self.publish_wait_s), wait=wait_fixed(0.01),
                                retry=retry_if_exception_type(SnapshotPending), reraise=True):
            with attempt:
                return self._market(message, event_id)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    publish_wait_s = 2.0

    def _market(self, message: ChainSnapshotV1, event_id: str) -> MarketStage:
        from shared.services.chain_poll import analyse_snapshot

        with self._db.system() as s:
            chain = load_chain(s, message.snapshot_id)
            if chain.symbol != message.symbol:
                raise PermanentError(f"snapshot {message.snapshot_id} is {chain.symbol}, "
                                     f"the event says {message.symbol}",
                                     reason_code="snapshot_mismatch")
            done = analyse_snapshot(chain, self._calendar, self._rate_on)
            run = market_run(s, message.snapshot_id)
            if run is not None:
                state = SignalState.from_json(run["state_used"])
                scored_ids: list[uuid.UUID] = []
            else:
                state = load_signal_state(s, chain.symbol)
                due = unscored_runs(s, chain.symbol, before=chain.asof - self._horizon)
                state, _ = score_runs(state, [r for _, r in due], chain.spot, chain.asof)
                scored_ids = [sid for sid, _ in due]
            iv_history = load_iv_history(s, chain.symbol, chain.asof)
            bars, intraday = load_spot_history(s, chain.symbol, chain.asof)
            # the expiry the engine will trade (the same choice): the models' horizon
            try:
                near = choose_expiry(done.analytics, min_days=self._engine.config.min_days,
                                     chain=chain)
            except NoUsableExpiry:
                near = None
            # the models see completed sessions only; today's spots feed the intraday signals
            today = np.datetime64(chain.asof.astimezone(IST).date(), "D")
            fc = forecasts(self._models, bars.before(today),
                           near.t if near is not None else None)
            wing, wing_model, wing_notes = self._wing(chain, done, bars)
            market = self._engine.market(
                chain, done.analytics, snapshot_id=message.snapshot_id, rate=done.rate,
                lot_sizes=done.lot_sizes, state=state, iv_history=iv_history,
                closes_intraday=intraday, closes_daily=[float(c) for c in bars.close],
                vol_forecast=fc.vol, p_up=fc.p_up, news=None, models=fc.models,
                reasons=fc.reasons, wing=wing, wing_model=wing_model)
            if run is None:
                # what each production model forecast here: retrain scores them against
                # what happened (the live IC decay of shared.domain.models.live_ic)
                served = {name: {"version": version,
                                 "value": fc.p_up if name == DIRECTION_MODEL else fc.vol}
                          for name, version in fc.models.items()}
                summary = {**market.summary(), "forecasts": served, "wings": wing_notes.get(
                    "note", "no production wing model: the documented rule set the wings")}
                inserted = insert_market_run(
                    s, snapshot_id=message.snapshot_id, event_id=event_id,
                    symbol=chain.symbol, asof=chain.asof, spot=chain.spot,
                    atm_iv=near.atm_iv if near is not None else None,
                    regime=market.regime.label if market.regime else None,
                    readings=[{"name": r.name, "axis": r.axis.value, "score": r.score,
                               "confidence": r.confidence, "available": r.available,
                               "reason": r.reason} for r in market.readings],
                    summary=summary, state_used=state.to_json())
                if inserted:
                    mark_scored(s, scored_ids, chain.asof)
                    save_signal_state(s, chain.symbol, state, chain.asof)
        return MarketStage(market, market_view_of(
            chain, done.analytics, rate=done.rate, lot_sizes=done.lot_sizes,
            snapshot_id=message.snapshot_id))

    def _wing(self, chain: Any, done: Any, bars: SpotBars) -> tuple[
            Callable[[Structure, Any], float | None] | None, tuple[str, int] | None,
            dict[str, str]]:
        """The iron condor's wing from the production wing model, when there is one."""
        from shared.domain.decide.forecasts import wing_width

        got = self._models.get(WING_MODEL)
        notes: dict[str, str] = {}
        if got is None:
            return None, None, notes
        version, fit = got
        today = np.datetime64(chain.asof.astimezone(IST).date(), "D")
        closes = bars.close[bars.dates < today]
        previous = float(closes[-1]) if closes.size else None
        cache: dict[date, float | None] = {}

        def wing(arm: Structure, ea: Any) -> float | None:
            if arm != Structure.IRON_CONDOR or ea.expiry not in done.lot_sizes:
                return None
            if ea.expiry not in cache:
                out = wing_width(fit, chain, expiry=ea.expiry, t_years=ea.t,
                                 lot_size=done.lot_sizes[ea.expiry], rate=done.rate,
                                 previous_close=previous)
                cache[ea.expiry] = out.value
                notes["note"] = (f"{WING_MODEL} v{version} set the iron condor's wings "
                                 f"({out.value:g} points)" if out.value is not None else
                                 f"{WING_MODEL} v{version} had no candidate ({out.reason}): "
                                 "the documented rule set the wings")
            return cache[ea.expiry]

        return wing, (WING_MODEL, version), notes

    # ----------------------------------------------------------------------- tenants
    def decide_tenants(self, stage: MarketStage, event_id: str,
                       tenants: list[uuid.UUID]) -> list[TenantResult]:
        """Every tenant's decision, ``workers`` tenants at a time (each in its own
        transaction on its own pooled connection: while one waits on Postgres another
        computes). A tenant that fails, for any reason, is recorded as ``error`` and the
        others go on; the caller publishes theirs and then asks for a retry."""

        def one(tenant_id: uuid.UUID) -> TenantResult:
            try:
                return self.decide_tenant(stage, event_id, tenant_id)
            except TransientError as exc:
                logger.warning("tenant %s: transient failure, will retry: %s", tenant_id,
                               exc.reason)
                return TenantResult(tenant_id, "error", exc.reason)
            except Exception as exc:  # noqa: BLE001 - one tenant never stops the others
                logger.exception("tenant %s: decision failed", tenant_id)
                return TenantResult(tenant_id, "error", f"{type(exc).__name__}: {exc}")

        if self._workers <= 1 or len(tenants) <= 1:
            return [one(t) for t in tenants]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self._workers,
                                thread_name_prefix="decide-tenant") as pool:
            return list(pool.map(one, tenants))

    def decide_tenant(self, stage: MarketStage, event_id: str,
                      tenant_id: uuid.UUID) -> TenantResult:
        """One tenant's decision, in one tenant transaction (idempotent on the snapshot).
        A proposal stored but not yet published (a redelivery after a failed publish) is
        returned for publishing again."""
        market = stage.decision
        now = market.asof
        with self._db.tenant(tenant_id) as s:
            view = tenant_view(s, market.snapshot_id, ist_day_start(now).date())
            if view.tenant is None:
                return TenantResult(tenant_id, "no_trade", "tenant not provisioned")
            if view.existing is not None:
                row = view.existing
                pending = row["outcome"] == "proposed" and row["published_at"] is None
                return TenantResult(
                    tenant_id, "duplicate",
                    decision_id=uuid.UUID(str(row["decision_id"])) if pending else None,
                    proposal=proposal_of(row) if pending else None)
            try:
                decision = self._decide(s, stage, view, now)
            except TenantSettingsInvalid as exc:
                decision = TenantDecision(
                    tenant_id, None, NoTrade(exc.reason_code, exc.reason),
                    {**market.explanation,
                     "no_trade": {"reason_code": exc.reason_code, "reason": exc.reason}})
            if decision is None:
                return TenantResult(tenant_id, "no_trade", "inactive tenant")
            decision_id = insert_decision(
                s, decision, snapshot_id=market.snapshot_id, event_id=event_id,
                symbol=market.symbol, regime=market.regime.label if market.regime else None,
                now=now)
        if decision_id is None:  # a concurrent delivery decided it first
            return TenantResult(tenant_id, "duplicate")
        if decision.proposal is not None:
            return TenantResult(tenant_id, "proposed", decision.proposal.structure.value,
                                decision_id=decision_id, proposal=decision.proposal)
        assert decision.no_trade is not None
        return TenantResult(tenant_id, "no_trade", decision.no_trade.reason_code)

    def _decide(self, s: Session, stage: MarketStage, view: TenantView,
                now: datetime) -> TenantDecision | None:
        tenant = tenant_from_row(view.tenant or {})
        if not tenant.active:
            return None
        appetite = appetite_from_settings(tenant.settings)
        if view.expired:
            settle_expired(s, now, lambda sym, day: settlement_spot(s, sym, day))
        bandit = view.bandit
        if view.uncredited or view.expired:
            bandit, credited = credit_settled(s, bandit, now)
            if credited:
                save_bandit(s, bandit, now)
        market_view = stage.view
        # a tenant without any paper position has an empty book at its capital: no read
        portfolio = load_portfolio(
            s, tenant.policy, now,
            lambda sym: market_view if sym == market_view.symbol else None) \
            if view.has_book else Portfolio(equity=tenant.policy.capital)
        return self._engine.for_tenant(stage.decision, TenantInputs(
            tenant_id=tenant.tenant_id, policy=tenant.policy, appetite=appetite,
            portfolio=portfolio, bandit=bandit))

    # ----------------------------------------------------------------------- publish
    def publish(self, results: list[TenantResult]) -> int:
        """Publish every proposal these results carry at once, then stamp them published
        in one statement. A publish failure raises (transient): the stored, unstamped
        proposals go out again on the retry."""
        pending = [r for r in results if r.proposal is not None and r.decision_id is not None]
        if not pending:
            return 0
        self._bus.publish_many([r.proposal for r in pending])  # type: ignore[misc]
        with self._db.system() as s:
            return mark_published(s, [r.decision_id for r in pending])  # type: ignore[misc]

    def publish_pending(self, snapshot_id: uuid.UUID, tenants: list[uuid.UUID]) -> int:
        """Publish the unpublished proposals of ``snapshot_id`` for ``tenants`` (the API's
        path, and an operator's): read in each tenant's session, then :meth:`publish`."""
        results = []
        for tenant_id in tenants:
            with self._db.tenant(tenant_id) as s:
                row = decision_for(s, snapshot_id)
            if row and row["outcome"] == "proposed" and row["published_at"] is None:
                results.append(TenantResult(tenant_id, "duplicate",
                                            decision_id=row["decision_id"],
                                            proposal=proposal_of(row)))
        return self.publish(results)


# --------------------------------------------------------------------------- API


class CurrentDecisionRequest(BaseModel):
    """``POST /decision``: the tenant's decision on the newest snapshot of ``symbol``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: uuid.UUID
    symbol: str = Field("NIFTY", min_length=1, max_length=32, pattern=r"^[A-Z][A-Z0-9&-]*$")


class NoSnapshot(PermanentError):
    reason_code = "no_snapshot"
    http_status = 404


class TenantNotDecided(PermanentError):
    reason_code = "tenant_not_decided"
    http_status = 409


class CurrentDecisionService:
    """The tenant's current decision: its decision on the newest published snapshot of the
    symbol, with risk_check's verdict when there is one. A tenant that has none for that
    snapshot yet (provisioned since, or the event still queued) is decided on demand, by
    the same path as the event (stored, audited, published to risk_check)."""

    def __init__(self, *, db: Database, decide: DecideService) -> None:
        self._db = db
        self._decide = decide

    @classmethod
    def from_runtime(cls, rt: Runtime) -> CurrentDecisionService:
        return cls(db=rt.database, decide=DecideService.from_runtime(rt))

    def __call__(self, cmd: CurrentDecisionRequest, call: HttpCall) -> dict[str, Any]:
        from shared.adapters.principals import load_access

        load_access(self._db, call.caller).require_trader(cmd.tenant_id)
        with self._db.system() as s:
            rows = s.execute(
                "SELECT snapshot_id, symbol, asof, spot, source, expiries, legs, raw_blob "
                "FROM chain_snapshots WHERE symbol = :s AND published_at IS NOT NULL "
                "AND NOT bad_chain ORDER BY asof DESC LIMIT 1", s=cmd.symbol).dicts()
        if not rows:
            raise NoSnapshot(f"no published snapshot of {cmd.symbol} yet")
        snap = rows[0]
        with self._db.tenant(cmd.tenant_id) as s:
            row = decision_for(s, snap["snapshot_id"])
        on_demand = row is None
        if on_demand:
            try:
                message = ChainSnapshotV1(
                    snapshot_id=snap["snapshot_id"], symbol=snap["symbol"], asof=snap["asof"],
                    spot=snap["spot"], source=snap["source"],
                    expiries=tuple(snap["expiries"]), legs=snap["legs"],
                    raw_blob=snap["raw_blob"])
            except ValidationError as exc:  # pragma: no cover - rows were validated on write
                raise PermanentError(f"stored snapshot unreadable: {exc}") from None
            event_id = f"api:decision:{snap['snapshot_id']}"
            stage = self._decide.market(message, event_id)
            result = self._decide.decide_tenant(stage, event_id, cmd.tenant_id)
            self._decide.publish([result])
            with self._db.tenant(cmd.tenant_id) as s:
                row = decision_for(s, snap["snapshot_id"])
            if row is None:  # an inactive or unprovisioned tenant: nothing was decided
                raise TenantNotDecided(f"tenant {cmd.tenant_id} was not decided: "
                                       f"{result.detail or result.status}")
        with self._db.tenant(cmd.tenant_id) as s:
            verdict = s.execute(
                "SELECT verdict_id, approved, blocked_by, reason_code, reason, size_multiplier, "
                "net_ev, total_costs, dry_run, decided_at FROM risk_verdicts "
                "WHERE proposal_id = :p ORDER BY decided_at DESC LIMIT 1",
                p=row["proposal_id"]).dicts() if row["proposal_id"] else []
        return {
            "tenant_id": str(cmd.tenant_id), "symbol": cmd.symbol,
            "snapshot": {"snapshot_id": str(snap["snapshot_id"]),
                         "asof": snap["asof"].isoformat(), "spot": snap["spot"]},
            "decided_on_demand": on_demand,
            "decision_id": str(row["decision_id"]), "outcome": row["outcome"],
            "structure": row["structure"], "lots": row["lots"],
            "reason_code": row["reason_code"], "reason": row["reason"],
            "proposal": jsonb_value(row["proposal"]),
            "explanation": jsonb_value(row["explanation"]),
            "decided_at": row["decided_at"].isoformat(),
            "published": row["published_at"] is not None,
            "verdict": _jsonable(verdict[0]) if verdict else None,
        }


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, uuid.UUID) else v.isoformat()
                if isinstance(v, datetime) else v) for k, v in row.items()}
