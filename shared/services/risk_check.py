"""risk_check: one ``decision.proposed`` → the risk castle → a verdict, then ``signal.*``.

For each proposal, in **one tenant transaction** (:meth:`Database.tenant`, so row-level
security scopes every read and write to the proposal's tenant):

1. read the tenant (policy from ``tenants.settings``, the dry-run lock, the trading mode);
2. claim the event for the tenant (``processed_events``); a redelivery finds the claim;
3. load the market view (the newest published snapshot of the symbol), the paper book and
   the tripped kill switches (:mod:`shared.adapters.risk_state`);
4. evaluate the castle (:class:`~shared.domain.risk.RiskCastle` with the Indian cost engine);
   bad input raises an :class:`~shared.domain.risk.InvalidProposal` (a ``PermanentError``)
   here, before any write, and the transaction rolls back: the runtime records the
   rejection and acks;
5. write the verdict row, an audit row, the kill-switch trips and resets the data called
   for (``kill_switches`` + ``kill_switch_events``), and for an approved signal a paper
   position at the approved size.

After the commit it publishes ``signal.approved`` / ``signal.blocked``, one
``killswitch.tripped`` per new trip and one ``killswitch.reset`` per reset, then marks the
verdict published. The verdict row is
the outbox: if publishing fails the event is retried (503), and the retry, finding its
claim, publishes the stored verdict instead of deciding again. Row locks (``FOR UPDATE SKIP
LOCKED``) keep concurrent deliveries from publishing one verdict twice.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.adapters.bus import Bus
from shared.adapters.db import Database, Session
from shared.adapters.news_store import active_news
from shared.adapters.risk_state import (
    NoMarketData,
    TenantState,
    load_market,
    load_models,
    load_portfolio,
    load_switches,
    load_tenant,
    record_switch_change,
)
from shared.contracts import (
    DecisionProposedV1,
    KillSwitchResetV1,
    KillSwitchTrippedV1,
    Message,
    SignalApprovedV1,
    SignalBlockedV1,
)
from shared.domain.calendar import MarketCalendar, ist_day_start
from shared.domain.risk import CastleVerdict, MarketView, RiskCastle, RiskContext
from shared.domain.risk.castle import sized_lots
from shared.domain.risk.ports import CostModel
from shared.errors import PermanentError
from shared.runtime import EventContext, Outcome, Runtime

logger = logging.getLogger(__name__)

CONSUMER = "risk_check"
ACTOR = "risk_check"


class TenantInactive(PermanentError):
    reason_code = "tenant_inactive"


@dataclass(frozen=True, slots=True)
class Decision:
    """One castle decision, committed: the verdict, its id, and what was written."""

    verdict_id: uuid.UUID
    verdict: CastleVerdict
    context: RiskContext
    trips: tuple[KillSwitchTrippedV1, ...]
    resets: tuple[KillSwitchResetV1, ...]


class RiskDesk:
    """The castle with its state: loads a tenant's inputs, decides, and records the verdict,
    its audit row and the kill-switch trips and resets the data called for, inside the
    caller's tenant transaction. Shared by the event path (:class:`RiskCheckService`) and
    the API (:mod:`shared.services.risk_api`)."""

    def __init__(self, *, calendar: MarketCalendar, rate_on: Callable[[date], float],
                 cost_model_for: Callable[[str], CostModel]) -> None:
        self._calendar = calendar
        self._rate_on = rate_on
        self._cost_model_for = cost_model_for

    @classmethod
    def default(cls) -> RiskDesk:
        """The dated calendar, rate table and cost schedule shipped with the package."""
        from shared.costs import default_cost_schedule
        from shared.domain.risk.engine_costs import EngineCostModel
        from shared.rules import default_calendar, risk_free_rate

        schedule = default_cost_schedule()
        plans = set(schedule.plan_names)

        def cost_model_for(plan: str) -> CostModel:
            return EngineCostModel(schedule, plan=plan if plan in plans else "standard")

        return cls(calendar=default_calendar(), rate_on=risk_free_rate,
                   cost_model_for=cost_model_for)

    @property
    def calendar(self) -> MarketCalendar:
        return self._calendar

    def tenant(self, s: Session) -> TenantState:
        """The session's tenant; an inactive one is refused."""
        tenant = load_tenant(s)
        if not tenant.active:
            raise TenantInactive(f"tenant {tenant.tenant_id} is not active")
        return tenant

    def market(self, s: Session, symbol: str) -> MarketView:
        return load_market(s, symbol, self._calendar, self._rate_on)

    def evaluate(self, s: Session, tenant: TenantState, message: DecisionProposedV1,
                 now: datetime, market: MarketView | None = None
                 ) -> tuple[RiskContext, CastleVerdict]:
        """Load the inputs and run the castle; bad input raises an ``InvalidProposal``
        before anything is written."""
        market = market or self.market(s, message.symbol)
        risk = RiskContext(
            now=now, tenant_id=tenant.tenant_id, proposal=message, market=market,
            policy=tenant.policy,
            # The regime the proposal was made for: the regime model (issue #5) is not
            # registered yet, so decide's label is the only one there is.
            regime=message.regime,
            # What news_ingest stored: classified news above its impact threshold and the
            # scheduled calendar (RBI policy, budgets, FOMC, US CPI, expiry days)
            news=active_news(s, now),
            portfolio=load_portfolio(s, tenant.policy, now, self._markets(s, market),
                                     self._markets(s, None, before=ist_day_start(now))),
            switches=load_switches(s),
            # The models the proposal says it relies on (decide lists them in its
            # explanation): their freshness and health flags from the registry.
            models=load_models(s, declared_models(message)),
            market_open=self._calendar.is_market_open(now),
            dry_run=tenant.in_dry_run(now),
            live_order=tenant.trading_mode == "live",
            dry_run_until=tenant.dry_run_until,
        )
        castle = RiskCastle.default(self._cost_model_for(tenant.plan), force_paper=True)
        return risk, castle.evaluate(risk)

    def _markets(self, s: Session, known: MarketView | None, *, before: datetime | None = None
                 ) -> Callable[[str], MarketView | None]:
        """Markets by symbol, loaded once each (newest, or newest before ``before``)."""
        cache: dict[str, MarketView | None] = {known.symbol: known} if known else {}

        def market_of(symbol: str) -> MarketView | None:
            if symbol not in cache:
                try:
                    cache[symbol] = load_market(s, symbol, self._calendar, self._rate_on,
                                                before=before)
                except NoMarketData:
                    cache[symbol] = None
            return cache[symbol]

        return market_of

    def record(self, s: Session, message: DecisionProposedV1, event_id: str, now: datetime,
               risk: RiskContext, verdict: CastleVerdict, *, origin: str = "proposal",
               actor: str = ACTOR, caller: str | None = None,
               request_hash: str | None = None) -> Decision:
        """Write the verdict (the outbox of its messages), its audit row, the trips and
        resets, and for an approved proposal (not an API check) the paper position."""
        verdict_id = uuid.uuid4()
        signal = verdict.to_signal(verdict_id=verdict_id, proposal=message, decided_at=now)
        trips = tuple(e for e in verdict.trip_events(now)
                      if record_switch_change(s, e, source_event=event_id))
        resets = tuple(e for e in verdict.reset_events(now)
                       if record_switch_change(s, e, source_event=event_id, only_auto=True))
        s.execute(
            "INSERT INTO risk_verdicts (verdict_id, tenant_id, proposal_id, event_id, snapshot_id, "
            "symbol, structure, approved, blocked_by, reason_code, reason, size_multiplier, "
            "net_ev, total_costs, dry_run, verdicts, trips, resets, origin, caller, request_hash, "
            "decided_at, published_at) VALUES (:id, :tenant, :proposal, :event, :snapshot, "
            ":symbol, :structure, :approved, :blocked_by, :code, :reason, :size, :net_ev, "
            ":costs, :dry_run, CAST(:verdicts AS jsonb), CAST(:trips AS jsonb), "
            "CAST(:resets AS jsonb), :origin, :caller, :hash, :at, NULL)",
            id=verdict_id, tenant=message.tenant_id, proposal=message.proposal_id,
            event=event_id, snapshot=risk.market.snapshot_id, symbol=message.symbol,
            structure=message.structure.value, approved=verdict.approved,
            blocked_by=verdict.blocked_by, code=verdict.reason_code, reason=verdict.reason,
            size=verdict.size_multiplier, net_ev=verdict.net_ev, costs=verdict.total_costs,
            dry_run=signal.dry_run,
            verdicts=json.dumps([v.model_dump(mode="json") for v in verdict.verdicts]),
            trips=json.dumps([t.model_dump(mode="json") for t in trips]),
            resets=json.dumps([r.model_dump(mode="json") for r in resets]),
            origin=origin, caller=caller, hash=request_hash, at=signal.decided_at)
        s.audit(actor=actor, action=("approved" if verdict.approved else "blocked")
                + ("" if origin == "proposal" else f" ({origin})"),
                subject=str(message.proposal_id), event_id=event_id,
                details=_audit_details(verdict, verdict_id, risk.market.snapshot_id, trips, resets))
        if verdict.approved and origin == "proposal":
            self._open_paper_position(s, verdict_id, message, risk, verdict, now)
        return Decision(verdict_id, verdict, risk, trips, resets)

    @staticmethod
    def _open_paper_position(s: Session, verdict_id: uuid.UUID, message: DecisionProposedV1,
                             risk: RiskContext, verdict: CastleVerdict, now: datetime) -> None:
        """The approved signal as a paper position at the approved size."""
        m = verdict.size_multiplier
        legs = [{**leg.model_dump(mode="json"), "lots": lots}
                for leg, lots in zip(message.legs, sized_lots(message, m), strict=True)]
        position = risk.position
        s.execute(
            "INSERT INTO paper_positions (position_id, tenant_id, verdict_id, symbol, structure, "
            "strategy, nearest_expiry, legs, lot_size, margin, entry_premium, opened_at) VALUES "
            "(:id, :tenant, :verdict, :symbol, :structure, :strategy, :expiry, "
            "CAST(:legs AS jsonb), :lot_size, :margin, :premium, :at)",
            id=uuid.uuid4(), tenant=message.tenant_id, verdict=verdict_id, symbol=message.symbol,
            structure=message.structure.value, strategy=risk.strategy_key,
            expiry=min(leg.expiry for leg in message.legs), legs=json.dumps(legs),
            lot_size=message.lot_size, margin=position.capital_required * m,
            premium=-position.net_premium * m, at=now)


