"""risk_check's HTTP API: risk check as a service, and the operators' kill switches.

``POST /check`` (:class:`TradeCheckService`)
    A tenant submits its own trade idea (legs with lots or quantities) and gets back the
    verdict the castle gives a decide proposal: the same twelve switches and seven walls,
    on the newest published snapshot, against the tenant's policy and paper book. The
    verdict is recorded (``risk_verdicts`` with origin ``api``, and an audit row), the
    kill-switch trips and resets its data calls for are persisted and published, but it
    opens no paper position and publishes no ``signal.*``: the answer goes to the caller.
    ``request_id`` makes the call idempotent: a repeat answers the recorded verdict.

``POST /killswitch`` (:class:`KillSwitchService`)
    An operator trips or resets a kill switch. The change, the ``kill_switch_events`` row,
    an audit row (for a tenant's switch) and the ``killswitch.tripped`` / ``.reset`` message
    happen together: the message is published inside the transaction, so a failed publish
    changes nothing (503, try again) and no switch changes unannounced. Repeating a call
    changes nothing and publishes nothing (``changed: false``).

Both authorise the verified caller by its grants (:mod:`shared.domain.access`): a trader or
operator of the tenant for ``/check``, an operator of the tenant (or a platform operator for
a global row) for ``/killswitch``. The dry-run lock is the database's: no call changes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.adapters.bus import Bus
from shared.adapters.db import Database
from shared.adapters.principals import load_access
from shared.adapters.risk_state import load_tenant, record_switch_change
from shared.contracts import (
    DecisionProposedV1,
    KillSwitchResetV1,
    KillSwitchTrippedV1,
    Leg,
    OptionType,
    Side,
    Structure,
)
from shared.domain.access import Access
from shared.domain.risk import MarketView, QuantityNotLotMultiple, Scope, default_switches
from shared.domain.risk.odds import expiry_odds
from shared.errors import PermanentError
from shared.runtime import HttpCall, Runtime
from shared.services.risk_check import RiskDesk, switch_events_from_row

logger = logging.getLogger(__name__)

__all__ = [
    "KillSwitchCommand",
    "KillSwitchService",
    "TradeCheckRequest",
    "TradeCheckService",
    "TradeLeg",
]

CONSUMER = "risk_check.api"


class WinProbabilityRequired(PermanentError):
    reason_code = "win_probability_required"


class RequestInProgress(PermanentError):
    reason_code = "request_in_progress"
    http_status = 409


class RequestIdReused(PermanentError):
    reason_code = "request_id_reused"
    http_status = 409


class SwitchNotOperable(PermanentError):
    reason_code = "switch_not_operable"
    http_status = 409


# ----------------------------------------------------------------------------- /check


class TradeLeg(BaseModel):
    """One leg of a trade idea: ``lots`` or ``quantity`` (units), not both."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    expiry: date
    strike: Decimal = Field(gt=0, allow_inf_nan=False)
    option_type: OptionType
    side: Side
    lots: int | None = Field(None, gt=0, description="Market lots (whole, positive)")
    quantity: int | None = Field(None, gt=0, description="Units; a multiple of the market lot")
    price: Decimal | None = Field(None, ge=0, allow_inf_nan=False,
                                  description="Reference premium, rupees per unit "
                                              "(default: the snapshot's mid)")

    @model_validator(mode="after")
    def _one_size(self) -> TradeLeg:
        if (self.lots is None) == (self.quantity is None):
            raise ValueError("give exactly one of lots and quantity")
        return self


