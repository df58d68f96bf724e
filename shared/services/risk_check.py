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
5. write the verdict row, an audit row, the kill-switch trips the data called for
   (``kill_switches`` upsert + ``kill_switch_events``), and for an approved signal a paper
   position at the approved size.

After the commit it publishes ``signal.approved`` / ``signal.blocked`` and one
``killswitch.tripped`` per new trip, then marks the verdict published. The verdict row is
the outbox: if publishing fails the event is retried (503), and the retry, finding its
claim, publishes the stored verdict instead of deciding again. Row locks (``FOR UPDATE SKIP
LOCKED``) keep concurrent deliveries from publishing one verdict twice.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from shared.adapters.bus import Bus
from shared.adapters.db import Database, Session
from shared.adapters.risk_state import (
    load_market,
    load_portfolio,
    load_switches,
    load_tenant,
)
from shared.contracts import (
    DecisionProposedV1,
    KillSwitchTrippedV1,
    Message,
    SignalApprovedV1,
    SignalBlockedV1,
)
from shared.domain.calendar import MarketCalendar
from shared.domain.risk import CastleVerdict, NewsState, RiskCastle, RiskContext
from shared.domain.risk.ports import CostModel
from shared.errors import PermanentError
from shared.runtime import EventContext, Outcome, Runtime

logger = logging.getLogger(__name__)

CONSUMER = "risk_check"
ACTOR = "risk_check"


class TenantInactive(PermanentError):
    reason_code = "tenant_inactive"