class RiskCheckService:
    """Decide on one proposal (see the module docstring)."""

    def __init__(self, *, db: Database, bus: Bus, desk: RiskDesk) -> None:
        self._db = db
        self._bus = bus
        self._desk = desk

    @classmethod
    def from_runtime(cls, rt: Runtime) -> RiskCheckService:
        return cls(db=rt.database, bus=rt.bus, desk=RiskDesk.default())

    # ------------------------------------------------------------------------------------
    def __call__(self, message: DecisionProposedV1, ctx: EventContext) -> Outcome:
        now = ctx.received_at
        with self._db.tenant(message.tenant_id) as s:
            tenant = self._desk.tenant(s)
            duplicate = not s.claim_event(CONSUMER, ctx.event_id, topic=ctx.topic,
                                          per_tenant=True)
            if not duplicate:
                risk, verdict = self._desk.evaluate(s, tenant, message, now)
                decision = self._desk.record(s, message, ctx.event_id, now, risk, verdict)
        if duplicate:
            published = self._publish_pending(message, ctx.event_id)
            return Outcome.duplicate(event_id=ctx.event_id, republished=published)
        self._publish_pending(message, ctx.event_id)
        logger.info("proposal %s %s", message.proposal_id, verdict.explain())
        return Outcome.done(verdict_id=str(decision.verdict_id), approved=verdict.approved,
                            blocked_by=verdict.blocked_by, reason_code=verdict.reason_code,
                            reason=verdict.explain(), trips=len(decision.trips),
                            resets=len(decision.resets))

    def _publish_pending(self, message: DecisionProposedV1, event_id: str) -> bool:
        """Publish this event's committed verdict unless published (or being published)."""
        with self._db.tenant(message.tenant_id) as s:
            rows = s.execute(
                "SELECT verdict_id, approved, blocked_by, reason_code, reason, size_multiplier, "
                "net_ev, total_costs, dry_run, verdicts, trips, resets, decided_at "
                "FROM risk_verdicts WHERE proposal_id = :p AND event_id = :e "
                "AND published_at IS NULL FOR UPDATE SKIP LOCKED",
                p=message.proposal_id, e=event_id).dicts()
            if not rows:
                return False
            row = rows[0]
            for out in (_signal_from_row(message, row), *switch_events_from_row(row)):
                self._bus.publish(out)  # a failure rolls back: the retry publishes
            s.execute("UPDATE risk_verdicts SET published_at = now() WHERE verdict_id = :i",
                      i=row["verdict_id"])
        return True


