r"""The in-process paper book: positions opened from approved proposals, marked at every
snapshot, closed at the target or stop, at expiry, or at the last mark. Pure (no I/O, no
clock: every time comes from a snapshot).

Two ledgers per position
------------------------
* **The product's** (what decide and the castle see, as ``risk_check`` records a paper
  position and :func:`shared.adapters.risk_state.load_portfolio` reads it back): entry
  premium at the touch (``-position_math(...).net_premium * m``), margin
  ``capital_required * m``, marked with :func:`shared.domain.risk.marks.mark_position`
  (mids, the model price for a one-sided quote, intrinsic after expiry); P&L before costs.
  The :class:`~shared.domain.risk.inputs.Portfolio` built from it (open MTM, today's part
  of it, realised today per strategy, equity) drives sizing, the walls and the kill
  switches, and the realised P&L over the capital tied up is the bandit's reward, as
  :func:`shared.adapters.decide_state.credit_settled` computes it.
* **The cost engine's** (what the replay reports): every leg filled at the proposal's
  reference price (the mid) and closed at its mark, each fill charged by
  :func:`shared.domain.costs.round_trip` under the tenant's brokerage plan on the fill's
  IST date, with the expected slippage of :class:`shared.domain.costs.SlippageModel` from
  the leg's quoted spread (the order taken to match the displayed size, as
  :class:`shared.domain.risk.engine_costs.EngineCostModel` takes it). A leg held to expiry
  settles at intrinsic (an ITM long pays STT on exercise; nothing else is charged).
  Rupees, after costs: open positions count their entry costs, closed ones every cost.

Exits
-----
At every snapshot an open position is closed, at the marks of that snapshot,

1. at the **target** or **stop** of notify's rule (:data:`shared.domain.notify.render.
   TARGET_STOP_RULE`, read from :func:`~shared.domain.notify.render.render_signal`'s card:
   a credit is bought back at 50 % of the credit or at twice it, a debit sold at twice the
   debit or at half of it, capped at max profit / loss), when the structure's net premium
   per copy at the marks crosses the level (complete marks only);
2. at **expiry**: when its last leg has expired, at intrinsic against the expiry day's
   last spot (the product settles at that spot);
3. at the **session's end**, at its last mark, unless the next session of the replay is
   the next trading day (a multi-day replay carries it overnight); and at the end of the
   replay, whatever is still open.

Conservative ledger
-------------------
The same positions, entries and exits (conservative mode never changes a decision, so
the two are comparable), with

* every fill's slippage doubled (:data:`~shared.replay.config.SLIPPAGE_MULTIPLIER`), and
* **widened event moves**: on a day with a scheduled event for the symbol (the news
  gate's calendar: RBI policy, Union Budget, FOMC, US CPI, the symbol's expiry days) the
  underlying's move since the day's first mark (or the entry) is taken
  :data:`~shared.replay.config.EVENT_MOVE_WIDENING` times as large, when that hurts: with
  ``e = (w - 1) ln(S / S_ref)`` accumulated over the event days of the holding, every leg
  is repriced (Black-76 at its quote's forward times ``exp(e)``, time and IV; intrinsic
  for a settled leg or a leg without an IV) and the position is marked at
  ``V + min(0, dV)``. The simulator exposes no jump or vol parameter per event day, so the
  widening is applied to the marks and exits, not to the simulated path.

Hence the conservative P&L of every trade is at most the normal one.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import numpy as np

from shared.contracts import DecisionProposedV1, Leg, OptionType, Side
from shared.domain.black76 import black76_price
from shared.domain.calendar import IST
from shared.domain.costs import CostSchedule, SlippageModel, quote, round_trip
from shared.domain.costs import Leg as CostLeg
from shared.domain.risk.inputs import MarketView, Portfolio, Position
from shared.domain.risk.marks import PositionMark, mark_position
from shared.replay.config import EVENT_MOVE_WIDENING, SLIPPAGE_MULTIPLIER

__all__ = ["BookPosition", "ClosedTrade", "PaperBook", "TenantLedger"]

_ZERO = Decimal(0)


def _ist_date(t: datetime) -> date:
    return t.astimezone(IST).date()


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A closed paper position (rupees).

    Attributes
    ----------
    tenant_id, position_id, strategy, structure, regime
        Whose, which, the castle's strategy key, the structure and decide's regime.
    opened_at, closed_at, reason
        When, and why it closed: ``target``, ``stop``, ``expiry``, ``session_end`` or
        ``replay_end``.
    gross_pnl
        ``sum(units * (exit - entry))`` at the reference entry prices and the exit marks
        (or intrinsic), before costs.
    costs, costs_conservative
        Every charge of the round trip (cost engine), normal and conservative (slippage
        doubled).
    event_penalty
        The conservative ledger's widened-event-move loss at the exit (<= 0).
    pnl, pnl_conservative
        After costs: ``gross_pnl - costs`` and ``gross_pnl - costs_conservative +
        event_penalty``.
    capital
        Capital the position tied up: the castle's ``capital_required`` at the approved
        size (margin plus premium paid), >= 1 rupee.
    product_pnl
        The product's realised P&L (entry at the touch, before costs): the daily-loss
        switches' figure.
    bandit_reward
        ``product_pnl / max(margin + premium paid, 1)``, the reward
        :func:`shared.adapters.decide_state.credit_settled` gives the tenant's bandit.
    """

    tenant_id: uuid.UUID
    position_id: str
    strategy: str
    structure: str
    regime: str
    opened_at: datetime
    closed_at: datetime
    reason: str
    gross_pnl: float
    costs: float
    costs_conservative: float
    event_penalty: float
    pnl: float
    pnl_conservative: float
    capital: float
    product_pnl: float
    bandit_reward: float

    def net(self, conservative: bool) -> float:
        return self.pnl_conservative if conservative else self.pnl

    def ret(self, conservative: bool) -> float:
        """The trade's return on the capital it tied up, decimal."""
        return self.net(conservative) / self.capital