class RiskCheckService:
    """Decide on one proposal (see the module docstring)."""

    def __init__(self, *, db: Database, bus: Bus, calendar: MarketCalendar,
                 rate_on: Callable[[date], float],
                 cost_model_for: Callable[[str], CostModel]) -> None:
        self._db = db
        self._bus = bus
        self._calendar = calendar
        self._rate_on = rate_on
        self._cost_model_for = cost_model_for

    @classmethod
    def from_runtime(cls, rt: Runtime) -> RiskCheckService:
        from shared.costs import default_cost_schedule
        from shared.domain.risk.engine_costs import EngineCostModel
        from shared.rules import default_calendar, risk_free_rate

        schedule = default_cost_schedule()
        plans = set(schedule.plan_names)

        def cost_model_for(plan: str) -> CostModel:
            return EngineCostModel(schedule, plan=plan if plan in plans else "standard")

        return cls(db=rt.database, bus=rt.bus, calendar=default_calendar(),
                   rate_on=risk_free_rate, cost_model_for=cost_model_for)

    # ------------------------------------------------------------------------------------
    def __call__(self, message: DecisionProposedV1, ctx: EventContext) -> Outcome:
        now = ctx.received_at
        with self._db.tenant(message.tenant_id) as s:
            tenant = load_tenant(s)
            if not tenant.active:
                raise TenantInactive(f"tenant {tenant.tenant_id} is not active")
            if not s.claim_event(CONSUMER, ctx.event_id, topic=ctx.topic, per_tenant=True):
                duplicate = True
            else:
                duplicate = False
                market = load_market(s, message.symbol, self._calendar, self._rate_on)
                risk = RiskContext(
                    now=now, tenant_id=tenant.tenant_id, proposal=message, market=market,
                    policy=tenant.policy,
                    # The regime the proposal was made for: the regime model (issue #5) is
                    # not registered yet, so decide's label is the only one there is.
                    regime=message.regime,
                    # News reaches risk_check with news_ingest (issue #7); until then no
                    # event is known, and the news gate proceeds.
                    news=NewsState(),
                    portfolio=load_portfolio(s, tenant.policy, now),
                    switches=load_switches(s),
                    # No model is registered yet (issue #5): with no model in use the
                    # model-staleness switch has nothing to check and does not block.
                    models=(),
                    market_open=self._calendar.is_market_open(now),
                    dry_run=tenant.in_dry_run(now),
                    live_order=tenant.trading_mode == "live",
                    dry_run_until=tenant.dry_run_until,
                )
                castle = RiskCastle.default(self._cost_model_for(tenant.plan), force_paper=True)
                verdict = castle.evaluate(risk)  # InvalidProposal → rolled back, rejected
                verdict_id = uuid.uuid4()
                signal = verdict.to_signal(verdict_id=verdict_id, proposal=message, decided_at=now)
                trips = self._record_trips(s, verdict, ctx.event_id, now)
                self._insert_verdict(s, verdict_id, message, ctx.event_id, verdict, signal, trips)
                s.audit(actor=ACTOR, action="approved" if verdict.approved else "blocked",
                        subject=str(message.proposal_id), event_id=ctx.event_id,
                        details=_audit_details(verdict, verdict_id, market.snapshot_id))
                if verdict.approved:
                    self._open_paper_position(s, verdict_id, message, risk, verdict, now)
        if duplicate:
            published = self._publish_pending(message, ctx.event_id)
            return Outcome.duplicate(event_id=ctx.event_id, republished=published)
        self._publish_pending(message, ctx.event_id)
        logger.info("proposal %s %s", message.proposal_id, verdict.explain())
        return Outcome.done(verdict_id=str(verdict_id), approved=verdict.approved,
                            blocked_by=verdict.blocked_by, reason_code=verdict.reason_code,
                            reason=verdict.explain(), trips=len(trips))

    # ------------------------------------------------------------------------------------
    @staticmethod
    def _record_trips(s: Session, verdict: CastleVerdict, event_id: str, now: datetime
                      ) -> list[KillSwitchTrippedV1]:
        """Persist the trips the data called for; the ones that changed a row are new."""
        new: list[KillSwitchTrippedV1] = []
        for trip, event in zip(verdict.trips, verdict.trip_events(now), strict=True):
            changed = s.execute(
                "INSERT INTO kill_switches (switch, scope, scope_key, tenant_id, tripped, reason, "
                "actor, changed_at) VALUES (:sw, :scope, :key, :tenant, true, :reason, :actor, :at) "
                "ON CONFLICT (switch, scope, scope_key, tenant_key) DO UPDATE SET tripped = true, "
                "reason = EXCLUDED.reason, actor = EXCLUDED.actor, changed_at = EXCLUDED.changed_at "
                "WHERE NOT kill_switches.tripped RETURNING 1",
                sw=trip.switch, scope=trip.scope, key=trip.scope_key or "", tenant=trip.tenant_id,
                reason=trip.reason[:2000], actor=event.actor, at=now).rows
            if not changed:  # tripped meanwhile by someone else: already announced
                continue
            s.execute(
                "INSERT INTO kill_switch_events (switch, scope, scope_key, tenant_id, tripped, "
                "reason, actor, source_event, occurred_at) VALUES (:sw, :scope, :key, :tenant, "
                "true, :reason, :actor, :src, :at)",
                sw=trip.switch, scope=trip.scope, key=trip.scope_key or "", tenant=trip.tenant_id,
                reason=trip.reason[:2000], actor=event.actor, src=event_id, at=now)
            new.append(event)
        return new

    @staticmethod
    def _insert_verdict(s: Session, verdict_id: uuid.UUID, message: DecisionProposedV1,
                        event_id: str, verdict: CastleVerdict,
                        signal: SignalApprovedV1 | SignalBlockedV1,
                        trips: list[KillSwitchTrippedV1]) -> None:
        s.execute(
            "INSERT INTO risk_verdicts (verdict_id, tenant_id, proposal_id, event_id, snapshot_id, "
            "symbol, structure, approved, blocked_by, reason_code, reason, size_multiplier, "
            "net_ev, total_costs, dry_run, verdicts, trips, decided_at) VALUES (:id, :tenant, "
            ":proposal, :event, :snapshot, :symbol, :structure, :approved, :blocked_by, :code, "
            ":reason, :size, :net_ev, :costs, :dry_run, CAST(:verdicts AS jsonb), "
            "CAST(:trips AS jsonb), :at)",
            id=verdict_id, tenant=message.tenant_id, proposal=message.proposal_id,
            event=event_id, snapshot=message.snapshot_id, symbol=message.symbol,
            structure=message.structure.value, approved=verdict.approved,
            blocked_by=verdict.blocked_by, code=verdict.reason_code, reason=verdict.reason,
            size=verdict.size_multiplier, net_ev=verdict.net_ev, costs=verdict.total_costs,
            dry_run=signal.dry_run,
            verdicts=json.dumps([v.model_dump(mode="json") for v in verdict.verdicts]),
            trips=json.dumps([t.model_dump(mode="json") for t in trips]),
            at=signal.decided_at)

    @staticmethod
    def _open_paper_position(s: Session, verdict_id: uuid.UUID, message: DecisionProposedV1,
                             risk: RiskContext, verdict: CastleVerdict, now: datetime) -> None:
        """The approved signal as a paper position at the approved size."""
        m = verdict.size_multiplier
        legs = [{**leg.model_dump(mode="json"), "lots": math.floor(leg.lots * m + 1e-9)}
                for leg in message.legs]
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

    def _publish_pending(self, message: DecisionProposedV1, event_id: str) -> bool:
        """Publish this event's committed verdict unless published (or being published)."""
        with self._db.tenant(message.tenant_id) as s:
            rows = s.execute(
                "SELECT verdict_id, approved, blocked_by, reason_code, reason, size_multiplier, "
                "net_ev, total_costs, dry_run, verdicts, trips, decided_at FROM risk_verdicts "
                "WHERE proposal_id = :p AND event_id = :e AND published_at IS NULL "
                "FOR UPDATE SKIP LOCKED", p=message.proposal_id, e=event_id).dicts()
            if not rows:
                return False
            row = rows[0]
            for out in (_signal_from_row(message, row), *_trips_from_row(row)):
                self._bus.publish(out)  # a failure rolls back: the retry publishes
            s.execute("UPDATE risk_verdicts SET published_at = now() WHERE verdict_id = :i",
                      i=row["verdict_id"])
        return True


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


def _trips_from_row(row: dict[str, Any]) -> list[Message]:
    return [KillSwitchTrippedV1.model_validate(t) for t in _json_value(row["trips"]) or []]


def _audit_details(verdict: CastleVerdict, verdict_id: uuid.UUID,
                   snapshot_id: uuid.UUID | None) -> dict[str, Any]:
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
        "trips": [f"{t.switch}:{t.scope}:{t.scope_key or ''}" for t in verdict.trips],
    }