def declared_models(message: DecisionProposedV1) -> tuple[str, ...]:
    """The model types a proposal relies on: ``explanation["models"]``, a list of names
    (anything else declares none)."""
    models = message.explanation.get("models")
    if not isinstance(models, list | tuple):
        return ()
    return tuple(str(m) for m in models if isinstance(m, str) and m)


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _signal_from_row(message: DecisionProposedV1, row: dict[str, Any]
                     ) -> SignalApprovedV1 | SignalBlockedV1:
    common = dict(verdict_id=row["verdict_id"], proposal_id=message.proposal_id,
                  tenant_id=message.tenant_id, dry_run=row["dry_run"],
                  verdicts=_json_value(row["verdicts"]), decided_at=row["decided_at"])
    if row["approved"]:
        return SignalApprovedV1.model_validate({**common, "net_ev": row["net_ev"],
                                                "total_costs": row["total_costs"],
                                                "size_multiplier": row["size_multiplier"]})
    return SignalBlockedV1.model_validate({**common, "blocked_by": row["blocked_by"],
                                           "reason_code": row["reason_code"],
                                           "reason": row["reason"]})


def switch_events_from_row(row: dict[str, Any]) -> list[Message]:
    """The ``killswitch.tripped`` and ``killswitch.reset`` messages a verdict row carries."""
    return [*(KillSwitchTrippedV1.model_validate(t) for t in _json_value(row["trips"]) or []),
            *(KillSwitchResetV1.model_validate(r) for r in _json_value(row["resets"]) or [])]


def _audit_details(verdict: CastleVerdict, verdict_id: uuid.UUID, snapshot_id: uuid.UUID | None,
                   trips: tuple[KillSwitchTrippedV1, ...],
                   resets: tuple[KillSwitchResetV1, ...]) -> dict[str, Any]:
    blocking = next((v for v in verdict.verdicts if v.blocked), None)
    return {
        "verdict_id": str(verdict_id),
        "snapshot_id": str(snapshot_id) if snapshot_id else None,
        "reason_code": verdict.reason_code,
        "reason": verdict.explain(),
        "blocked_by": verdict.blocked_by,
        "numbers": dict(blocking.numbers) if blocking else {
            "size_multiplier": verdict.size_multiplier, "net_ev": verdict.net_ev,
            "total_costs": verdict.total_costs},
        "dry_run": verdict.dry_run,
        "live": verdict.live,
        "trips": [f"{t.switch}:{t.scope}:{t.scope_key or ''}" for t in trips],
        "resets": [f"{r.switch}:{r.scope}:{r.scope_key or ''}" for r in resets],
    }