@dataclass(slots=True)
class BookPosition:
    """An open paper position and its marks (internal, mutable state of the book)."""

    position_id: str
    tenant_id: uuid.UUID
    symbol: str
    structure: str
    strategy: str
    regime: str
    legs: tuple[Leg, ...]  # at the traded lots; price = the proposal's reference price
    lot_size: int
    plan: str
    opened_at: datetime
    margin: float  # the castle's capital_required at the approved size
    entry_premium_touch: float  # the product's: -net_premium at the touch, times m
    entry_premium_mid: float  # -sum(units * reference price)
    entry_slippage: tuple[Decimal | None, ...]
    entry_cost: float
    entry_cost_conservative: float
    kind: str  # credit | debit | even
    target: float | None  # close level, net premium per copy (points)
    stop: float | None
    units_per_copy_total: int  # q: traded copies * lot size
    units: np.ndarray = field(repr=False)
    strikes: np.ndarray = field(repr=False)
    is_call: np.ndarray = field(repr=False)
    last_mark: PositionMark | None = None
    mark_before_today: float | None = None  # the product's P&L at the last mark before today
    mark_day: date | None = None
    excess_closed: float = 0.0  # conservative: accumulated widened log-move of past event days
    event_ref_spot: float | None = None

    @property
    def nearest_expiry(self) -> date:
        return min(leg.expiry for leg in self.legs)

    @property
    def last_expiry(self) -> date:
        return max(leg.expiry for leg in self.legs)

    @property
    def product_pnl(self) -> float:
        m = self.last_mark
        return m.pnl if m is not None and math.isfinite(m.pnl) else 0.0


@dataclass(slots=True)
class TenantLedger:
    """One tenant's book: open positions and closed trades."""

    capital: float
    plan: str
    open: list[BookPosition] = field(default_factory=list)
    closed: list[ClosedTrade] = field(default_factory=list)
    ever_traded: bool = False