class TradeCheckRequest(BaseModel):
    """A tenant's own trade idea."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    tenant_id: uuid.UUID
    symbol: str = Field(min_length=1, max_length=32)
    structure: Structure
    legs: tuple[TradeLeg, ...] = Field(min_length=1, max_length=8)
    regime: str = Field(min_length=1, max_length=32,
                        description="The regime the idea is for (range, trend, ...)")
    expected_gross_edge: float | None = Field(
        None, description="Rupees per position before costs; default 0: the market's "
                          "own prices (no edge declared)")
    win_probability: float | None = Field(
        None, ge=0, le=1, description="Default: the market's lognormal odds at expiry "
                                      "(single-expiry ideas)")
    max_loss: float | None = Field(None, gt=0, description="Rupees; default: from the payoff")
    request_id: uuid.UUID | None = Field(None, description="Idempotency key")


class TradeCheckService:
    """``POST /check`` (see the module docstring)."""

    def __init__(self, *, db: Database, bus: Bus, desk: RiskDesk) -> None:
        self._db = db
        self._bus = bus
        self._desk = desk

    @classmethod
    def from_runtime(cls, rt: Runtime) -> TradeCheckService:
        return cls(db=rt.database, bus=rt.bus, desk=RiskDesk.default())

    def __call__(self, cmd: TradeCheckRequest, call: HttpCall) -> dict[str, Any]:
        load_access(self._db, call.caller).require_trader(cmd.tenant_id)
        request_id = cmd.request_id or uuid.uuid4()
        event_id = f"api:{request_id}"
        fingerprint = hashlib.sha256(
            cmd.model_dump_json(exclude={"request_id"}).encode()).hexdigest()
        with self._db.tenant(cmd.tenant_id) as s:
            tenant = self._desk.tenant(s)
            if not s.claim_event(CONSUMER, event_id, per_tenant=True):
                return self._replay(s, request_id, fingerprint)
            if s.execute("SELECT 1 FROM risk_verdicts WHERE proposal_id = :p",
                         p=request_id).rows:
                raise RequestIdReused(f"request_id {request_id} is the id of a decide proposal "
                                      f"of this tenant: use another")
            market = self._desk.market(s, cmd.symbol)
            proposal, assumptions = to_proposal(cmd, market, request_id, call.now)
            risk, verdict = self._desk.evaluate(s, tenant, proposal, call.now, market)
            decision = self._desk.record(s, proposal, event_id, call.now, risk, verdict,
                                         origin="api", actor=call.caller, caller=call.caller,
                                         request_hash=fingerprint)
            # Trips and resets are facts about the market or the book, whoever found them:
            # announce them (inside the transaction: a failed publish records nothing).
            for event in (*decision.trips, *decision.resets):
                self._bus.publish(event)
            s.execute("UPDATE risk_verdicts SET published_at = now() WHERE verdict_id = :i",
                      i=decision.verdict_id)
        position = risk.position
        logger.info("trade check %s for %s: %s", request_id, call.caller, verdict.explain())
        return {
            "request_id": str(request_id),
            "verdict_id": str(decision.verdict_id),
            "tenant_id": str(cmd.tenant_id),
            "approved": verdict.approved,
            "blocked_by": verdict.blocked_by,
            "reason_code": verdict.reason_code,
            "reason": verdict.explain(),
            "size_multiplier": verdict.size_multiplier,
            "net_ev": verdict.net_ev,
            "total_costs": verdict.total_costs,
            "dry_run": verdict.dry_run,
            "verdicts": [v.model_dump(mode="json") for v in verdict.verdicts],
            "trips": [t.model_dump(mode="json") for t in decision.trips],
            "resets": [r.model_dump(mode="json") for r in decision.resets],
            "position": {"lot_size": proposal.lot_size, "lots": list(position.lots),
                         "net_premium": position.net_premium, "margin": position.margin,
                         "capital_required": position.capital_required,
                         "max_loss": position.trade_max_loss,
                         "max_loss_basis": position.max_loss_basis},
            "assumptions": assumptions,
            "market": {"snapshot_id": str(market.snapshot_id), "asof": market.asof.isoformat(),
                       "spot": market.spot, "source": market.source},
            "replayed": False,
        }

    @staticmethod
    def _replay(s: Any, request_id: uuid.UUID, fingerprint: str) -> dict[str, Any]:
        rows = s.execute(
            "SELECT verdict_id, tenant_id, approved, blocked_by, reason_code, reason, "
            "size_multiplier, net_ev, total_costs, dry_run, verdicts, trips, resets, "
            "request_hash FROM risk_verdicts WHERE proposal_id = :p AND origin = 'api'",
            p=request_id).dicts()
        if not rows:  # claimed by a call that is still deciding
            raise RequestInProgress(f"request {request_id} is being checked; repeat it shortly")
        row = rows[0]
        if row["request_hash"] != fingerprint:
            raise RequestIdReused(f"request_id {request_id} was used for another trade idea; "
                                  f"a repeat must send the same body")
        events = switch_events_from_row(row)
        reason = row["reason"] if row["approved"] else \
            f"blocked by {row['blocked_by']}: {row['reason']}"
        return {
            "request_id": str(request_id), "verdict_id": str(row["verdict_id"]),
            "tenant_id": str(row["tenant_id"]), "approved": row["approved"],
            "blocked_by": row["blocked_by"], "reason_code": row["reason_code"],
            "reason": reason, "size_multiplier": row["size_multiplier"],
            "net_ev": row["net_ev"], "total_costs": row["total_costs"],
            "dry_run": row["dry_run"], "verdicts": _json(row["verdicts"]),
            "trips": [e.model_dump(mode="json") for e in events
                      if isinstance(e, KillSwitchTrippedV1)],
            "resets": [e.model_dump(mode="json") for e in events
                       if isinstance(e, KillSwitchResetV1)],
            "replayed": True,
        }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def to_proposal(cmd: TradeCheckRequest, market: MarketView, request_id: uuid.UUID,
                now: datetime) -> tuple[DecisionProposedV1, dict[str, Any]]:
    """The trade idea as a proposal the castle checks, and the assumptions filled in.

    Lot size: the market lot of the first leg's contract (the castle checks every leg's).
    A ``quantity`` must be a whole number of lots (else ``quantity_not_lot_multiple``).
    Reference prices default to the snapshot's mid. The gross edge defaults to 0 (the
    market's own prices: no edge), the win probability to the market's lognormal odds at
    expiry (:func:`~shared.domain.risk.odds.expiry_odds` at the ATM volatility), which
    needs a single expiry.
    """
    quotes = [market.quote(leg.expiry, leg.strike, leg.option_type) for leg in cmd.legs]
    lot_size = next((q.lot_size for q in quotes if q is not None),
                    market.quotes[0].lot_size if market.quotes else 1)
    legs = []
    for leg, q in zip(cmd.legs, quotes, strict=True):
        if leg.quantity is not None:
            if leg.quantity % lot_size:
                raise QuantityNotLotMultiple(
                    f"leg {leg.strike} {leg.option_type} {leg.expiry}: quantity {leg.quantity} "
                    f"is not a multiple of the market lot {lot_size}")
            lots = leg.quantity // lot_size
        else:
            assert leg.lots is not None
            lots = leg.lots
        price = leg.price
        if price is None:
            mid = (q.bid + q.ask) / 2 if q is not None else math.nan
            price = Decimal(f"{mid:.2f}") if math.isfinite(mid) else Decimal(0)
        legs.append(Leg(expiry=leg.expiry, strike=leg.strike, option_type=leg.option_type,
                        side=leg.side, lots=lots, price=price))
    assumptions: dict[str, Any] = {}
    win = cmd.win_probability
    if win is None:
        odds = _market_odds(legs, lot_size, market)
        if odds is None:
            raise WinProbabilityRequired(
                "give win_probability: the market's odds need one expiry and a two-sided "
                "quote on every leg")
        win, assumptions["odds"] = odds
        assumptions["win_probability_source"] = "market lognormal at the ATM volatility"
    else:
        assumptions["win_probability_source"] = "declared"
    edge = cmd.expected_gross_edge
    assumptions["expected_gross_edge_source"] = "declared" if edge is not None else \
        "none declared: 0 (the market's own prices)"
    assumptions["win_probability"] = win
    assumptions["expected_gross_edge"] = edge or 0.0
    proposal = DecisionProposedV1(
        proposal_id=request_id, tenant_id=cmd.tenant_id,
        snapshot_id=market.snapshot_id or uuid.uuid4(), symbol=cmd.symbol,
        structure=cmd.structure, legs=tuple(legs), lot_size=lot_size, max_profit=None,
        max_loss=cmd.max_loss, expected_gross_edge=edge or 0.0, win_probability=win,
        regime=cmd.regime, explanation={"source": "api"}, proposed_at=now)
    return proposal, assumptions


def _market_odds(legs: list[Leg], lot_size: int, market: MarketView
                 ) -> tuple[float, dict[str, Any]] | None:
    expiries = {leg.expiry for leg in legs}
    if len(expiries) != 1:
        return None
    (expiry,) = expiries
    units, strikes, calls, execs = [], [], [], []
    for leg in legs:
        q = market.quote(leg.expiry, leg.strike, leg.option_type)
        if q is None or not (math.isfinite(q.bid) and math.isfinite(q.ask)):
            return None
        sign = 1.0 if leg.side == Side.BUY else -1.0
        units.append(sign * leg.lots * lot_size)
        strikes.append(float(leg.strike))
        calls.append(leg.option_type == OptionType.CE)
        execs.append(q.ask if sign > 0 else q.bid)
    same = [q for q in market.quotes if q.expiry == expiry and math.isfinite(q.iv) and q.iv > 0]
    if not same:
        return None
    forward, t = same[0].forward, same[0].t
    if not (t > 0):
        return None
    nearest = min(abs(q.strike - forward) for q in same)
    sigma = float(np.mean([q.iv for q in same if abs(q.strike - forward) == nearest]))
    u = np.array(units)
    odds = expiry_odds(u, np.array(strikes), np.array(calls), float(u @ np.array(execs)),
                       forward=forward, t=t, sigma=sigma)
    return odds.win_probability, {"sigma": sigma, "forward": forward, "t": t,
                                  "breakevens": list(odds.breakevens),
                                  "expected_payoff": odds.expected_payoff}


# ------------------------------------------------------------------------- /killswitch

_SCOPES = {s.name: s.scope for s in default_switches()}


class KillSwitchCommand(BaseModel):
    """An operator's trip or reset of one kill switch.

    ``tenant_id`` None: a row for every tenant (platform operators only). ``scope_key`` None:
    every instance of the switch's scope; for a tenant-scoped switch it defaults to the
    tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["trip", "reset"]
    switch: str = Field(description=f"one of: {', '.join(_SCOPES)}")
    tenant_id: uuid.UUID | None = None
    scope_key: str | None = Field(None, min_length=1, max_length=128)
    reason: str = Field(min_length=3, max_length=500)

    @model_validator(mode="after")
    def _known(self) -> KillSwitchCommand:
        if self.switch not in _SCOPES:
            raise ValueError(f"unknown switch {self.switch!r}; known: {', '.join(_SCOPES)}")
        scope = _SCOPES[self.switch]
        if scope == Scope.TENANT and self.tenant_id is None:
            raise ValueError(f"{self.switch} is a tenant switch: give tenant_id")
        if scope == Scope.GLOBAL and self.scope_key is not None:
            raise ValueError(f"{self.switch} has no scope_key")
        if scope == Scope.TENANT and self.scope_key not in (None, str(self.tenant_id)):
            raise ValueError(f"{self.switch} is keyed by its tenant: leave scope_key out")
        return self

    @property
    def scope(self) -> str:
        return str(_SCOPES[self.switch])

    @property
    def key(self) -> str | None:
        if self.scope_key is None and _SCOPES[self.switch] == Scope.TENANT:
            return str(self.tenant_id)
        if _SCOPES[self.switch] in (Scope.SYMBOL, Scope.EXCHANGE) and self.scope_key:
            return self.scope_key.upper()  # as the market data spells them: NIFTY, NSE
        if _SCOPES[self.switch] == Scope.SOURCE and self.scope_key:
            return self.scope_key.lower()  # nse, upstox, replay
        return self.scope_key


