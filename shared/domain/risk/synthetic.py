"""Seeded synthetic markets and proposals for the risk tests and benchmark (pure).

Not used by the services. :class:`FlatCostModel` is a stand-in implementing the
:class:`~shared.domain.risk.ports.CostModel` port with flat rates; the real charges live in
the cost engine and reach the castle through an adapter.

The market: a NIFTY-like underlying at ``spot``, strikes on a 50-point grid within +-12 %,
a skewed smile ``iv = base + skew * x + curvature * x**2`` in ``x = ln(K/F)``, Black-76
mid prices, quotes ``spread_ticks`` ticks either side (a side at or below zero is missing,
NaN), one lot size for every contract.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shared.contracts import DecisionProposedV1, Leg, OptionType, Side, Structure
from shared.domain.black76 import NSE_TICK, black76_price
from shared.domain.risk.context import RiskContext
from shared.domain.risk.inputs import LegQuote, MarketView, TenantPolicy
from shared.domain.risk.ports import CostEstimate

__all__ = [
    "EXPIRIES",
    "IST",
    "NOW",
    "TENANT",
    "FlatCostModel",
    "LegSpec",
    "build_proposal",
    "context",
    "iron_condor",
    "later",
    "long_straddle",
    "random_proposal",
    "short_strangle",
    "synthetic_market",
    "vertical",
]

IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=IST)  # a Friday, in market hours
EXPIRIES = (date(2026, 11, 23), date(2026, 12, 1))  # Nov 24 is a holiday: the monthly moved
TENANT = uuid.UUID("11111111-1111-4111-8111-111111111111")
STEP = 50.0


def synthetic_market(rng: np.random.Generator | None = None, *, spot: float = 24_000.0,
                     rate: float = 0.065, asof: datetime = NOW,
                     expiries: Sequence[date] = EXPIRIES, lot_size: int = 65,
                     width: float = 0.12, spread_ticks: int = 2, base_vol: float = 0.14,
                     symbol: str = "NIFTY", source: str = "simulator") -> MarketView:
    """A seeded market view (the seed jitters the smile and the carry a little)."""
    rng = rng or np.random.default_rng(1234)
    quotes = []
    lo = math.ceil(spot * (1 - width) / STEP) * STEP
    hi = math.floor(spot * (1 + width) / STEP) * STEP
    strikes = np.arange(lo, hi + STEP / 2, STEP)
    close = time(15, 30)
    for expiry in expiries:
        t = max((datetime.combine(expiry, close, tzinfo=IST) - asof).total_seconds(), 0.0) \
            / (365 * 24 * 3600)
        forward = spot * math.exp((rate - 0.012 + rng.normal(0, 0.002)) * t)
        x = np.log(strikes / forward)
        iv = base_vol + rng.normal(0, 0.003) - 0.25 * x + 1.5 * x * x
        for is_call in (True, False):
            mid = black76_price(forward, strikes, t, rate, iv, is_call)
            half = spread_ticks * NSE_TICK
            bid = np.round((mid - half) / NSE_TICK) * NSE_TICK
            ask = np.round((mid + half) / NSE_TICK) * NSE_TICK
            kind = OptionType.CE if is_call else OptionType.PE
            for k, b, a, v in zip(strikes, bid, ask, iv, strict=True):
                quotes.append(LegQuote(expiry=expiry, strike=float(k), option_type=kind,
                                       bid=float(b) if b > 0 else math.nan,
                                       ask=float(a) if a > 0 else NSE_TICK, iv=float(v),
                                       forward=float(forward), t=t, lot_size=lot_size))
    return MarketView(symbol=symbol, asof=asof, spot=spot, quotes=tuple(quotes), rate=rate,
                      source=source, snapshot_id=uuid.UUID(int=int(rng.integers(1, 2**62))))


@dataclass(frozen=True, slots=True)
class LegSpec:
    """A leg to build: strike, CE/PE, buy/sell, lots (expiry: the proposal's)."""

    strike: float
    option_type: OptionType
    side: Side
    lots: int = 1


def _atm(market: MarketView) -> float:
    return round(market.spot / STEP) * STEP


def build_proposal(market: MarketView, structure: Structure, legs: Sequence[LegSpec], *,
                   expiry: date | None = None, tenant_id: uuid.UUID = TENANT,
                   edge: float | None = None, win_probability: float = 0.62,
                   regime: str = "range", lot_size: int | None = None,
                   proposal_id: uuid.UUID | None = None, **over: Any) -> DecisionProposedV1:
    """A proposal priced at the market's mids; max profit/loss from the expiry payoff.

    ``edge`` defaults to 20 % of the premium received (credit) or paid (debit), rupees.
    """
    expiry = expiry or EXPIRIES[0]
    lot = lot_size or market.quotes[0].lot_size
    built, units, strikes, calls, mids = [], [], [], [], []
    for spec in legs:
        q = market.quote(expiry, spec.strike, spec.option_type)
        if q is None:
            raise KeyError((expiry, spec.strike, spec.option_type))
        mid = (q.bid + q.ask) / 2 if math.isfinite(q.bid) else q.ask
        built.append(Leg(expiry=expiry, strike=Decimal(str(spec.strike)),
                         option_type=spec.option_type, side=spec.side, lots=spec.lots,
                         price=Decimal(f"{mid:.2f}")))
        units.append(spec.lots * lot * (1 if spec.side == Side.BUY else -1))
        strikes.append(spec.strike)
        calls.append(spec.option_type == OptionType.CE)
        mids.append(mid)
    u, k, c = np.array(units, float), np.array(strikes), np.array(calls)
    premium = float(u @ np.array(mids))
    xs = np.concatenate(([0.0], k, [k.max() * 2]))
    intrinsic = np.where(c[None, :], np.maximum(xs[:, None] - k, 0), np.maximum(k - xs[:, None], 0))
    payoff = intrinsic @ u - premium
    net_calls = u[c].sum()
    max_loss = None if net_calls < 0 else max(-float(payoff.min()), 0.0)
    max_profit = None if net_calls > 0 else max(float(payoff.max()), 0.0)
    fields: dict[str, Any] = dict(
        proposal_id=proposal_id or uuid.uuid4(), tenant_id=tenant_id,
        snapshot_id=market.snapshot_id or uuid.uuid4(), symbol=market.symbol,
        structure=structure, legs=tuple(built), lot_size=lot, max_profit=max_profit,
        max_loss=max_loss,
        expected_gross_edge=0.2 * abs(premium) if edge is None else edge,
        win_probability=win_probability, regime=regime, proposed_at=market.asof)
    fields.update(over)
    return DecisionProposedV1(**fields)


def iron_condor(market: MarketView, *, distance: float = 300, wing: float = 200,
                lots: int = 1, **kw: Any) -> DecisionProposedV1:
    atm = _atm(market)
    legs = [LegSpec(atm + distance, OptionType.CE, Side.SELL, lots),
            LegSpec(atm + distance + wing, OptionType.CE, Side.BUY, lots),
            LegSpec(atm - distance, OptionType.PE, Side.SELL, lots),
            LegSpec(atm - distance - wing, OptionType.PE, Side.BUY, lots)]
    return build_proposal(market, Structure.IRON_CONDOR, legs, **kw)


def short_strangle(market: MarketView, *, distance: float = 300, lots: int = 1,
                   **kw: Any) -> DecisionProposedV1:
    atm = _atm(market)
    legs = [LegSpec(atm + distance, OptionType.CE, Side.SELL, lots),
            LegSpec(atm - distance, OptionType.PE, Side.SELL, lots)]
    return build_proposal(market, Structure.SHORT_STRANGLE, legs, **kw)


def long_straddle(market: MarketView, *, lots: int = 1, **kw: Any) -> DecisionProposedV1:
    atm = _atm(market)
    legs = [LegSpec(atm, OptionType.CE, Side.BUY, lots), LegSpec(atm, OptionType.PE, Side.BUY, lots)]
    kw.setdefault("regime", "low_vol")
    return build_proposal(market, Structure.LONG_STRADDLE, legs, **kw)


def vertical(market: MarketView, *, credit: bool = True, option_type: OptionType = OptionType.PE,
             distance: float = 200, width: float = 100, lots: int = 1,
             **kw: Any) -> DecisionProposedV1:
    """A vertical out of the money on the ``option_type`` side; credit sells the nearer leg."""
    atm = _atm(market)
    sign = 1 if option_type == OptionType.CE else -1
    near, far = atm + sign * distance, atm + sign * (distance + width)
    legs = [LegSpec(near, option_type, Side.SELL if credit else Side.BUY, lots),
            LegSpec(far, option_type, Side.BUY if credit else Side.SELL, lots)]
    s = Structure.CREDIT_VERTICAL if credit else Structure.DEBIT_VERTICAL
    return build_proposal(market, s, legs, **kw)


def random_proposal(rng: np.random.Generator, market: MarketView, *,
                    tenant_id: uuid.UUID = TENANT) -> DecisionProposedV1:
    """A random, valid proposal: iron condor, vertical, short strangle or long straddle,
    random distance, width and lots (1-4), a random edge and win probability."""
    kind = int(rng.integers(0, 5))
    lots = int(rng.integers(1, 5))
    expiry = EXPIRIES[int(rng.integers(0, len(EXPIRIES)))]
    distance = float(rng.integers(2, 12)) * STEP
    width = float(rng.integers(2, 6)) * STEP
    kw: dict[str, Any] = dict(expiry=expiry, tenant_id=tenant_id, lots=lots,
                              proposal_id=uuid.UUID(int=int(rng.integers(1, 2**62))),
                              win_probability=float(rng.uniform(0.35, 0.8)))
    if kind == 0:
        p = iron_condor(market, distance=distance, wing=width, **kw)
    elif kind == 1:
        p = vertical(market, credit=True, distance=distance, width=width,
                     option_type=OptionType.CE if rng.random() < 0.5 else OptionType.PE, **kw)
    elif kind == 2:
        p = vertical(market, credit=False, distance=distance - 2 * STEP, width=width,
                     regime="trending_up", option_type=OptionType.CE, **kw)
    elif kind == 3:
        p = short_strangle(market, distance=distance, **kw)
    else:
        p = long_straddle(market, **kw)
    edge = abs(p.expected_gross_edge) * float(rng.uniform(0.3, 3.0))
    return p.model_copy(update={"expected_gross_edge": edge})


@dataclass(frozen=True)
class FlatCostModel:
    """A flat-rate stand-in for the cost engine (tests and benchmarks only).

    Per leg and side: ``per_order`` brokerage plus 18 % GST, ``pct_of_premium`` of the
    premium turnover, and ``slippage_ticks`` ticks of slippage per unit; a round trip is
    two sides. ``calls`` counts invocations (for tests that a wall did or did not run).
    """

    per_order: float = 20.0
    pct_of_premium: float = 0.0015
    slippage_ticks: float = 1.0
    calls: list[int] = field(default_factory=list, compare=False)

    def round_trip(self, proposal: DecisionProposedV1, market: MarketView, *, now: datetime,
                   size_multiplier: float = 1.0) -> CostEstimate:
        self.calls.append(1)
        brokerage = turnover = units = 0.0
        for leg in proposal.legs:
            lots = math.floor(leg.lots * size_multiplier + 1e-9)
            qty = lots * proposal.lot_size
            brokerage += 2 * self.per_order * 1.18
            turnover += 2 * qty * float(leg.price)
            units += 2 * qty
        statutory = self.pct_of_premium * turnover
        slippage = self.slippage_ticks * NSE_TICK * units
        return CostEstimate(total=brokerage + statutory + slippage,
                            breakdown={"brokerage": brokerage, "statutory": statutory,
                                       "slippage": slippage})


def context(proposal: DecisionProposedV1, market: MarketView, *, capital: float = 1_000_000,
            regime: str | None = None, **over: Any) -> RiskContext:
    """A context at :data:`NOW` for :data:`TENANT` with default policy and an empty book."""
    fields: dict[str, Any] = dict(now=NOW, tenant_id=TENANT, proposal=proposal, market=market,
                                  policy=TenantPolicy(capital=capital),
                                  regime=regime or proposal.regime)
    fields.update(over)
    return RiskContext(**fields)


def later(ctx: RiskContext, seconds: float) -> RiskContext:
    """The same context ``seconds`` later (for staleness)."""
    return replace(ctx, now=ctx.now + timedelta(seconds=seconds))