class PaperBook:
    """Every tenant's paper book (see the module docstring).

    Parameters
    ----------
    schedule
        The dated Indian charges and brokerage plans (:func:`shared.costs.
        default_cost_schedule`).
    slippage
        The slippage model (default: the cost engine's, impact 0.5, exponent 0.5).
    """

    def __init__(self, schedule: CostSchedule, slippage: SlippageModel | None = None) -> None:
        self.schedule = schedule
        self.slippage = slippage or SlippageModel()
        self.ledgers: dict[uuid.UUID, TenantLedger] = {}
        self.event_day = False
        self._seq = 0

    # ----------------------------------------------------------------------- tenants
    def add_tenant(self, tenant_id: uuid.UUID, capital: float, plan: str) -> None:
        self.ledgers[tenant_id] = TenantLedger(capital=capital, plan=plan)

    def open_contracts(self) -> set[tuple[date, float, bool]]:
        """``(expiry, strike, is_call)`` of every open leg."""
        return {(leg.expiry, float(leg.strike), leg.option_type == OptionType.CE)
                for led in self.ledgers.values() for p in led.open for leg in p.legs}

    def has_open(self) -> bool:
        return any(led.open for led in self.ledgers.values())

    # ----------------------------------------------------------------------- costs
    def _slip(self, qty: int, q: object) -> Decimal | None:
        """Expected slippage of ``qty`` units at a quote (None without a two-sided one)."""
        bid, ask = getattr(q, "bid", math.nan), getattr(q, "ask", math.nan)
        if q is None or not (math.isfinite(bid) and math.isfinite(ask) and ask > bid > 0):
            return None
        return self.slippage.estimate(qty=qty, displayed_qty=qty, bid=bid, ask=ask).amount

    @staticmethod
    def _times(x: Decimal | None, k: float) -> Decimal | None:
        return None if x is None else x * Decimal(repr(k))

    def _entry_cost(self, legs: Sequence[Leg], lot_size: int, slips: Sequence[Decimal | None],
                    on: date, plan: str, k: float) -> float:
        total = _ZERO
        for leg, slip in zip(legs, slips, strict=True):
            total += quote(self.schedule, trade_date=on, instrument="option",
                           side=leg.side.value, price=leg.price, qty=leg.lots * lot_size,
                           plan=plan, slippage=self._times(slip, k)).total
        return float(total)

    # ----------------------------------------------------------------------- open
    def open(self, proposal: DecisionProposedV1, *, lots: Sequence[int], market: MarketView,
             now: datetime, margin: float, entry_premium_touch: float, strategy: str,
             card: dict[str, object] | None = None) -> BookPosition | None:
        """Open the approved ``proposal`` at ``lots`` per leg (the castle's
        :func:`~shared.domain.risk.castle.sized_lots`); ``margin`` and
        ``entry_premium_touch`` as risk_check records them; ``card`` is notify's card data
        (``entry``, ``target``, ``stop``). Returns None when every leg rounds to 0 lots."""
        if not any(lots):
            return None
        led = self.ledgers[proposal.tenant_id]
        legs = tuple(leg.model_copy(update={"lots": n})
                     for leg, n in zip(proposal.legs, lots, strict=True) if n > 0)
        lot = proposal.lot_size
        slips = tuple(self._slip(leg.lots * lot, market.quote(leg.expiry, float(leg.strike),
                                                               leg.option_type.value))
                      for leg in legs)
        on = _ist_date(now)
        units = np.array([(1.0 if leg.side == Side.BUY else -1.0) * leg.lots * lot
                          for leg in legs])
        entry = card.get("entry") if card else None
        target = card.get("target") if card else None
        stop = card.get("stop") if card else None
        self._seq += 1
        pos = BookPosition(
            position_id=f"{proposal.tenant_id.hex[:8]}-{self._seq}",
            tenant_id=proposal.tenant_id, symbol=proposal.symbol,
            structure=proposal.structure.value, strategy=strategy, regime=proposal.regime,
            legs=legs, lot_size=lot, plan=led.plan, opened_at=now, margin=margin,
            entry_premium_touch=entry_premium_touch,
            entry_premium_mid=-float(np.dot(units, [float(leg.price) for leg in legs])),
            entry_slippage=slips,
            entry_cost=self._entry_cost(legs, lot, slips, on, led.plan, 1.0),
            entry_cost_conservative=self._entry_cost(legs, lot, slips, on, led.plan,
                                                     SLIPPAGE_MULTIPLIER),
            kind=str(entry["kind"]) if isinstance(entry, dict) else "even",
            target=float(target["close_at"]) if isinstance(target, dict) else None,
            stop=float(stop["close_at"]) if isinstance(stop, dict) else None,
            units_per_copy_total=int(entry["units"]) if isinstance(entry, dict) else 0,
            units=units, strikes=np.array([float(leg.strike) for leg in legs]),
            is_call=np.array([leg.option_type == OptionType.CE for leg in legs]))
        led.open.append(pos)
        led.ever_traded = True
        self._mark_one(pos, market, now)
        return pos

    # ----------------------------------------------------------------------- marks
    def _mark_one(self, pos: BookPosition, market: MarketView, now: datetime) -> PositionMark:
        today = _ist_date(now)
        if pos.mark_day is not None and pos.mark_day != today and pos.last_mark is not None:
            pos.mark_before_today = pos.product_pnl
        pos.mark_day = today
        m = mark_position(pos.legs, lot_size=pos.lot_size,
                          entry_premium=pos.entry_premium_touch, market=market, today=today)
        pos.last_mark = m
        if self.event_day and pos.event_ref_spot is None:
            pos.event_ref_spot = market.spot
        return m

    def mark(self, market: MarketView, now: datetime) -> list[tuple[BookPosition, str]]:
        """Mark every open position of ``market.symbol``; returns the positions whose target
        or stop the marks reached (not closed yet), with ``target`` or ``stop``."""
        hits = []
        for led in self.ledgers.values():
            for pos in led.open:
                if pos.symbol != market.symbol:
                    continue
                m = self._mark_one(pos, market, now)
                why = self._exit_reason(pos, m)
                if why is not None:
                    hits.append((pos, why))
        return hits

    @staticmethod
    def _exit_reason(pos: BookPosition, m: PositionMark) -> str | None:
        q = pos.units_per_copy_total
        if not m.complete or q <= 0 or pos.target is None or pos.stop is None:
            return None
        per_copy = m.value / q  # the structure's net premium per copy now (+ long)
        if pos.kind == "credit":
            cost = -per_copy  # what buying it back costs, per copy
            if cost <= pos.target:
                return "target"
            if cost >= pos.stop:
                return "stop"
        elif pos.kind == "debit":
            if per_copy >= pos.target:
                return "target"
            if per_copy <= pos.stop:
                return "stop"
        return None

    # ----------------------------------------------------------------------- conservative
    def _excess(self, pos: BookPosition, spot: float) -> float:
        e = pos.excess_closed
        if self.event_day and pos.event_ref_spot is not None and spot > 0:
            e += (EVENT_MOVE_WIDENING - 1.0) * math.log(spot / pos.event_ref_spot)
        return e

    def _event_penalty(self, pos: BookPosition, market: MarketView | None, spot: float,
                       today: date, settle: bool = False) -> float:
        """``min(0, dV)`` of the widened move (module docstring), rupees (<= 0)."""
        e = self._excess(pos, spot)
        if e == 0.0:
            return 0.0
        n = len(pos.legs)
        base = np.empty(n)
        wide = np.empty(n)
        fwd, tt, iv = np.full(n, math.nan), np.zeros(n), np.full(n, math.nan)
        rate = market.rate if market is not None else 0.0
        for i, leg in enumerate(pos.legs):
            q = None if market is None else market.quote(leg.expiry, float(leg.strike),
                                                         leg.option_type.value)
            expired = settle or leg.expiry < today
            f = spot if (expired or q is None or not math.isfinite(q.forward)) else q.forward
            fwd[i] = f
            if not expired and q is not None and math.isfinite(q.iv) and q.iv > 0:
                tt[i], iv[i] = q.t, q.iv
        model = np.isfinite(iv)
        k, c = pos.strikes, pos.is_call
        intrinsic = np.where(c, np.maximum(fwd - k, 0.0), np.maximum(k - fwd, 0.0))
        shifted = fwd * math.exp(e)
        intrinsic_w = np.where(c, np.maximum(shifted - k, 0.0), np.maximum(k - shifted, 0.0))
        base[:], wide[:] = intrinsic, intrinsic_w
        if model.any():
            base[model] = black76_price(fwd[model], k[model], tt[model], rate, iv[model],
                                        c[model])
            wide[model] = black76_price(shifted[model], k[model], tt[model], rate, iv[model],
                                        c[model])
        return min(0.0, float(pos.units @ (wide - base)))

    def end_of_day(self, spot_by_symbol: dict[str, float]) -> None:
        """Close the day's event widening into each open position's accumulated move."""
        if not self.event_day:
            return
        for led in self.ledgers.values():
            for pos in led.open:
                spot = spot_by_symbol.get(pos.symbol)
                if spot is not None and pos.event_ref_spot is not None:
                    pos.excess_closed = self._excess(pos, spot)
                pos.event_ref_spot = None

    # ----------------------------------------------------------------------- close
    def close(self, pos: BookPosition, *, now: datetime, reason: str,
              market: MarketView | None = None, settlement_spot: float | None = None
              ) -> ClosedTrade:
        """Close ``pos`` at its last marks (``market`` for the exit spreads) or, with
        ``settlement_spot``, at intrinsic against it (held to expiry)."""
        led = self.ledgers[pos.tenant_id]
        led.open.remove(pos)
        today = _ist_date(now)
        lot = pos.lot_size
        legs_n: list[CostLeg] = []
        legs_c: list[CostLeg] = []
        if settlement_spot is not None:
            s = settlement_spot
            exit_prices = np.where(pos.is_call, np.maximum(s - pos.strikes, 0.0),
                                   np.maximum(pos.strikes - s, 0.0))
            spot = s
        else:
            assert pos.last_mark is not None
            exit_prices = np.array([m.price if math.isfinite(m.price) else 0.0
                                    for m in pos.last_mark.legs])
            spot = market.spot if market is not None else math.nan
        for i, leg in enumerate(pos.legs):
            qty = leg.lots * lot
            common = dict(instrument="option",
                          position="long" if leg.side == Side.BUY else "short", qty=qty,
                          entry_price=leg.price)
            if settlement_spot is not None:
                ex = dict(settlement_intrinsic=Decimal(repr(round(float(exit_prices[i]), 6))))
                slip = None
            else:
                price = max(float(exit_prices[i]), 0.0)
                ex = dict(exit_price=Decimal(repr(price)))
                q = None if market is None else market.quote(leg.expiry, float(leg.strike),
                                                             leg.option_type.value)
                slip = self._slip(qty, q)
            legs_n.append(CostLeg(**common, **ex, entry_slippage=pos.entry_slippage[i],
                                  exit_slippage=slip))
            legs_c.append(CostLeg(**common, **ex,
                                  entry_slippage=self._times(pos.entry_slippage[i],
                                                             SLIPPAGE_MULTIPLIER),
                                  exit_slippage=self._times(slip, SLIPPAGE_MULTIPLIER)))
        entry_day = _ist_date(pos.opened_at)
        exit_day = max(today, entry_day)
        costs = float(round_trip(self.schedule, legs_n, entry_date=entry_day,
                                 exit_date=exit_day, plan=pos.plan).total)
        costs_c = float(round_trip(self.schedule, legs_c, entry_date=entry_day,
                                   exit_date=exit_day, plan=pos.plan).total)
        value = float(pos.units @ exit_prices)
        gross = value + pos.entry_premium_mid
        product = value + pos.entry_premium_touch
        penalty = self._event_penalty(pos, market, spot, today,
                                      settle=settlement_spot is not None) \
            if math.isfinite(spot) else 0.0
        trade = ClosedTrade(
            tenant_id=pos.tenant_id, position_id=pos.position_id, strategy=pos.strategy,
            structure=pos.structure, regime=pos.regime, opened_at=pos.opened_at,
            closed_at=now, reason=reason, gross_pnl=gross, costs=costs,
            costs_conservative=costs_c, event_penalty=penalty, pnl=gross - costs,
            pnl_conservative=gross - costs_c + penalty, capital=max(pos.margin, 1.0),
            product_pnl=product,
            bandit_reward=product / max(pos.margin + max(-pos.entry_premium_touch, 0.0), 1.0))
        led.closed.append(trade)
        return trade

    # ----------------------------------------------------------------------- views
    def open_pnl(self, tenant_id: uuid.UUID, market: MarketView | None,
                 now: datetime) -> tuple[float, float]:
        """Open P&L after entry costs (normal, conservative) at the last marks."""
        led = self.ledgers[tenant_id]
        today = _ist_date(now)
        normal = cons = 0.0
        for pos in led.open:
            m = pos.last_mark
            if m is None or not math.isfinite(m.value):
                continue
            gross = m.value + pos.entry_premium_mid
            normal += gross - pos.entry_cost
            spot = market.spot if market is not None and market.symbol == pos.symbol \
                else math.nan
            penalty = self._event_penalty(pos, market, spot, today) \
                if math.isfinite(spot) else 0.0
            cons += gross - pos.entry_cost_conservative + penalty
        return normal, cons

    def realised(self, tenant_id: uuid.UUID) -> tuple[float, float]:
        led = self.ledgers[tenant_id]
        return (math.fsum(t.pnl for t in led.closed),
                math.fsum(t.pnl_conservative for t in led.closed))

    def portfolio(self, tenant_id: uuid.UUID, now: datetime) -> Portfolio:
        """The tenant's book as :func:`shared.adapters.risk_state.load_portfolio` reads it:
        the product's ledger (see the module docstring)."""
        led = self.ledgers[tenant_id]
        if not led.ever_traded:
            return Portfolio(equity=led.capital)
        today = _ist_date(now)
        positions = []
        for p in led.open:
            pnl = p.product_pnl
            before = p.mark_before_today if _ist_date(p.opened_at) < today else None
            positions.append(Position(
                position_id=p.position_id, symbol=p.symbol, margin=p.margin, mtm_pnl=pnl,
                strategy=p.strategy, expiry=p.nearest_expiry, structure=p.structure,
                mtm_pnl_today=None if before is None else pnl - before))
        by_strategy: dict[str, float] = defaultdict(float)
        total = 0.0
        for t in led.closed:
            total += t.product_pnl
            if _ist_date(t.closed_at) == today:
                by_strategy[t.strategy] += t.product_pnl
            else:
                by_strategy.setdefault(t.strategy, 0.0)
        open_pnl = math.fsum(p.mtm_pnl for p in positions)
        return Portfolio(positions=tuple(positions),
                         realized_pnl_today=math.fsum(by_strategy.values()),
                         realized_pnl_today_by_strategy=dict(by_strategy),
                         equity=led.capital + total + open_pnl)

    def trades(self) -> Iterable[ClosedTrade]:
        for led in self.ledgers.values():
            yield from led.closed