class KillSwitchService:
    """``POST /killswitch`` (see the module docstring)."""

    def __init__(self, *, db: Database, bus: Bus) -> None:
        self._db = db
        self._bus = bus

    @classmethod
    def from_runtime(cls, rt: Runtime) -> KillSwitchService:
        return cls(db=rt.database, bus=rt.bus)

    def __call__(self, cmd: KillSwitchCommand, call: HttpCall) -> dict[str, Any]:
        if cmd.switch == "dry_run_lock":
            raise SwitchNotOperable("the dry-run lock belongs to the database: a tenant is "
                                    "paper-only for 14 days and no call changes that")
        access: Access = load_access(self._db, call.caller)
        access.require_operator(cmd.tenant_id)
        kind = KillSwitchTrippedV1 if cmd.action == "trip" else KillSwitchResetV1
        event = kind(switch=cmd.switch, scope=cmd.scope, scope_key=cmd.key,
                     tenant_id=cmd.tenant_id, reason=cmd.reason, actor=call.caller,
                     at=call.now)
        session = self._db.tenant(cmd.tenant_id) if cmd.tenant_id else self._db.system()
        with session as s:
            if cmd.tenant_id:
                load_tenant(s)  # an unknown tenant is refused (422), not a database error
            changed = record_switch_change(s, event, source_event=f"api:{uuid.uuid4()}")
            if changed:
                if cmd.tenant_id:
                    s.audit(actor=call.caller, action=f"killswitch.{cmd.action}",
                            subject=f"{cmd.switch}:{cmd.scope}:{cmd.key or ''}",
                            details=event.model_dump(mode="json"))
                self._bus.publish(event)  # inside the transaction: no unannounced change
        state = "tripped" if cmd.action == "trip" else "reset"
        logger.info("kill switch %s %s by %s (%s)", cmd.switch,
                    state if changed else f"already {state}", call.caller, cmd.reason)
        return {"changed": changed, "state": state, "switch": cmd.switch, "scope": cmd.scope,
                "scope_key": cmd.key, "tenant_id": str(cmd.tenant_id) if cmd.tenant_id else None,
                "actor": call.caller, "at": call.now.isoformat()}
